"""Draws -> outcomes: build the model, run the scenario's engine and label the results.

This is the one path for the deterministic base case (one draw at the base values) and for
many draws; the engine (``settings.engine``, from :mod:`vbhc_model.engines.registry`) sees
plain arrays only, and labels are added here, at the edge
(:func:`vbhc_model.model.outcomes.assemble`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.defaults import MCSE_BLOCKS, MCSE_MIN_PATIENTS
from vbhc_model.engines.accumulate import accumulate_paths
from vbhc_model.engines.base import EngineInputs, EngineResult, Outputs, PatientStreams
from vbhc_model.engines.corrections import discount_factors, quadrature_terms, transition_times
from vbhc_model.engines.registry import get_engine
from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.model.build import ModelInputs, StrategyInputs, build_model, build_strategy
from vbhc_model.model.outcomes import assemble, check_outputs
from vbhc_model.model.patients import assemble_patients
from vbhc_model.readers.posterior import resolve
from vbhc_model.readers.uniforms import UniformsError, read_uniforms
from vbhc_model.scenario.checks import profile_count
from vbhc_model.scenario.schema import Scenario
from vbhc_model.threads import one_blas_thread, thread_map, threads_for


def simulate(
    scenario: Scenario,
    draws: xr.DataArray,
    *,
    outputs: Outputs | None = None,
    trace: bool = False,
    per_cycle: bool = False,
    threads: int | None = None,
    same_patients: bool = False,
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
    same_patients : bool
        Microsimulation: every draw meets the same patients (those of draw 0), as a
        deterministic sensitivity analysis needs, whose draws are variations of one set of
        values (common random numbers across them). By default each draw has its own
        patients, keyed by its draw index (a PSA's second level).

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
    scenario, supplied = replay(scenario)
    engine = get_engine(scenario.settings.engine)
    if engine.individual and scenario.settings.patients >= MCSE_MIN_PATIENTS and (
            outputs.variables is None or any(v.startswith("mcse") for v in outputs.variables)):
        outputs = dataclasses.replace(outputs, mcse=MCSE_BLOCKS)  # Monte Carlo errors
    inputs, prepare = _prepare(scenario, draws, engine.individual, supplied, same_patients,
                               periods=outputs.periods, occupancy=outputs.occupancy)

    def run(sname: str):
        strat, engine_inputs = prepare(sname)
        if strat.chain is not None:
            res = run_chain(engine, strat, engine_inputs, outputs, len(inputs.channels.kind))
        else:
            res = engine.run(engine_inputs, outputs)
        if strat.channels is not None:
            res = every_channel(res, strat.channels, len(inputs.channels.kind))
        return strat, res if strat.expand is None else expand_result(res, strat.expand)

    names = list(scenario.strategies)
    run_together = getattr(engine, "run_strategies", None)
    # Strategies side by side (vbhc_model.threads), those with more engagement strata (a
    # larger batch) first: results are identical, and the first strategy in scenario order
    # that fails reports its error. On one thread the microsimulation runs them together
    # instead: their patients' uniforms (common random numbers) are made once per cycle, not
    # once per strategy.
    # A stepped strategy's strata are the product of its strategies' levels (and it runs
    # each of them): it goes first.
    strategies = scenario.strategies

    def levels(st) -> int:
        return len(st.engagement or ()) or 1

    sizes = [levels(st) * int(np.prod([levels(strategies[step.switch_to]) for step in st.steps]))
             * (1 + len(st.steps)) for st in strategies.values()]
    with one_blas_thread():  # the engine's matrix products are small; our threads use the cores
        if run_together is not None and threads_for(len(names), n_draws=inputs.n_draws,
                                                    threads=threads) == 1:
            prepared = [prepare(sname) for sname in names]
            results = run_together([engine_inputs for _, engine_inputs in prepared], outputs)
            # (an individual engine's strategies are built on every channel)
            assert all(strat.channels is None for strat, _ in prepared)
            runs = [(strat, res) for (strat, _), res in zip(prepared, results)]
        else:
            runs = thread_map(run, names, n_draws=inputs.n_draws, threads=threads, sizes=sizes)
    return assemble(scenario, inputs, runs, outputs=outputs, engine=engine.name)


def period_of_cycles(n_cycles: int, cycle_length: float, years: float) -> np.ndarray:
    """Each cycle's period of ``years`` years: cycle k >= 1 covers model time ``[(k - 1) L,
    k L)`` and falls in period ``floor((k - 1) L / years)``; cycle 0 (values at time 0) in the
    first.

    Examples
    --------
    >>> period_of_cycles(26, 1 / 12, 1).tolist()[:15]
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
    """
    k = np.arange(n_cycles + 1)
    return np.floor(np.maximum(k - 1, 0) * cycle_length / years + 1e-9).astype(int)


def _prepare(scenario: Scenario, draws: xr.DataArray, individual: bool,
             supplied: np.ndarray | None, same_patients: bool = False, periods: float = 0,
             occupancy: tuple[str, ...] = ()) -> tuple[ModelInputs, Callable]:
    """The model's inputs, and ``prepare(strategy) -> (StrategyInputs, EngineInputs)``."""
    if scenario.trackers and not individual:
        name = next(iter(scenario.trackers))
        tunnel = (" (for time in a state, a tunnel state does it in the cohort: give the state "
                  "'tunnel: N' and use time_in_state)"
                  if scenario.trackers[name].kind == "time_in_state" else "")
        message = (f"tracker '{name}' needs individual patients, and the "
                   f"'{scenario.settings.engine}' engine has none (a cohort keeps no patient's "
                   f"history): set 'engine: microsim' in settings (or run with --engine "
                   f"microsim){tunnel}")
        src = scenario.source
        raise ScenarioError([src.issue(("trackers", name), message) if src
                             else Issue(scenario.name, f"trackers.{name}", message)])
    inputs = build_model(scenario, draws, strategies=False, occupancy=occupancy)
    s = scenario.settings
    terms = quadrature_terms(s.n_cycles, s.cycle_length, s.correction_method,
                             s.count_start, s.discount_timing, s.correction_weights())
    disc = discount_factors(terms.time, inputs.rates)
    tdisc = discount_factors(
        transition_times(s.n_cycles, s.cycle_length, s.correction_method,
                         s.discount_timing, s.count_start),
        inputs.rates,
    )
    n = inputs.n_draws
    period_of = period_of_cycles(s.n_cycles, s.cycle_length, periods) if periods else None
    # A microsimulation's streams are keyed by each draw's global index (its coordinate), so
    # a draw meets the same patients in any chunk of draws.
    draw_index = np.asarray(draws[dims.DRAW].values, dtype=np.int64) if individual else None
    if individual and same_patients:
        draw_index = np.zeros_like(draw_index)
    if supplied is not None:
        check_replay_draws(scenario, supplied, int(draw_index.max()) + 1)

    def prepare(sname: str) -> tuple[StrategyInputs, EngineInputs | Callable]:
        """A strategy's inputs and its EngineInputs (for stepped care in the cohort, a
        Chain, the function that makes its arms' EngineInputs: see run_chain)."""
        strat = build_strategy(scenario, sname, draws, inputs, cohort=not individual)
        if strat.chain is not None:
            return strat, engine_inputs
        patients = None
        if individual:
            # the engagement strata of one draw and attribute profile share its patients;
            # each profile has patients of its own (b = stratum * n + draw)
            first = np.repeat(strat.stratum_profile * s.patients, n)
            patients = PatientStreams(s.seed, np.tile(draw_index, strat.n_strata),
                                      s.patients, first, uniforms=supplied)
        return strat, engine_inputs(strat, patients)

    def engine_inputs(strat: StrategyInputs, patients: PatientStreams | None = None,
                      start: np.ndarray | None = None) -> EngineInputs:
        cols = slice(None) if strat.channels is None else strat.channels  # its own channels
        return EngineInputs(
            strat.start if start is None else start, strat.transition_at, strat.values_at,
            terms, disc[:, cols], n_cycles=s.n_cycles,
            transition_values=strat.transition_values, transition_discount=tdisc[:, cols],
            patients=patients, next_row=strat.next_row, pattern=strat.pattern,
            period_of=period_of,
        )

    return inputs, prepare


