"""PSA tables from and to other tools (CSV): the same analyses on anyone's PSA.

Accepted layouts (read with pandas):

- **wide**: one row per draw; ``cost_<strategy>`` and ``effect_<strategy>`` (or
  ``qaly_<strategy>``, ``qalys_<strategy>``) columns; every other numeric column is a
  parameter (used for EVPPI), except ``draw``/``iteration``/``sim`` index columns;
- **long**: columns ``draw``, ``strategy``, ``cost``, ``effect`` (or ``qalys``), and optional
  parameter columns (constant within a draw).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vbhc_model import dims
from vbhc_model.errors import VbhcError

EFFECT_PREFIXES = ("effect", "qalys", "qaly")
INDEX_COLUMNS = {"draw", "iteration", "sim", "run", ""}


def read_psa_csv(path: str | Path) -> xr.Dataset:
    """A PSA table -> Dataset with ``total_cost`` and ``qalys`` (draw x strategy) and, if
    present, ``parameters`` (draw x parameter).

    Raises
    ------
    VbhcError
        Unreadable file, or no recognisable cost and effect columns (the message lists them).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise VbhcError(f"{path}: file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise VbhcError(f"{path}: not a readable CSV table ({exc})") from None
    cols = {c.lower(): c for c in frame.columns}
    if {"strategy", "cost"} <= set(cols) and any(p in cols for p in EFFECT_PREFIXES):
        eff = next(cols[p] for p in EFFECT_PREFIXES if p in cols)
        draw = cols.get("draw") or cols.get("iteration") or cols.get("sim")
        if draw is None:
            raise VbhcError(f"{path}: a long table needs a 'draw' column")
        costs = frame.pivot(index=draw, columns=cols["strategy"], values=cols["cost"])
        effects = frame.pivot(index=draw, columns=cols["strategy"], values=eff)
        skip = {draw, cols["strategy"], cols["cost"], eff}
        params = frame.drop_duplicates(draw).set_index(draw)[
            [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]
        ]
        strategies = list(costs.columns)
        cost_arr, eff_arr = costs.values, effects[strategies].values
    else:
        cost_cols = {m.group(1): c for c in frame.columns if (m := re.match(r"(?i)cost_(.+)$", c))}
        eff_cols = {}
        for c in frame.columns:
            m = re.match(r"(?i)(effect|qalys|qaly)_(.+)$", c)
            if m:
                eff_cols[m.group(2)] = c
        strategies = [s for s in cost_cols if s in eff_cols]
        if len(strategies) < 2:
            raise VbhcError(
                f"{path}: expected cost_<strategy> and effect_<strategy> (or qaly_<strategy>) "
                f"columns for at least two strategies, or a long table with draw, strategy, "
                f"cost, effect; found columns {', '.join(map(str, frame.columns[:12]))}"
            )
        cost_arr = frame[[cost_cols[s] for s in strategies]].values
        eff_arr = frame[[eff_cols[s] for s in strategies]].values
        used = set(cost_cols.values()) | set(eff_cols.values())
        params = frame[[c for c in frame.columns if c not in used
                        and str(c).lower() not in INDEX_COLUMNS
                        and pd.api.types.is_numeric_dtype(frame[c])]]
    if not (np.isfinite(cost_arr).all() and np.isfinite(eff_arr).all()):
        raise VbhcError(f"{path}: costs and effects must all be numbers (found blanks or NaN)")
    n = cost_arr.shape[0]
    ds = xr.Dataset(
        {"total_cost": ((dims.DRAW, dims.STRATEGY), cost_arr.astype(float)),
         "qalys": ((dims.DRAW, dims.STRATEGY), eff_arr.astype(float))},
        coords={dims.DRAW: np.arange(n), dims.STRATEGY: [str(s) for s in strategies]},
        attrs={"source_table": str(path), "n_draws": n},
    )
    if params.shape[1]:
        ds["parameters"] = ((dims.DRAW, dims.PARAMETER), params.values.astype(float))
        ds = ds.assign_coords({dims.PARAMETER: [str(c) for c in params.columns]})
    return ds


def psa_to_frame(psa: xr.Dataset, effect: str = "qalys") -> pd.DataFrame:
    """A PSA Dataset as a wide table (``cost_<s>``, ``effect_<s>``, parameter columns)."""
    cols: dict[str, np.ndarray] = {"draw": psa[dims.DRAW].values}
    for s in psa[dims.STRATEGY].values:
        cols[f"cost_{s}"] = psa["total_cost"].sel({dims.STRATEGY: s}).values
        cols[f"effect_{s}"] = psa[effect].sel({dims.STRATEGY: s}).values
    if "parameters" in psa:
        for p in psa[dims.PARAMETER].values:
            cols[str(p)] = psa["parameters"].sel({dims.PARAMETER: p}).values
    return pd.DataFrame(cols)
