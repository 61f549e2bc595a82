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

- **matrices** (BCEA's ``bcea(e, c)`` and dampack's ``make_psa_obj(cost, effectiveness,
  parameters)``): a folder holding a table of costs and a table of effects, one row per draw and
  one column per strategy (the header names the strategies), ``c.csv`` and ``e.csv`` or
  ``cost.csv`` and ``effectiveness.csv``, and optionally ``parameters.csv`` (one row per draw).

Other names are mapped with ``names`` (``vbhc analyse --map``): in a wide table ``cost`` and
``effect`` are the prefixes (``{"cost": "c_", "effect": "e_"}`` reads ``c_a``, ``e_a``); in a
long table they, ``strategy`` and ``draw`` are column names.

Columns of text only, and empty columns, are ignored. Every other cell that is read must be a
finite number; a mistake is a :class:`VbhcError` naming the file, the line and the column.
:func:`psa_to_frame` and :func:`psa_to_frames` write these layouts (``vbhc export``).
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


#: The keys of a column mapping (``vbhc analyse --map``).
MAP_KEYS = ("cost", "effect", "strategy", "draw")
#: The file names of the matrix layouts: (costs, effects), BCEA's and dampack's.
MATRIX_FILES = (("c.csv", "e.csv"), ("cost.csv", "effectiveness.csv"))
PARAMETER_FILE = "parameters.csv"


def parse_map(text: str | None) -> dict[str, str]:
    """``"cost=c_,effect=e_"`` -> ``{"cost": "c_", "effect": "e_"}``, checked.

    Examples
    --------
    >>> parse_map("cost=Cost, effect=QALY ,strategy=arm")
    {'cost': 'Cost', 'effect': 'QALY', 'strategy': 'arm'}
    """
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or key not in MAP_KEYS or not value:
            raise VbhcError(f"--map: {item.strip()!r} is not KEY=NAME with KEY one of "
                            f"{', '.join(MAP_KEYS)} (e.g. --map cost=c_,effect=e_)")
        out[key] = value
    return out


def read_psa(path: str | Path, names: dict[str, str] | None = None) -> xr.Dataset:
    """A PSA from another tool: a CSV table (:func:`read_psa_csv`) or a folder of matrices
    (BCEA's or dampack's layout, as ``vbhc export`` writes them); see the module's note."""
    path = Path(path)
    if path.is_dir():
        return read_psa_matrices(path)
    return read_psa_csv(path, names)


def read_psa_matrices(folder: str | Path) -> xr.Dataset:
    """A folder holding ``c.csv`` and ``e.csv`` (BCEA) or ``cost.csv`` and
    ``effectiveness.csv`` (dampack): draws x strategies, strategies named by the header; and
    optionally ``parameters.csv``, draws x parameters. An unnamed first column (R's row
    names) or a ``draw`` column is an index, not a strategy.

    Raises
    ------
    VbhcError
        No such pair of files; the two tables name different strategies or have different
        numbers of rows; a cell that is not a finite number (file, line and column).
    """
    folder = Path(folder)
    pair = next(((folder / c, folder / e) for c, e in MATRIX_FILES
                 if (folder / c).is_file() and (folder / e).is_file()), None)
    if pair is None:
        raise VbhcError(f"{folder}: a folder of PSA matrices needs c.csv and e.csv (BCEA) or "
                        "cost.csv and effectiveness.csv (dampack), one row per draw and one "
                        "column per strategy; or give a CSV table")
    arrays, strategies = [], None
    for path in pair:
        frame = read_table(path)
        cols = [c for c in frame.columns if not (str(c).lower() in INDEX_COLUMNS
                                                 or _UNNAMED.match(str(c)))]
        if strategies is None:
            strategies = [str(c) for c in cols]
            if len(strategies) < 2:
                raise VbhcError(f"{path}: expected one column per strategy, at least two; "
                                f"found {', '.join(map(str, frame.columns)) or 'none'}")
        elif [str(c) for c in cols] != strategies:
            raise VbhcError(f"{path}: its columns ({', '.join(map(str, cols))}) are not the "
                            f"strategies of {pair[0].name} ({', '.join(strategies)}), in "
                            "the same order")
        arrays.append(np.column_stack([numbers(frame, c, path) for c in cols]))
    if arrays[0].shape[0] != arrays[1].shape[0]:
        raise VbhcError(f"{pair[1]}: {arrays[1].shape[0]} draws (rows), but {pair[0].name} has "
                        f"{arrays[0].shape[0]}; each row is one draw of both")
    params: dict[str, np.ndarray] = {}
    if (folder / PARAMETER_FILE).is_file():
        path = folder / PARAMETER_FILE
        frame = read_table(path)
        params = _parameters(frame, list(frame.columns), path)
        if params and len(frame) != arrays[0].shape[0]:
            raise VbhcError(f"{path}: {len(frame)} draws (rows), but {pair[0].name} has "
                            f"{arrays[0].shape[0]}; each row is one draw")
    return _dataset(strategies, arrays[0], arrays[1], params, folder, unpaired=[])