def every_channel(res: EngineResult, channels: np.ndarray, n_channels: int) -> EngineResult:
    """An engine's result on some channels (``StrategyInputs.channels``) on every channel, the
    others 0 (nothing filled them)."""
    def full(x):
        if x is None:
            return None
        out = np.zeros(x.shape[:-1] + (n_channels,))
        out[..., channels] = x
        return out

    return dataclasses.replace(res, discounted=full(res.discounted),
                               undiscounted=full(res.undiscounted),
                               by_cycle=full(res.by_cycle),
                               by_cycle_undiscounted=full(res.by_cycle_undiscounted),
                               by_period=full(res.by_period),
                               blocks=None if res.blocks is None else
                               (full(res.blocks[0]), full(res.blocks[1]), res.blocks[2]))


def expand_result(res: EngineResult, columns: np.ndarray) -> EngineResult:
    """An engine's result on merged profiles as every profile's strata
    (``StrategyInputs.expand``)."""
    def take(x):
        return None if x is None else x[columns]

    return dataclasses.replace(res, discounted=take(res.discounted),
                               undiscounted=take(res.undiscounted),
                               by_cycle=take(res.by_cycle),
                               by_cycle_undiscounted=take(res.by_cycle_undiscounted),
                               trace=take(res.trace),
                               by_period=take(res.by_period))


