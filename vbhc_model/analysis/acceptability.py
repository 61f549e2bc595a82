"""Analyses of a PSA: acceptability (CEAC and CEAF), expected loss, expected value of perfect
information, and the frontier on the means with intervals of the increments.

Kernels work on arrays with the strategy axis last; the wrappers take the PSA Dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.frontier import compute_icers, net_monetary_benefit
from vbhc_model.defaults import INTERVAL, WTP_GRID_POINTS


def acceptability(nmb: np.ndarray) -> np.ndarray:
    """P(each strategy has the highest NMB), ``[strategy, wtp]`` from ``[draw, strategy, wtp]``.

    Ties go to the first strategy, so the probabilities sum to one at every WTP
    (Fenwick et al., Health Econ 2001;10:779-787).

    Examples
    --------
    >>> nmb = np.array([[[1.0], [2.0]], [[3.0], [2.0]]])   # 2 draws, 2 strategies, 1 WTP
    >>> acceptability(nmb).tolist()
    [[0.5], [0.5]]
    """
    n_draws, n_strategies, _ = nmb.shape
    best = nmb.argmax(axis=1)  # [draw, wtp]
    return np.stack([(best == s).mean(axis=0) for s in range(n_strategies)])


def information_value(nmb: np.ndarray) -> np.ndarray:
    """E[max NMB] - max E[NMB] over ``[draw, strategy, wtp]`` -> ``[wtp]``, not clamped: the
    EVPI of PSA draws, or the EVPPI of a metamodel's fitted values (whose estimates may fall
    below zero, which the EVPPI's standard errors must see)."""
    return nmb.max(axis=1).mean(axis=0) - nmb.mean(axis=0).max(axis=0)


def evpi(nmb: np.ndarray) -> np.ndarray:
    """Per-person expected value of perfect information at each WTP: E[max NMB] - max E[NMB].

    Examples
    --------
    >>> nmb = np.array([[[1.0], [2.0]], [[3.0], [2.0]]])
    >>> evpi(nmb).tolist()   # E[max] = 2.5, max E = 2.0
    [0.5]
    """
    # Never below 0 in exact arithmetic; rounding leaves -1e-13 when no draw differs.
    return np.maximum(information_value(nmb), 0.0)


def wtp_grid(wtp: Sequence[float], n: int = WTP_GRID_POINTS) -> np.ndarray:
    """A grid for curves: 0 to twice the largest threshold, with the thresholds included."""
    top = 2 * max(max(wtp), 1.0)
    return np.unique(np.concatenate([np.linspace(0, top, n), np.asarray(wtp, dtype=float)]))