def read_psa_csv(path: str | Path, names: dict[str, str] | None = None) -> xr.Dataset:
    """A PSA table -> Dataset with ``total_cost`` and ``qalys`` (draw x strategy) and, if
    present, ``parameters`` (draw x parameter). ``names`` maps other names (module note).

    Raises
    ------
    VbhcError
        Unreadable or empty file; no recognisable cost and effect columns (the message lists
        them); a cell that is not a finite number (file, line and column); in the long layout,
        a duplicated or missing (draw, strategy) row or a parameter that differs within a draw.
    """
    path = Path(path)
    names = dict(names or {})
    frame = read_table(path)
    cols = {str(c).lower(): c for c in frame.columns}
    long = {names.get("strategy", "strategy").lower(), names.get("cost", "cost").lower()}
    effects = [names["effect"].lower()] if "effect" in names else list(EFFECT_PREFIXES)
    if long <= set(cols) and any(p in cols for p in effects):
        strategies, cost_arr, eff_arr, params = _read_long(frame, cols, path, names)
    else:
        strategies, cost_arr, eff_arr, params = _read_wide(frame, path, names)
    return _dataset(strategies, cost_arr, eff_arr, params, path)


def _dataset(strategies, cost_arr, eff_arr, params, path: Path,
             unpaired: list[str] | None = None) -> xr.Dataset:
    """The PSA Dataset of arrays read from ``path``; ``unpaired``: the parameters named like a
    cost or effect column [those of ``params``, in a table whose names say what they hold]."""
    n = cost_arr.shape[0]
    if n < 2:
        raise VbhcError(f"{path}: one draw; a PSA needs at least two")
    if unpaired is None:
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
            reader = csv.reader(f, skipinitialspace=True)  # as pandas reads it
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


def _read_long(frame: pd.DataFrame, cols: dict, path: Path, names: dict[str, str]):
    effects = [names["effect"].lower()] if "effect" in names else EFFECT_PREFIXES
    eff = next(cols[p] for p in effects if p in cols)
    strat = cols[names.get("strategy", "strategy").lower()]
    cost = cols[names.get("cost", "cost").lower()]
    if "draw" in names:
        draw = cols.get(names["draw"].lower())
        if draw is None:
            raise VbhcError(f"{path}: --map draw={names['draw']}: no such column")
    else:
        draw = _draw_column(frame.columns)
    if draw is None:
        raise VbhcError(f"{path}: a long table needs a 'draw' column (or --map draw=NAME)")
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


def _prefix(prefix: str) -> re.Pattern:
    """The pattern of a mapped column prefix (``c_`` reads ``c_<strategy>``)."""
    return re.compile("(?i)" + re.escape(prefix) + "(.+)$")


def _wide_strategies(columns, names: dict[str, str] | None = None) -> tuple[list[str], dict, dict]:
    """Strategies of a wide table: names with both a cost and an effect column, in the order of
    their first column; and the cost and effect column of each."""
    names = names or {}
    cost_re = _prefix(names["cost"]) if "cost" in names else _COST
    eff_re = _prefix(names["effect"]) if "effect" in names else _EFFECT
    cost_cols, eff_cols, first = {}, {}, {}
    for i, c in enumerate(columns):
        for pattern, found in ((cost_re, cost_cols), (eff_re, eff_cols)):
            if m := pattern.match(str(c)):
                found.setdefault(m.group(1), []).append(c)
                first.setdefault(m.group(1), i)
    strategies = sorted((s for s in cost_cols if s in eff_cols), key=first.__getitem__)
    return strategies, cost_cols, eff_cols