def run_chain(engine, strat: StrategyInputs, engine_inputs: Callable,
              outputs: Outputs, n_channels: int) -> EngineResult:
    """Run a stepped strategy in its chained form (:class:`vbhc_model.model.stepped.Chain`):
    the first strategy, keeping the trace rows at the switches, then each target from the
    mass that switched into it; the combined strata's result."""
    ch = strat.chain
    keep = dataclasses.replace(outputs, rows=tuple(sorted(set(ch.at))))

    def full(res: EngineResult, arm) -> EngineResult:  # an arm on its own channels
        return res if arm.channels is None else every_channel(res, arm.channels, n_channels)

    first = full(engine.run(engine_inputs(ch.first), keep), ch.first)
    targets = []
    for i, target in enumerate(ch.targets):
        switched = first.rows[ch.at[i]][ch.limbo[i]].T  # [batch, moved state]
        targets.append(full(engine.run(engine_inputs(target, start=ch.start(i, switched)),
                                       outputs), target))
    return ch.result(first, targets, trace=outputs.trace)


def simulate_patients(scenario: Scenario, draws: xr.DataArray) -> xr.Dataset:
    """Each patient of one draw (the base case), strategy by strategy: the state after each
    cycle and the totals (:func:`vbhc_model.model.patients.assemble_patients`).

    The patients are those of :func:`simulate` on the same draw (the same streams or replayed
    uniforms), and each patient's payoffs are accumulated over its own path with the engine's
    values, within-cycle correction and discounting
    (:func:`vbhc_model.engines.accumulate.accumulate_paths`), so their mean is the run's
    total, to rounding.

    Raises
    ------
    ValueError
        The scenario's engine has no individual patients, or ``draws`` holds more than one
        draw.
    """
    scenario, supplied = replay(scenario)
    engine = get_engine(scenario.settings.engine)
    if not engine.individual or draws.sizes[dims.DRAW] != 1:
        raise ValueError("per-patient results need an individual engine and one draw")
    inputs, prepare = _prepare(scenario, draws, True, supplied)
    runs = []
    for sname in scenario.strategies:
        strat, engine_inputs = prepare(sname)
        paths = engine.run(engine_inputs, Outputs(paths=True)).paths
        runs.append((strat, paths, *accumulate_paths(paths, engine_inputs)))
    return assemble_patients(scenario, inputs, runs, engine=engine.name)