def analyse_psa(psa: xr.Dataset, wtp: Sequence[float], effect: str = "qalys",
                population: float | None = None, frontier: bool = True,
                negligible: float = 0.0) -> xr.Dataset:
    """Acceptability (with the acceptability frontier), EVPI and 95% intervals of a PSA.

    Parameters
    ----------
    psa : xarray.Dataset
    wtp : sequence of float
    effect : str
    population : float, optional
        Effective population (``settings.population``) for population EVPI.
    frontier : bool
        Add the frontier on the means (:func:`mean_frontier`; quantiles over all draws, so
        the curves on a WTP grid leave it out).
    negligible : float
        The smallest gain in effect that counts on that frontier (a gain whose interval over
        the draws straddles zero by far does not count either).

    Returns
    -------
    xarray.Dataset
        ``ceac`` (strategy x wtp), ``ceaf_strategy`` (wtp: the strategy with the highest
        expected NMB) and ``ceaf`` (its probability of being cost-effective), ``evpi`` (wtp,
        per person) and ``population_evpi``, ``expected_nmb``, ``expected_loss`` and
        ``p_better_than_reference`` (strategy x wtp), mean, 2.5% and 97.5% quantiles of
        cost and effect per strategy, and the frontier on the mean costs and effects with
        intervals of the increments (:func:`mean_frontier`).
    """
    wtp_arr = np.asarray(list(wtp), dtype=float)
    costs = psa["total_cost"].transpose(dims.DRAW, dims.STRATEGY).values
    effects = psa[effect].transpose(dims.DRAW, dims.STRATEGY).values
    # One WTP at a time: memory stays at draws x strategies whatever the grid.
    ceac, expected, loss, better, value = [], [], [], [], []
    for lam in wtp_arr:
        nmb = net_monetary_benefit(costs, effects, np.array([lam]))  # [draw, strategy, 1]
        ceac.append(acceptability(nmb)[:, 0])
        expected.append(nmb.mean(axis=0)[:, 0])
        # Expected loss of choosing each strategy (Eckermann et al. 2008; dampack).
        loss.append((nmb.max(axis=1, keepdims=True) - nmb).mean(axis=0)[:, 0])
        # Pairwise acceptability against the first (reference) strategy.
        better.append((nmb > nmb[:, :1, :]).mean(axis=0)[:, 0])
        value.append(evpi(nmb)[0])
    ceac, expected = np.column_stack(ceac), np.column_stack(expected)
    best = expected.argmax(axis=0)
    strategies = psa[dims.STRATEGY].values
    out = xr.Dataset(
        {
            "ceac": ((dims.STRATEGY, dims.WTP), ceac),
            "expected_loss": ((dims.STRATEGY, dims.WTP), np.column_stack(loss)),
            "p_better_than_reference": ((dims.STRATEGY, dims.WTP), np.column_stack(better)),
            "expected_nmb": ((dims.STRATEGY, dims.WTP), expected),
            "ceaf_strategy": ((dims.WTP,), strategies[best]),
            "ceaf": ((dims.WTP,), ceac[best, np.arange(len(wtp_arr))]),
            "evpi": ((dims.WTP,), np.asarray(value), {"units": "per person"}),
        },
        coords={dims.STRATEGY: strategies, dims.WTP: wtp_arr},
    )
    for name, values in (("cost", costs), ("effect", effects)):
        out[f"{name}_mean"] = (dims.STRATEGY, values.mean(axis=0))
        out[f"{name}_low"] = (dims.STRATEGY, np.quantile(values, INTERVAL[0], axis=0))
        out[f"{name}_high"] = (dims.STRATEGY, np.quantile(values, INTERVAL[1], axis=0))
    if frontier:
        out = out.merge(mean_frontier(costs, effects, strategies, negligible))
    if population:
        out["population_evpi"] = (dims.WTP, out["evpi"].values * population,
                                  {"units": "total", "effective_population": population})
    if "strategy_label" in psa.coords:
        out = out.assign_coords(strategy_label=psa["strategy_label"])
    out.attrs = {"effect": effect, "n_draws": int(costs.shape[0]),
                 **{k: psa.attrs[k] for k in ("currency", "price_year") if k in psa.attrs}}
    return out


def mean_frontier(costs: np.ndarray, effects: np.ndarray, strategies,
                  negligible: float = 0.0) -> xr.Dataset:
    """The incremental analysis on the PSA's mean costs and effects, with 95% intervals of
    the increments.

    Each strategy is compared as in :func:`~vbhc_model.analysis.frontier.compute_icers`: a
    frontier strategy with the previous one on the frontier, a dominated one with the last
    frontier strategy cheaper than it. The increments are then taken draw by draw against
    that comparator; their mean is the difference of the means and their 2.5% and 97.5%
    quantiles give the intervals (an ICER has none: its draws are ratios whose denominator
    can cross zero, which is what the acceptability curves describe instead).

    Returns
    -------
    xarray.Dataset
        Over ``strategy`` in the input order: ``frontier_status``, ``comparator`` (``""``
        for the first frontier strategy), ``icer`` (of the means; NaN off the frontier),
        ``inc_cost_mean/low/high`` and ``inc_effect_mean/low/high`` (NaN without a
        comparator).
    """
    names = [str(x) for x in strategies]
    f = compute_icers(costs.mean(axis=0), effects.mean(axis=0), names, negligible=negligible,
                      effect_draws=effects)
    comparator, last = {}, ""
    for name, status, comp in zip(f[dims.STRATEGY].values, f["status"].values,
                                  f["comparator"].values):
        comparator[str(name)] = str(comp) if status == "frontier" else last
        if status == "frontier":
            last = str(name)
    comps = [comparator[n] for n in names]
    out = xr.Dataset(
        {"frontier_status": (dims.STRATEGY, [str(f["status"].sel({dims.STRATEGY: n}).values)
                                             for n in names]),
         "comparator": (dims.STRATEGY, comps),
         "frontier_note": (dims.STRATEGY, [str(f["dominated_by"].sel({dims.STRATEGY: n}).values)
                                           for n in names]),
         "icer": (dims.STRATEGY, [float(f["icer"].sel({dims.STRATEGY: n})) for n in names])},
        coords={dims.STRATEGY: strategies},
    )
    for label, values in (("cost", costs), ("effect", effects)):
        stats = np.full((len(names), 3), np.nan)
        for i, comp in enumerate(comps):
            if comp:
                diff = values[:, i] - values[:, names.index(comp)]
                stats[i] = [diff.mean(), *np.quantile(diff, INTERVAL)]
        for j, stat in enumerate(("mean", "low", "high")):
            out[f"inc_{label}_{stat}"] = (dims.STRATEGY, stats[:, j])
    return out