def _read_wide(frame: pd.DataFrame, path: Path, names: dict[str, str]):
    strategies, cost_cols, eff_cols = _wide_strategies(frame.columns, names)
    draw = (frame.columns[[str(c).lower() for c in frame.columns].index(names["draw"].lower())]
            if names.get("draw", "").lower() in [str(c).lower() for c in frame.columns]
            else _draw_column(frame.columns))
    if draw is not None:  # a wide table has one row per draw
        twice = frame[draw].duplicated(keep=False) & frame[draw].notna()
        if twice.any():
            first = frame[draw][twice].iloc[0]
            lines = frame.index[twice & (frame[draw] == first)]
            raise VbhcError(f"{path}: draw {first} appears on more than one row (lines "
                            f"{', '.join(map(str, lines))}); a wide table has one row per draw")
    if len(strategies) < 2:
        kinds = (f"{names.get('cost', 'cost_')}<strategy> and "
                 f"{names.get('effect', 'effect_')}<strategy>"
                 + ("" if "effect" in names else " (or qaly_<strategy>)"))
        raise VbhcError(
            f"{path}: expected {kinds} columns for at least two strategies, or a long table "
            f"with draw, strategy, cost, effect; found columns "
            f"{excerpt(', '.join(map(str, frame.columns[:12])), 200)}; other names: --map "
            f"cost=PREFIX,effect=PREFIX (wide) or --map cost=COLUMN,effect=COLUMN,"
            f"strategy=COLUMN (long)"
        )
    for s in strategies:
        for found in (cost_cols, eff_cols):
            if len(found[s]) > 1:
                raise VbhcError(f"{path}: strategy '{s}' has more than one column of the same "
                                f"kind ({', '.join(map(str, found[s]))}); keep one")
    cost_arr = np.column_stack([numbers(frame, cost_cols[s][0], path) for s in strategies])
    eff_arr = np.column_stack([numbers(frame, eff_cols[s][0], path) for s in strategies])
    used = ({cost_cols[s][0] for s in strategies} | {eff_cols[s][0] for s in strategies}
            | ({draw} if draw is not None else set()))
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


#: The layouts of :func:`psa_to_frames` and what each writes.
EXPORT_FORMATS = ("csv", "long", "bcea", "dampack")


def psa_to_frames(psa: xr.Dataset, layout: str, effect: str = "qalys",
                  labels: bool = True) -> dict[str, pd.DataFrame]:
    """A PSA as the tables of ``vbhc export --format``: file name -> frame.

    ``csv``: the wide table (:func:`psa_to_frame`); ``long``: the long one; ``bcea``:
    ``e.csv`` and ``c.csv``, draws x strategies, as ``BCEA::bcea(e, c)`` takes them, and
    ``parameters.csv`` (for ``BCEA::evppi``'s ``input``); ``dampack``: ``cost.csv``,
    ``effectiveness.csv`` and ``parameters.csv``, as ``dampack::make_psa_obj(cost,
    effectiveness, parameters, strategies)`` takes them. In the matrix layouts the strategies
    are named by their labels (``labels``; codes if they have none), in the others by their
    codes. :func:`read_psa` reads each back to the same numbers.

    Examples
    --------
    >>> psa = xr.Dataset({"total_cost": (("draw", "strategy"), [[1.0, 2.0], [3.0, 4.0]]),
    ...                   "qalys": (("draw", "strategy"), [[0.5, 0.6], [0.7, 0.8]])},
    ...                  coords={"draw": [0, 1], "strategy": ["a", "b"],
    ...                          "strategy_label": ("strategy", ["A", "Bee"])})
    >>> frames = psa_to_frames(psa, "bcea")
    >>> sorted(frames), frames["c.csv"].columns.tolist()
    (['c.csv', 'e.csv'], ['A', 'Bee'])
    """
    if layout not in EXPORT_FORMATS:
        raise VbhcError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {layout!r}")
    if layout in ("csv", "long"):
        return {"psa.csv": psa_to_frame(psa, effect, "wide" if layout == "csv" else "long")}
    codes = [str(s) for s in psa[dims.STRATEGY].values]
    names = codes
    if labels and "strategy_label" in psa.coords:
        shown = [str(v).strip() or c for v, c in zip(psa["strategy_label"].values, codes)]
        names = shown if len(set(shown)) == len(shown) else codes
    cost_name, eff_name = MATRIX_FILES[0] if layout == "bcea" else MATRIX_FILES[1]
    out = {}
    for name, var in ((cost_name, "total_cost"), (eff_name, effect)):
        out[name] = pd.DataFrame(psa[var].transpose(dims.DRAW, dims.STRATEGY).values,
                                 columns=names)
    if "parameters" in psa:
        out[PARAMETER_FILE] = pd.DataFrame(
            psa["parameters"].transpose(dims.DRAW, dims.PARAMETER).values,
            columns=[str(p) for p in psa[dims.PARAMETER].values])
    return out
