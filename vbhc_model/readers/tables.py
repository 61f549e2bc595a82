"""PSA tables from and to other tools (CSV): the same analyses on anyone's PSA.

Accepted layouts (read with pandas):

- **wide**: one row per draw; a strategy is a name ``<s>`` with both a ``cost_<s>`` and an
  ``effect_<s>`` (or ``qaly_<s>``, ``qalys_<s>``) column, in the order of its first column;
  every other numeric column is a parameter (used for EVPPI), including a ``cost_``/``effect_``
  column without its partner, except ``draw``/``iteration``/``sim``/``run`` and unnamed index
  columns;
- **long**: columns ``draw``, ``strategy``, ``cost``, ``effect`` (or ``qalys``), one row per
  draw and strategy, strategies in the order of their first row, and optional parameter columns
  (the same in every row of a draw).

Columns of text only, and empty columns, are ignored. Every other cell that is read must be a
finite number; a mistake is a :class:`VbhcError` naming the file, the line and the column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vbhc_model import dims
from vbhc_model.errors import VbhcError, excerpt

EFFECT_PREFIXES = ("effect", "qalys", "qaly")
INDEX_COLUMNS = {"draw", "iteration", "sim", "run", ""}
_COST = re.compile(r"(?i)cost_(.+)$")
_EFFECT = re.compile(r"(?i)(?:effect|qalys|qaly)_(.+)$")
_UNNAMED = re.compile(r"Unnamed: \d+$")  # pandas' name for a column with an empty header


def read_psa_csv(path: str | Path) -> xr.Dataset:
    """A PSA table -> Dataset with ``total_cost`` and ``qalys`` (draw x strategy) and, if
    present, ``parameters`` (draw x parameter).

    Raises
    ------
    VbhcError
        Unreadable or empty file; no recognisable cost and effect columns (the message lists
        them); a cell that is not a finite number (file, line and column); in the long layout,
        a duplicated or missing (draw, strategy) row or a parameter that differs within a draw.
    """
    path = Path(path)
    frame = read_table(path)
    cols = {str(c).lower(): c for c in frame.columns}
    if {"strategy", "cost"} <= set(cols) and any(p in cols for p in EFFECT_PREFIXES):
        strategies, cost_arr, eff_arr, params = _read_long(frame, cols, path)
    else:
        strategies, cost_arr, eff_arr, params = _read_wide(frame, path)
    n = cost_arr.shape[0]
    if n < 2:
        raise VbhcError(f"{path}: one draw; a PSA needs at least two")
    unpaired = [str(c) for c in params if _COST.match(str(c)) or _EFFECT.match(str(c))]
    ds = xr.Dataset(
        {"total_cost": ((dims.DRAW, dims.STRATEGY), cost_arr),
         "qalys": ((dims.DRAW, dims.STRATEGY), eff_arr)},
        coords={dims.DRAW: np.arange(n), dims.STRATEGY: [str(s) for s in strategies]},
        attrs={"source_table": str(path), "n_draws": n,
               "unpaired_columns": ", ".join(unpaired)},
    )
    if params:
        ds["parameters"] = ((dims.DRAW, dims.PARAMETER), np.column_stack(list(params.values())))
        ds = ds.assign_coords({dims.PARAMETER: [str(c) for c in params]})
    return ds


def read_table(path: Path) -> pd.DataFrame:
    """The CSV as text and numbers, indexed by line number (header = line 1); blank lines
    dropped, names stripped. Only an empty cell is missing ("NA" is text, so it is reported,
    not skipped). A column named twice is an error, and so is a row with more or fewer fields
    than the header (a trailing comma would shift every column), except R's
    ``write.table`` layout, where every row starts with a row name the header does not
    name. A table separated by ';' (decimal commas) is refused with a message saying so.
    Also reads tables of samples (vbhc_model.readers.samples)."""
    header, rownames = _check_fields(path)
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise VbhcError(f"{path}: column '{excerpt(twice[0])}' appears twice in the header")
    try:
        frame = pd.read_csv(path, skip_blank_lines=False, keep_default_na=False, na_values=[""],
                            skipinitialspace=True, low_memory=False)  # one dtype per column
    except FileNotFoundError:
        raise VbhcError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise VbhcError(f"{path}: the file is empty (expected a header, then one row per "
                        f"draw)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise VbhcError(f"{path}: not a readable CSV table ({excerpt(exc)})") from None
    except OSError as exc:
        raise VbhcError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if rownames:  # pandas made the row names the index: number the rows again
        frame = frame.reset_index(drop=True)
    frame.columns = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    frame.index = frame.index + 2  # blank lines are kept as empty rows until here
    frame = frame.dropna(how="all")
    if frame.empty:
        raise VbhcError(f"{path}: no data rows, only a header (expected one row per draw)")
    return frame


def _check_fields(path: Path) -> tuple[list[str], bool]:
    """The header's names, and whether the rows start with R's row names (one field more
    than the header in every row, the last one not empty).

    Raises
    ------
    VbhcError
        A table separated by ';' or tabs; a row (not blank) with a different number of
        fields than the header, with its line number (and a hint for a trailing comma).
    """
    import csv

    counts: list[tuple[int, int, bool]] = []  # (line, fields, last field empty)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            line = reader.line_num + 1
            for row in reader:
                if row and not (len(row) == 1 and not row[0].strip()):  # not a blank line
                    counts.append((line, len(row), not row[-1].strip()))
                line = reader.line_num + 1
    except csv.Error as exc:
        raise VbhcError(f"{path}, line {reader.line_num}: not a readable CSV table "
                        f"({excerpt(exc)})") from None
    except (OSError, UnicodeDecodeError):
        return [], False  # pandas says what is wrong
    n = len(header)
    if n == 1:
        for sep, name in ((";", "';'"), ("\t", "tabs")):
            if header[0].count(sep) >= 1:
                raise VbhcError(
                    f"{path}: the header is one column, '{excerpt(header[0])}': the table "
                    f"seems separated by {name}"
                    + (" (a spreadsheet's CSV in a locale with decimal commas)"
                       if sep == ";" else "")
                    + "; save it with ',' between columns and '.' as the decimal point")
    rownames = bool(counts) and all(k == n + 1 and not empty for _, k, empty in counts)
    want = n + 1 if rownames else n
    for line, k, empty in counts:
        if k != want:
            hint = ("; a comma at the end of the line adds an empty field, and every column "
                    "after the first would shift: remove it" if k == n + 1 and empty else "")
            raise VbhcError(f"{path}, line {line}: {k} fields, but the header (line 1) has "
                            f"{n}{hint}")
    return header, rownames


def _cell(value) -> str:
    if pd.isna(value):
        return "empty cell, expected a number"
    return f"{excerpt(value)!r} is not a finite number"


def numbers(frame: pd.DataFrame, col, path: Path) -> np.ndarray:
    """Column ``col`` as floats; a cell that is not a finite number is a VbhcError."""
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i, n = int(np.argmax(bad)), int(bad.sum())
        raise VbhcError(f"{path}, line {frame.index[i]}, column '{excerpt(col)}': "
                        f"{_cell(frame[col].iloc[i])}"
                        + (f" ({n} such cells in this column)" if n > 1 else ""))
    return values


def _parameters(frame: pd.DataFrame, columns, path: Path) -> dict[str, np.ndarray]:
    """The parameter columns among ``columns``: those with numbers. A column of text only, or
    empty, is not a parameter; a column of numbers with a bad cell is a VbhcError."""
    out = {}
    for c in columns:
        if (str(c).lower() in INDEX_COLUMNS or _UNNAMED.match(str(c))
                or pd.api.types.is_bool_dtype(frame[c])):
            continue
        if pd.to_numeric(frame[c], errors="coerce").isna().all():
            continue  # text (labels) or empty
        out[str(c)] = numbers(frame, c, path)
    return out


def _draw_column(columns):
    """The column that numbers the draws (``draw``, ``iteration`` or ``sim``), if any."""
    by_name = {str(c).lower(): c for c in columns}
    return next((by_name[k] for k in ("draw", "iteration", "sim") if k in by_name), None)


def _read_long(frame: pd.DataFrame, cols: dict, path: Path):
    eff = next(cols[p] for p in EFFECT_PREFIXES if p in cols)
    strat, cost = cols["strategy"], cols["cost"]
    draw = _draw_column(frame.columns)
    if draw is None:
        raise VbhcError(f"{path}: a long table needs a 'draw' column")
    for key in (draw, strat):
        empty = frame[key].isna()
        if empty.any():
            line = frame.index[empty.argmax()]
            raise VbhcError(f"{path}, line {line}, column '{key}': empty cell")
    frame = frame.assign(**{strat: frame[strat].astype(str).str.strip()})
    strategies = list(pd.unique(frame[strat]))  # order of first appearance
    draws = pd.unique(frame[draw])
    if len(strategies) < 2:
        raise VbhcError(f"{path}: column '{strat}' names one strategy ({strategies[0]}); "
                        f"the analyses compare at least two")
    dup = frame.duplicated([draw, strat], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        lines = frame.index[dup & (frame[draw] == first[draw]) & (frame[strat] == first[strat])]
        raise VbhcError(f"{path}: draw {first[draw]}, strategy '{first[strat]}' appears more than "
                        f"once (lines {', '.join(map(str, lines))}); {int(dup.sum())} rows are "
                        f"duplicates in all")
    if len(frame) != len(draws) * len(strategies):
        have = frame.groupby(strat, sort=False)[draw].apply(set)
        s = next(s for s in strategies if len(have[s]) < len(draws))
        missing = [d for d in draws if d not in have[s]]
        raise VbhcError(f"{path}: strategy '{s}' has no row for draw {missing[0]}"
                        + (f" (nor for {len(missing) - 1} other draws)" if len(missing) > 1 else "")
                        + f"; a long table needs one row per draw and strategy "
                        f"({len(draws)} draws, {len(strategies)} strategies)")
    arrays = []
    for c in (cost, eff):
        values = pd.Series(numbers(frame, c, path), index=pd.MultiIndex.from_arrays(
            [frame[draw], frame[strat]]))
        grid = values.unstack(strat).reindex(index=draws, columns=strategies)
        arrays.append(grid.to_numpy(dtype=float))
    skip = {draw, strat, cost, eff}
    params = _parameters(frame, [c for c in frame.columns if c not in skip], path)
    # A parameter is the same in every row of a draw; it is read from each draw's first row.
    keys = frame[draw].to_numpy()
    first_line = pd.Series(frame.index, index=frame.index).groupby(keys, sort=False)
    first_line = first_line.transform("first").to_numpy()
    head = frame.index.to_numpy() == first_line  # each draw's first row, in the order of draws
    for name, values in params.items():
        by_draw = pd.Series(values).groupby(keys, sort=False)
        differs = values != by_draw.transform("first").to_numpy()
        if differs.any():
            i = int(np.argmax(differs))
            raise VbhcError(f"{path}, line {frame.index[i]}, column '{name}': differs from "
                            f"line {first_line[i]}, the first row of draw {frame[draw].iloc[i]}; "
                            f"a parameter column must be the same for every strategy of a draw "
                            f"(remove per-strategy columns other than cost and effect)")
        params[name] = values[head]
    return strategies, arrays[0], arrays[1], params


def _wide_strategies(columns) -> tuple[list[str], dict, dict]:
    """Strategies of a wide table: names with both a cost and an effect column, in the order of
    their first column; and the cost and effect column of each."""
    cost_cols, eff_cols, first = {}, {}, {}
    for i, c in enumerate(columns):
        for pattern, found in ((_COST, cost_cols), (_EFFECT, eff_cols)):
            if m := pattern.match(str(c)):
                found.setdefault(m.group(1), []).append(c)
                first.setdefault(m.group(1), i)
    strategies = sorted((s for s in cost_cols if s in eff_cols), key=first.__getitem__)
    return strategies, cost_cols, eff_cols


def _read_wide(frame: pd.DataFrame, path: Path):
    strategies, cost_cols, eff_cols = _wide_strategies(frame.columns)
    draw = _draw_column(frame.columns)
    if draw is not None:  # a wide table has one row per draw
        twice = frame[draw].duplicated(keep=False) & frame[draw].notna()
        if twice.any():
            first = frame[draw][twice].iloc[0]
            lines = frame.index[twice & (frame[draw] == first)]
            raise VbhcError(f"{path}: draw {first} appears on more than one row (lines "
                            f"{', '.join(map(str, lines))}); a wide table has one row per draw")
    if len(strategies) < 2:
        raise VbhcError(
            f"{path}: expected cost_<strategy> and effect_<strategy> (or qaly_<strategy>) "
            f"columns for at least two strategies, or a long table with draw, strategy, "
            f"cost, effect; found columns "
            f"{excerpt(', '.join(map(str, frame.columns[:12])), 200)}"
        )
    for s in strategies:
        for found in (cost_cols, eff_cols):
            if len(found[s]) > 1:
                raise VbhcError(f"{path}: strategy '{s}' has more than one column of the same "
                                f"kind ({', '.join(map(str, found[s]))}); keep one")
    cost_arr = np.column_stack([numbers(frame, cost_cols[s][0], path) for s in strategies])
    eff_arr = np.column_stack([numbers(frame, eff_cols[s][0], path) for s in strategies])
    used = {cost_cols[s][0] for s in strategies} | {eff_cols[s][0] for s in strategies}
    params = _parameters(frame, [c for c in frame.columns if c not in used], path)
    return strategies, cost_arr, eff_arr, params


def psa_to_frame(psa: xr.Dataset, effect: str = "qalys", layout: str = "wide") -> pd.DataFrame:
    """A PSA Dataset as a table that :func:`read_psa_csv` reads back to the same PSA.

    ``layout="wide"``: one row per draw, ``draw``, ``cost_<s>`` and ``effect_<s>`` for each
    strategy in the PSA's order, then one column per parameter. ``layout="long"``: ``draw``,
    ``strategy``, ``cost``, ``effect`` and the parameter columns, one row per draw and strategy
    (draw by draw, strategies in the PSA's order). Write it with
    ``.to_csv(path, index=False, float_format="%.17g")`` to keep every bit.

    Raises
    ------
    VbhcError
        A parameter's name clashes with a column of the layout (for example a parameter
        ``cost_x`` next to one named ``effect_x`` in the wide layout would read back as a
        strategy ``x``); use the other layout.
    """
    if layout not in ("wide", "long"):
        raise VbhcError(f"layout must be 'wide' or 'long', got {layout!r}")
    strategies = [str(s) for s in psa[dims.STRATEGY].values]
    params = [str(p) for p in psa[dims.PARAMETER].values] if "parameters" in psa else []
    if layout == "wide":
        cols: dict[str, np.ndarray] = {"draw": psa[dims.DRAW].values}
        for s in strategies:
            cols[f"cost_{s}"] = psa["total_cost"].sel({dims.STRATEGY: s}).values
            cols[f"effect_{s}"] = psa[effect].sel({dims.STRATEGY: s}).values
        fixed = list(cols)
    else:
        n, k = psa.sizes[dims.DRAW], len(strategies)
        cols = {"draw": np.repeat(psa[dims.DRAW].values, k),
                "strategy": np.tile(np.array(strategies, dtype=object), n),
                "cost": psa["total_cost"].transpose(dims.DRAW, dims.STRATEGY).values.ravel(),
                "effect": psa[effect].transpose(dims.DRAW, dims.STRATEGY).values.ravel()}
        fixed = list(cols)
    clash = [p for p in params if p in cols or p.lower() in INDEX_COLUMNS]
    for p in params:
        values = psa["parameters"].sel({dims.PARAMETER: p}).values
        cols[p] = values if layout == "wide" else np.repeat(values, len(strategies))
    if layout == "wide" and not clash and _wide_strategies(list(cols))[0] != strategies:
        clash = [p for p in params if _COST.match(p) or _EFFECT.match(p)]
    if clash:
        raise VbhcError(f"parameter(s) {', '.join(clash)} would not read back as parameters in "
                        f"the {layout} layout (columns {', '.join(fixed[:5])}, ...); use "
                        f"layout={'long' if layout == 'wide' else 'wide'!r}")
    return pd.DataFrame(cols)