def replay(scenario: Scenario) -> tuple[Scenario, np.ndarray | None]:
    """The uniforms a scenario's microsimulation replays (``settings.uniforms``), if any, and
    the scenario with ``settings.uniforms`` an absolute path and ``settings.patients`` the
    table's rows (one per patient).

    Raises
    ------
    ScenarioError
        ``settings.engine`` is not the microsimulation, or ``settings.patients`` was given
        and differs from the table's rows.
    vbhc_model.readers.uniforms.UniformsError
        The file cannot be replayed (:func:`vbhc_model.readers.uniforms.read_uniforms`).
    """
    s = scenario.settings
    if s.uniforms is None:
        return scenario, None
    src = scenario.source
    needs_patients(scenario, "uniforms", "--uniforms",
                   f"draws no random numbers, so it cannot replay the uniforms of "
                   f"settings.uniforms ({s.uniforms})", "replaying supplied uniforms",
                   population=True)
    path = resolve(s.uniforms, src.file if src else None)
    table = read_uniforms(path, s.n_cycles)
    rows = table.shape[-2]
    # With a population, the rows are the patients of every attribute profile, profile by
    # profile (profile p's patients are rows p x N .. (p + 1) x N - 1).
    profiles = profile_count(scenario)
    if rows % profiles:
        raise ScenarioError([settings_issue(scenario, "uniforms", (
            f"{path} holds uniforms for {rows:,} patients, which the population's "
            f"{profiles:,} attribute profiles cannot share equally: give {profiles:,} x N rows, "
            f"the patients of each profile in turn"))])
    per = rows // profiles
    if per != s.patients and "patients" in s.model_fields_set:
        each = f" ({profiles:,} profiles of {per:,})" if profiles > 1 else ""
        raise ScenarioError([settings_issue(scenario, "patients", (
            f"{s.patients:,} patients, but {path} holds uniforms for {rows:,}{each} (one row "
            f"per patient): drop settings.patients (and --patients) to take the number from "
            f"the file, or make them agree"))])
    return scenario.with_settings(uniforms=str(path), patients=per), table


def check_replay_draws(scenario: Scenario, table: np.ndarray, n_draws: int) -> None:
    """A table of uniforms per draw (``[draw, patient, cycle]``) must have one for every draw.

    Raises
    ------
    UniformsError
    """
    if table.ndim == 3 and n_draws > table.shape[0]:
        raise UniformsError(
            f"{scenario.settings.uniforms}: holds uniforms for {table.shape[0]:,} draws (draws "
            f"x patients x cycles) and the run needs {n_draws:,}: run at most "
            f"{table.shape[0]:,} draws, or give a table of patients x cycles (the same "
            f"uniforms for every draw)")


def needs_patients(scenario: Scenario, key: str, option: str, cannot: str, feature: str,
                   population: bool = False) -> None:
    """Refuse ``settings.<key>`` (or ``option``) unless the engine has individual patients
    and (unless ``population``) the scenario has no ``population:`` section (not there yet
    for the per-patient file).

    Raises
    ------
    ScenarioError
        Naming ``settings.engine`` (``'cohort' {cannot}``) or ``settings.<key>``.
    """
    s = scenario.settings
    if not get_engine(s.engine).individual:
        raise ScenarioError([settings_issue(scenario, "engine", (
            f"'{s.engine}' {cannot}: set 'engine: microsim' (or run with --engine microsim), "
            f"or drop settings.{key} ({option})"))])
    if scenario.population is not None and not population:
        raise ScenarioError([settings_issue(scenario, key, (
            f"{feature} in a scenario with a population: section is not there yet (each "
            f"attribute profile has patients of its own); drop settings.{key} ({option}), or "
            f"the population"))])


def settings_issue(scenario: Scenario, key: str, message: str) -> Issue:
    """An issue at ``settings.<key>`` of the scenario's file (with its line, if known)."""
    src = scenario.source
    return (src.issue(("settings", key), message) if src
            else Issue(scenario.name, f"settings.{key}", message))
