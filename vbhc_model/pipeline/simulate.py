"""Draws -> outcomes: build the model, run the scenario's engine and label the results.

This is the one path for the deterministic base case (one draw at the base values) and for
many draws; the engine (``settings.engine``, from :mod:`vbhc_model.engines.registry`) sees
plain arrays only, and labels are added here, at the edge
(:func:`vbhc_model.model.outcomes.assemble`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.engines.base import EngineInputs, Outputs, PatientStreams
from vbhc_model.engines.corrections import discount_factors, quadrature_terms, transition_times
from vbhc_model.engines.registry import get_engine
from vbhc_model.model.build import build_model, build_strategy
from vbhc_model.model.outcomes import assemble, check_outputs
from vbhc_model.scenario.schema import Scenario
from vbhc_model.threads import one_blas_thread, thread_map


def simulate(
    scenario: Scenario,
    draws: xr.DataArray,
    *,
    outputs: Outputs | None = None,
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
    outputs : Outputs, optional
        What to keep: the trace, the per-cycle outcomes, and which variables of
        :data:`vbhc_model.model.outcomes.OUTCOMES` to return (default: the totals).
    trace : bool
        Keep the state trace (``trace``: draw x strategy x cycle x state); the same as
        ``outputs=Outputs(trace=True)``.
    per_cycle : bool
        Keep the per-cycle outcomes (``cycle_*`` variables); the same as
        ``outputs=Outputs(per_cycle=True)``.
    threads : int, optional
        Strategies run side by side on this many threads (default:
        :func:`vbhc_model.threads.n_threads`); results do not depend on it.

    Returns
    -------
    xarray.Dataset
        Per person: ``total_cost``, ``costs`` by category (discounted and undiscounted),
        ``qalys``, ``life_years`` (both), ``utilisation`` by service and ``clinician_hours`` by
        role (undiscounted), ``engagement`` shares by level; provenance in attrs. With
        ``outputs.variables``, only those.

    Raises
    ------
    ValueError
        ``outputs`` given with ``trace`` or ``per_cycle``, or naming an unknown variable.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> from vbhc_model.parameters import base_draws
    >>> sc = load_scenario(default_scenario_path())
    >>> out = simulate(sc, base_draws(sc))
    >>> out["qalys"].dims
    ('draw', 'strategy')
    """
    if outputs is None:
        outputs = Outputs(trace=trace, per_cycle=per_cycle)
    elif trace or per_cycle:
        raise ValueError("give either outputs or trace/per_cycle, not both")
    check_outputs(outputs)
    engine = get_engine(scenario.settings.engine)
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
    microsim = engine.individual
    # A microsimulation's streams are keyed by each draw's global index (its coordinate), so
    # a draw meets the same patients in any chunk of draws.
    draw_index = np.asarray(draws[dims.DRAW].values, dtype=np.int64) if microsim else None

    def run(sname: str):
        strat = build_strategy(scenario, sname, draws, inputs)
        patients = None
        if microsim:
            # the engagement strata of one draw and attribute profile share its patients;
            # each profile has patients of its own (b = stratum * n + draw)
            first = np.repeat(strat.stratum_profile * s.patients, n)
            patients = PatientStreams(s.seed, np.tile(draw_index, strat.n_strata),
                                      s.patients, first)
        return strat, engine.run(EngineInputs(
            strat.start, strat.transition_at, strat.values_at, terms, disc,
            n_cycles=s.n_cycles, transition_values=strat.transition_values,
            transition_discount=tdisc, patients=patients,
        ), outputs)

    # Strategies side by side (vbhc_model.threads), those with more engagement strata (a
    # larger batch) first: results are identical, and the first strategy in scenario order
    # that fails reports its error.
    sizes = [len(st.engagement or ()) or 1 for st in scenario.strategies.values()]
    with one_blas_thread():  # the engine's matrix products are small; our threads use the cores
        runs = thread_map(run, scenario.strategies, n_draws=n, threads=threads, sizes=sizes)
    return assemble(scenario, inputs, runs, outputs=outputs, engine=engine.name)
