"""Draws -> outcomes: build the model, run the cohort engine and label the results.

This is the one path for the deterministic base case (one draw at the base values) and for
many draws; labels are added here, at the edge, around the plain-array engine.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.engines.cohort import run_cohort
from vbhc_model.engines.corrections import discount_factors, quadrature_terms, transition_times
from vbhc_model.model.build import ModelInputs, StrategyInputs, build_model, build_strategy
from vbhc_model.provenance import make_attrs
from vbhc_model.scenario.schema import Scenario
from vbhc_model.threads import one_blas_thread, thread_map

ENGINE = "cohort"


def _mix(x: np.ndarray, strat: StrategyInputs, n_draws: int) -> np.ndarray:
    """Weight the engagement strata of ``x[batch, ...]`` by their shares -> ``[draw, ...]``."""
    stacked = x.reshape((len(strat.levels), n_draws) + x.shape[1:])
    w = strat.shares.T.reshape((len(strat.levels), n_draws) + (1,) * (x.ndim - 1))
    return (stacked * w).sum(axis=0)


def _apply_unit_costs(x: np.ndarray, strat: StrategyInputs) -> np.ndarray:
    """Add the costs of utilisation and clinician time (unit cost x count) to their category."""
    for src, dst, unit_cost in strat.unit_costs:
        shape = (-1,) + (1,) * (x.ndim - 2)
        x[..., dst] += x[..., src] * unit_cost.reshape(shape)
    return x


def simulate(
    scenario: Scenario,
    draws: xr.DataArray,
    *,
    trace: bool = False,
    per_cycle: bool = False,
    threads: int | None = None,
) -> xr.Dataset:
    """Run every strategy of a scenario on parameter draws.

    Parameters
    ----------
    scenario : Scenario
    draws : xarray.DataArray
        Free parameter values, dims ``(draw, parameter)``
        (:func:`vbhc_model.parameters.base_draws` for the base case).
    trace : bool
        Keep the state trace (``trace``: draw x strategy x cycle x state).
    per_cycle : bool
        Keep the per-cycle outcomes (``cycle_*`` variables).
    threads : int, optional
        Strategies run side by side on this many threads (default:
        :func:`vbhc_model.threads.n_threads`); results do not depend on it.

    Returns
    -------
    xarray.Dataset
        Per person: ``total_cost``, ``costs`` by category (discounted and undiscounted),
        ``qalys``, ``life_years`` (both), ``utilisation`` by service and ``clinician_hours`` by
        role (undiscounted), ``engagement`` shares by level; provenance in attrs.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> from vbhc_model.parameters import base_draws
    >>> sc = load_scenario(default_scenario_path())
    >>> out = simulate(sc, base_draws(sc))
    >>> out["qalys"].dims
    ('draw', 'strategy')
    """
    inputs = build_model(scenario, draws, strategies=False)
    s = scenario.settings
    terms = quadrature_terms(s.n_cycles, s.cycle_length, s.within_cycle_correction,
                             s.count_start, s.discount_timing)
    disc = discount_factors(terms.time, inputs.rates)
    tdisc = discount_factors(
        transition_times(s.n_cycles, s.cycle_length, s.within_cycle_correction,
                         s.discount_timing, s.count_start),
        inputs.rates,
    )
    n = inputs.n_draws

    def run(sname: str):
        strat = build_strategy(scenario, sname, draws, inputs)
        return strat, run_cohort(
            strat.start, strat.transition_at, strat.values_at, terms, disc,
            n_cycles=s.n_cycles, transition_values=strat.transition_values,
            transition_discount=tdisc, keep_trace=trace, keep_cycles=per_cycle,
        )

    # Strategies side by side (vbhc_model.threads), those with more engagement strata (a
    # larger batch) first: results are identical, and the first strategy in scenario order
    # that fails reports its error.
    sizes = [len(st.engagement or ()) or 1 for st in scenario.strategies.values()]
    with one_blas_thread():  # the engine's matrix products are small; our threads use the cores
        runs = thread_map(run, scenario.strategies, n_draws=n, threads=threads, sizes=sizes)
    inputs = dataclasses.replace(inputs, strategies=tuple(strat for strat, _ in runs))
    results = {}
    for strat, res in runs:
        out = {
            "discounted": _apply_unit_costs(_mix(res.discounted + strat.one_off, strat, n), strat),
            "undiscounted": _apply_unit_costs(_mix(res.undiscounted + strat.one_off, strat, n),
                                              strat),
        }
        if per_cycle:
            for key, arr in (("cycle", res.by_cycle), ("cycle_u", res.by_cycle_undiscounted)):
                arr[:, 0] += strat.one_off
                out[key] = _apply_unit_costs(_mix(arr, strat, n), strat)
        if trace:
            collapsed = np.add.reduceat(res.trace, _first_substates(inputs), axis=2)
            out["trace"] = _mix(collapsed, strat, n)
        results[strat.name] = out
    return _label(scenario, inputs, results, per_cycle=per_cycle, trace=trace)


def _first_substates(inputs: ModelInputs) -> np.ndarray:
    return np.searchsorted(inputs.substate_of, np.arange(len(inputs.states)))


def _label(scenario: Scenario, inputs: ModelInputs, results: dict, *, per_cycle: bool,
           trace: bool) -> xr.Dataset:
    ch = inputs.channels
    names = list(results)
    cur = " ".join(str(x) for x in (scenario.metadata.currency, scenario.metadata.price_year) if x)

    def stack(key: str) -> np.ndarray:  # -> [draw, strategy, ..., channel]
        return np.stack([results[n][key] for n in names], axis=1)

    disc, undisc = stack("discounted"), stack("undiscounted")
    cost_i = ch.of_kind("cost")
    base = (dims.DRAW, dims.STRATEGY)
    per_person = "per person"
    data = {
        "total_cost": (base, disc[..., cost_i].sum(-1), {"units": cur, "discounted": 1}),
        "costs": (base + (dims.CATEGORY,), disc[..., cost_i], {"units": cur, "discounted": 1}),
        "costs_undiscounted": (base + (dims.CATEGORY,), undisc[..., cost_i],
                               {"units": cur, "discounted": 0}),
        "qalys": (base, disc[..., ch.index("qalys")], {"units": "QALYs", "discounted": 1}),
        "qalys_undiscounted": (base, undisc[..., ch.index("qalys")],
                               {"units": "QALYs", "discounted": 0}),
        "life_years": (base, disc[..., ch.index("life_years")],
                       {"units": "years", "discounted": 1}),
        "life_years_undiscounted": (base, undisc[..., ch.index("life_years")],
                                    {"units": "years", "discounted": 0}),
        "utilisation": (base + (dims.SERVICE,), undisc[..., ch.of_kind("utilisation")],
                        {"units": "count", "discounted": 0}),
        "clinician_hours": (base + (dims.ROLE,), undisc[..., ch.of_kind("clinician_hours")],
                            {"units": "hours", "discounted": 0}),
    }
    levels = list(dict.fromkeys(lv for s in inputs.strategies for lv in s.levels))
    shares = np.zeros((inputs.n_draws, len(names), len(levels)))
    for j, strat in enumerate(inputs.strategies):
        for i, lv in enumerate(strat.levels):
            shares[:, j, levels.index(lv)] = strat.shares[:, i]
    data["engagement"] = (base + (dims.LEVEL,), shares, {"units": "share of cohort"})
    coords = {
        dims.DRAW: np.arange(inputs.n_draws),
        dims.STRATEGY: names,
        dims.CATEGORY: ch.keys("cost"),
        dims.SERVICE: ch.keys("utilisation"),
        dims.ROLE: ch.keys("clinician_hours"),
        dims.LEVEL: levels,
    }
    if per_cycle:
        cyc, cyc_u = stack("cycle"), stack("cycle_u")  # [draw, strategy, cycle, channel]
        cd = base + (dims.CYCLE,)
        data.update(
            cycle_costs=(cd + (dims.CATEGORY,), cyc[..., cost_i], {"units": cur, "discounted": 1}),
            cycle_qalys=(cd, cyc[..., ch.index("qalys")], {"units": "QALYs", "discounted": 1}),
            cycle_life_years=(cd, cyc[..., ch.index("life_years")], {"units": "years"}),
            cycle_utilisation=(cd + (dims.SERVICE,), cyc_u[..., ch.of_kind("utilisation")],
                               {"units": "count", "discounted": 0}),
            cycle_clinician_hours=(cd + (dims.ROLE,), cyc_u[..., ch.of_kind("clinician_hours")],
                                   {"units": "hours", "discounted": 0}),
        )
    if trace:
        data["trace"] = (base + (dims.CYCLE, dims.STATE), stack("trace"),
                         {"units": "share of cohort", "description": "state membership after "
                          "each cycle (row 0 is the start)"})
        coords[dims.STATE] = list(inputs.states)
    if per_cycle or trace:
        coords[dims.CYCLE] = np.arange(scenario.settings.n_cycles + 1)
    coords["strategy_label"] = (dims.STRATEGY, [scenario.strategies[n].label or n for n in names])
    ds = xr.Dataset(
        {k: xr.Variable(d, v, attrs={**a, "per": per_person}) for k, (d, v, a) in data.items()},
        coords=coords,
    )
    ds.attrs = make_attrs(
        scenario, n_draws=inputs.n_draws, engine=ENGINE,
        effect=scenario.settings.effect,
        within_cycle_correction=scenario.settings.within_cycle_correction,
        cohort_size=scenario.settings.cohort_size,
    )
    return ds
