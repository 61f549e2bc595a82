"""Outcomes by subgroup -> the decision in each subgroup: frontier, ICERs, the strategy with
the highest net monetary benefit and, with a PSA, the probability that each strategy is
cost-effective.

A subgroup is one level of an attribute the scenario lists in ``population.subgroups``
(``rural=rural``, ``ltot=none``); the model reports per-person costs and effects within each
(``subgroup_total_cost``, ``subgroup_qalys``, ``subgroup_life_years``). The analysis of a
subgroup is the analysis of the whole population applied to those numbers: the same frontier
(:func:`vbhc_model.analysis.frontier.compute_icers`) and the same acceptability
(:func:`vbhc_model.analysis.acceptability.acceptability`), as the decision would be taken
for that subgroup alone (no test of heterogeneity is implied: the subgroups' differences are
those the scenario's attributes and effect modifiers put in).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.acceptability import acceptability
from vbhc_model.analysis.frontier import compute_icers, net_monetary_benefit

__all__ = ["by_subgroup", "has_subgroups"]

_TABLE = ("cost", "effect", "inc_cost", "inc_effect", "icer", "status", "comparator",
          "dominated_by")


def _empty(strategies) -> xr.Dataset:
    """The table of a subgroup without patients: no numbers, status 'no patients'."""
    nan = np.full(len(strategies), np.nan)
    return xr.Dataset(
        {**{k: (dims.STRATEGY, nan) for k in ("cost", "effect", "inc_cost", "inc_effect",
                                              "icer")},
         "status": (dims.STRATEGY, np.full(len(strategies), "no patients")),
         "comparator": (dims.STRATEGY, np.full(len(strategies), "")),
         "dominated_by": (dims.STRATEGY, np.full(len(strategies), ""))},
        coords={dims.STRATEGY: strategies})


def has_subgroups(outcomes: xr.Dataset) -> bool:
    """Whether ``outcomes`` carries per-subgroup results."""
    return "subgroup_total_cost" in outcomes


def by_subgroup(outcomes: xr.Dataset, wtp: Sequence[float], effect: str = "qalys",
                psa: xr.Dataset | None = None, negligible: float = 0.0) -> xr.Dataset:
    """The decision in each subgroup.

    Parameters
    ----------
    outcomes : xarray.Dataset
        Base-case outcomes with ``subgroup_*`` variables (one draw, or their mean is used).
    wtp : sequence of float
    effect : {"qalys", "life_years"}
    psa : xarray.Dataset, optional
        PSA outcomes with the same variables: adds ``ceac`` and ``p_optimal``.

    Returns
    -------
    xarray.Dataset
        Dims ``subgroup`` x ``strategy`` (in the order of ``outcomes``), ``wtp``: ``share``
        (of the population), ``cost``, ``effect``, ``inc_cost``, ``inc_effect``, ``icer``,
        ``status``, ``comparator``, ``dominated_by`` (the frontier within the subgroup: the
        increments of a strategy on it are over its ``comparator``, those of a dominated one
        over the strategies that dominate it), ``nmb``, ``optimal`` (subgroup x wtp: the
        strategy with the highest NMB in the base case); with ``psa``: ``ceac`` (subgroup x
        strategy x wtp) and ``p_optimal`` (the probability that ``optimal`` is
        cost-effective, over the PSA's draws). A subgroup with no patients (a level's share
        0) has NaN numbers, status "no patients" and no optimal strategy.

    Examples
    --------
    >>> out = xr.Dataset(
    ...     {"subgroup_total_cost": (("draw", "strategy", "subgroup"), [[[0., 0.], [500., 500.]]]),
    ...      "subgroup_qalys": (("draw", "strategy", "subgroup"), [[[1., 1.], [1.02, 1.001]]]),
    ...      "subgroup_share": (("draw", "strategy", "subgroup"), [[[.4, .6], [.4, .6]]])},
    ...     coords={"strategy": ["old", "new"], "subgroup": ["x=a", "x=b"]})
    >>> t = by_subgroup(out, [50000])
    >>> t["icer"].sel(strategy="new").round(0).values.tolist()
    [25000.0, 500000.0]
    >>> t["optimal"].values[:, 0].tolist()
    ['new', 'old']
    """
    wtp_arr = np.asarray(list(wtp), dtype=float)
    means = outcomes.mean(dims.DRAW)
    strategies = means[dims.STRATEGY].values
    groups = means[dims.SUBGROUP].values
    cost = means["subgroup_total_cost"].transpose(dims.SUBGROUP, dims.STRATEGY).values
    eff = means[f"subgroup_{effect}"].transpose(dims.SUBGROUP, dims.STRATEGY).values
    rows = []
    for g in range(len(groups)):
        if not (np.isfinite(cost[g]).all() and np.isfinite(eff[g]).all()):
            rows.append(_empty(strategies))  # no patients in this subgroup (share 0)
            continue
        table = compute_icers(cost[g], eff[g], strategies, negligible=negligible).sel(
            {dims.STRATEGY: strategies})
        rows.append(table[list(_TABLE)].drop_vars("input_index", errors="ignore"))
    out = xr.concat(rows, dim=dims.SUBGROUP)
    nmb = net_monetary_benefit(cost, eff, wtp_arr)  # [subgroup, strategy, wtp]
    out["nmb"] = ((dims.SUBGROUP, dims.STRATEGY, dims.WTP), nmb)
    empty = ~np.isfinite(nmb).all(axis=1)  # [subgroup, wtp]
    best = np.where(empty, 0, np.nan_to_num(nmb, nan=-np.inf).argmax(axis=1))
    out["optimal"] = ((dims.SUBGROUP, dims.WTP),
                      np.where(empty, "", strategies[best]).astype(str))
    share = means["subgroup_share"].isel({dims.STRATEGY: 0}) if "subgroup_share" in means \
        else None
    coords = {dims.SUBGROUP: groups, dims.STRATEGY: strategies, dims.WTP: wtp_arr}
    out = out.assign_coords(coords)
    if share is not None:
        out["share"] = (dims.SUBGROUP, share.values)
    if psa is not None:
        pc = psa["subgroup_total_cost"].transpose(dims.SUBGROUP, dims.DRAW, dims.STRATEGY).values
        pe = psa[f"subgroup_{effect}"].transpose(dims.SUBGROUP, dims.DRAW, dims.STRATEGY).values
        ceac = np.full((len(groups), len(strategies), len(wtp_arr)), np.nan)
        for g in range(len(groups)):
            ok = np.isfinite(pc[g]).all(axis=1) & np.isfinite(pe[g]).all(axis=1)
            if ok.any():  # the draws in which the subgroup has patients
                ceac[g] = acceptability(net_monetary_benefit(pc[g][ok], pe[g][ok], wtp_arr))
        out["ceac"] = ((dims.SUBGROUP, dims.STRATEGY, dims.WTP), ceac)
        out["p_optimal"] = ((dims.SUBGROUP, dims.WTP),
                            np.where(empty, np.nan, np.take_along_axis(
                                ceac, best[:, None, :], axis=1)[:, 0, :]))
    for name in ("strategy_label", "subgroup_label"):
        if name in outcomes.coords:
            out = out.assign_coords({name: outcomes[name]})
    out.attrs = {"effect": effect,
                 "note": "per person within each subgroup; the frontier of each subgroup alone"}
    return out
