"""Deterministic sensitivity analysis read as decisions: incremental net benefit, the one-way
(tornado) table and the two-way map of the optimal strategy.

Decisions are read on net monetary benefit at one willingness to pay: the *incremental* net
benefit of a strategy is its NMB minus the best NMB among the other strategies, so it is
positive exactly when the strategy is optimal. The design of the runs (which values each
parameter takes) is :mod:`vbhc_model.parameters.ranges`; the runs are
:mod:`vbhc_model.pipeline.dsa`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.frontier import net_monetary_benefit

#: The two-way map's label for a grid cell no model can have (members of one Dirichlet row
#: summing to more than 1).
INFEASIBLE = "(infeasible)"


def net_benefit(outcomes: xr.Dataset, effect: str, wtp: float) -> xr.DataArray:
    """Net monetary benefit ``effect x wtp - total_cost`` of each draw and strategy.

    Examples
    --------
    >>> out = xr.Dataset({"total_cost": (("draw", "strategy"), [[100.0, 300.0]]),
    ...                   "qalys": (("draw", "strategy"), [[1.0, 1.1]])})
    >>> net_benefit(out, "qalys", 1000.0).values.tolist()
    [[900.0, 800.0]]
    """
    cost = outcomes["total_cost"]
    values = net_monetary_benefit(cost.values, outcomes[effect].transpose(*cost.dims).values,
                                  float(wtp))
    return cost.copy(data=values).rename("nmb").assign_attrs(wtp=float(wtp))


def incremental_net_benefit(nmb: xr.DataArray, strategy: str) -> xr.DataArray:
    """The NMB of ``strategy`` minus the best NMB of the other strategies (> 0: optimal).

    Examples
    --------
    >>> nmb = xr.DataArray([[1.0, 3.0, 2.0]], dims=("draw", "strategy"),
    ...                    coords={"strategy": ["a", "b", "c"]})
    >>> incremental_net_benefit(nmb, "b").values.tolist()
    [1.0]
    """
    others = nmb.drop_sel({dims.STRATEGY: strategy}).max(dims.STRATEGY)
    return nmb.sel({dims.STRATEGY: strategy}) - others


def one_way_table(ranges: dict, nmb: xr.DataArray, wtp: float, left_out: str = "") -> xr.Dataset:
    """The one-way (tornado) table from the NMB of a base row and two rows per parameter.

    Parameters
    ----------
    ranges : dict
        ``{parameter: (low, high, basis)}`` in the order of the rows.
    nmb : xarray.DataArray
        ``[draw, strategy]``: row 0 the base case, rows ``1 + 2i`` and ``2 + 2i`` parameter i
        at its low and high value.
    wtp : float
    left_out : str
        One line: the free parameters not varied and why.

    Returns
    -------
    xarray.Dataset
        Dim ``parameter`` (sorted by the width of the swing): ``low``, ``high`` (parameter
        values), ``inmb_low``, ``inmb_high`` (incremental NMB of the base-case optimal
        strategy against the best other strategy), ``optimal_low``, ``optimal_high``,
        ``basis``; attrs ``strategy`` (the base-case optimal), ``base_inmb`` and
        ``left_out``.
    """
    best = str(nmb.isel({dims.DRAW: 0}).idxmax(dims.STRATEGY).values)
    inmb = incremental_net_benefit(nmb, best).values
    optimal = nmb.idxmax(dims.STRATEGY).values
    res = xr.Dataset(
        {
            "low": (dims.PARAMETER, [r[0] for r in ranges.values()]),
            "high": (dims.PARAMETER, [r[1] for r in ranges.values()]),
            "inmb_low": (dims.PARAMETER, inmb[1::2]),
            "inmb_high": (dims.PARAMETER, inmb[2::2]),
            "optimal_low": (dims.PARAMETER, [str(v) for v in optimal[1::2]]),
            "optimal_high": (dims.PARAMETER, [str(v) for v in optimal[2::2]]),
            "basis": (dims.PARAMETER, [r[2] for r in ranges.values()]),
        },
        coords={dims.PARAMETER: list(ranges)},
        attrs={"strategy": best, "base_inmb": float(inmb[0]), "wtp": float(wtp),
               "measure": "incremental net monetary benefit vs the best other strategy",
               "left_out": left_out},
    )
    swing = np.abs(res["inmb_high"] - res["inmb_low"])
    return res.isel({dims.PARAMETER: np.argsort(-swing.values, kind="stable")})


def two_way_table(a: str, b: str, grid_a: np.ndarray, grid_b: np.ndarray, nmb: xr.DataArray,
                  infeasible: np.ndarray, wtp: float) -> xr.Dataset:
    """The optimal strategy and the NMB on a grid of two parameters.

    Parameters
    ----------
    a, b : str
        The parameters; ``nmb``'s draws run over the grid with ``a`` the slow index.
    grid_a, grid_b : ndarray
    nmb : xarray.DataArray
        ``[draw, strategy]``, ``len(grid_a) * len(grid_b)`` draws.
    infeasible : ndarray of bool
        Cells no model can have: labelled :data:`INFEASIBLE`, their NMB NaN.
    wtp : float
    """
    optimal = nmb.idxmax(dims.STRATEGY).values.astype(object)  # str would cut the label
    optimal[infeasible] = INFEASIBLE
    optimal = optimal.astype(str)
    values = nmb.values.copy()
    values[infeasible] = np.nan
    shape = (len(grid_a), len(grid_b))
    return xr.Dataset(
        {"optimal": ((a, b), optimal.reshape(shape)),
         "nmb": ((a, b, dims.STRATEGY), values.reshape(shape + (-1,)))},
        coords={a: grid_a, b: grid_b, dims.STRATEGY: nmb[dims.STRATEGY].values},
        attrs={"wtp": float(wtp)},
    )
