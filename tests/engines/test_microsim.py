"""The microsimulation engine: equal to the cohort within Monte Carlo error, chunk invariance,
common random numbers.

Monte Carlo standard errors come from independent replications: the base-case draw repeated
R times with distinct draw indices (0..R-1) is R independent samples of N patients in one run
(a patient's streams are keyed by the draw index); the MCSE of the mean of the R replicate
means is their standard deviation / sqrt(R).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from vbhc_model import dims
from vbhc_model.engines.base import EngineInputs, Outputs, PatientStreams, TransitionValues
from vbhc_model.engines.cohort import CohortEngine
from vbhc_model.engines.corrections import discount_factors, quadrature_terms, transition_times
from vbhc_model.engines.microsim import MicrosimEngine, patient_uniforms
from vbhc_model.model.build import build_model, build_strategy
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import default_scenario_path, load_scenario

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"
HIV = SCENARIOS / "reference" / "hiv_chancellor_1997.yaml"
HIV_HEEMOD = SCENARIOS / "reference" / "hiv_chancellor_1997_heemod.yaml"
HIV_LSHTM = SCENARIOS / "reference" / "hiv_chancellor_1997_lshtm.yaml"
PAIN_COURSE = SCENARIOS / "pain_course_au.yaml"
#: What is compared, where the scenario has it: totals by channel and, per service and per
#: role, utilisation and clinician hours.
COMPARED = ("total_cost", "costs", "qalys", "life_years", "utilisation", "clinician_hours")


def replicates(scenario, n_reps: int):
    """The base-case draw repeated ``n_reps`` times, with draw indices 0..n_reps-1."""
    base = base_draws(scenario)
    return base.isel({dims.DRAW: np.zeros(n_reps, dtype=int)}).assign_coords(
        {dims.DRAW: np.arange(n_reps)})


def strategy_inputs(scenario, sname: str, draws, streams_for=None) -> EngineInputs:
    """The engine inputs of one strategy, as the pipeline builds them."""
    s = scenario.settings
    inputs = build_model(scenario, draws, strategies=False)
    terms = quadrature_terms(s.n_cycles, s.cycle_length, s.within_cycle_correction,
                             s.count_start, s.discount_timing)
    tdisc = discount_factors(transition_times(s.n_cycles, s.cycle_length,
                                              s.within_cycle_correction, s.discount_timing,
                                              s.count_start), inputs.rates)
    strat = build_strategy(scenario, sname, draws, inputs)
    return EngineInputs(strat.start, strat.transition_at, strat.values_at, terms,
                        discount_factors(terms.time, inputs.rates), n_cycles=s.n_cycles,
                        transition_values=strat.transition_values, transition_discount=tdisc,
                        patients=streams_for(strat.start.shape[1]) if streams_for else None,
                        next_row=strat.next_row)


@pytest.mark.parametrize("path, n_reps, n_patients", [
    (THR, 20, 2_000),
    (HIV, 20, 2_000),
    (HIV_HEEMOD, 20, 2_000),
    (HIV_LSHTM, 20, 2_000),
    (default_scenario_path(), 16, 1_000),
    (PAIN_COURSE, 16, 1_000),
])
def test_microsimulation_equals_the_cohort_within_3_mcse(path, n_reps, n_patients):
    sc = load_scenario(path)
    cohort = simulate(sc, base_draws(sc))
    micro = simulate(sc.with_settings(engine="microsim", patients=n_patients),
                     replicates(sc, n_reps))
    assert micro.attrs["engine"] == "microsim" and micro.attrs["n_patients"] == n_patients
    compared = [v for v in COMPARED if v in cohort and cohort[v].size]
    assert {"total_cost", "qalys", "life_years"} <= set(compared)
    for var in compared:
        exact = cohort[var].isel(draw=0)
        reps = micro[var]
        increments = reps - reps.isel(strategy=0)
        exact_inc = exact - exact.isel(strategy=0)
        for name, r, e in (("mean", reps, exact), ("increment", increments, exact_inc)):
            mean = r.mean("draw").values
            mcse = r.std("draw", ddof=1).values / np.sqrt(n_reps)
            ok = np.abs(mean - e.values) <= 3 * mcse + 1e-9 * np.abs(exact.values).max()
            assert ok.all(), (var, name, mean, e.values, mcse)


def test_results_are_bit_identical_for_any_patient_chunk():
    sc = load_scenario(THR)
    draws = replicates(sc, 3)
    out = []
    for chunk in (7, 1_000):
        inputs = strategy_inputs(sc, "np1", draws, lambda b: PatientStreams(5, np.arange(b), 1_500))
        out.append(MicrosimEngine(chunk).run(inputs, Outputs(trace=True, per_cycle=True)))
    for name in ("discounted", "undiscounted", "by_cycle", "by_cycle_undiscounted", "trace"):
        np.testing.assert_array_equal(getattr(out[0], name), getattr(out[1], name))


def test_results_are_bit_identical_for_any_chunk_of_draws():
    sc = load_scenario(THR).with_settings(engine="microsim", patients=500)
    whole = simulate(sc, replicates(sc, 10))
    part = simulate(sc, replicates(sc, 10).isel(draw=slice(6, 10)))
    for var in ("total_cost", "qalys", "costs"):
        np.testing.assert_array_equal(whole[var].values[6:], part[var].values)


@pytest.mark.parametrize("n_states", [2, 4, 8, 9, 13])
def test_the_kernels_equal_the_numpy_path(n_states):
    # Random matrices with impossible moves, by cycle; flows on some pairs; 3 columns of 2
    # draws; a chunk that does not divide the patients. 8 states and fewer: the kernel counts
    # comparisons; more: a binary search (microsim_kernel.FEW_STATES).
    rng = np.random.default_rng(n_states)
    n_cycles, batch = 6, 3
    P = rng.dirichlet(np.ones(n_states), size=(n_cycles + 1, n_states, batch))
    P = np.where(rng.random(P.shape) < 0.3, 0.0, P)
    P[..., 0] += 1e-3
    P = np.ascontiguousarray((P / P.sum(axis=-1, keepdims=True)).transpose(0, 1, 3, 2))
    start = rng.dirichlet(np.ones(n_states), size=batch).T
    V = rng.random((n_states, 2, batch))
    pairs = [(a, b) for a in range(n_states) for b in range(n_states) if rng.random() < 0.3]
    TV = rng.random((len(pairs), 2, batch))
    terms = quadrature_terms(n_cycles, 1.0)
    inputs = EngineInputs(start, lambda k: P[k], lambda k: V, terms,
                          discount_factors(terms.time, np.array([0.03, 0.0])),
                          n_cycles=n_cycles,
                          transition_values=TransitionValues(np.array([a for a, _ in pairs]),
                                                             np.array([b for _, b in pairs]),
                                                             lambda k: TV),
                          transition_discount=np.ones((n_cycles, 2)),
                          patients=PatientStreams(4, np.array([7, 2, 7]), 1_001))
    outputs = Outputs(trace=True, per_cycle=True)
    compiled = MicrosimEngine(chunk=250).run(inputs, outputs)
    numpy_path = MicrosimEngine(chunk=1_001, compiled=False).run(inputs, outputs)
    for name in ("discounted", "undiscounted", "by_cycle", "trace"):
        np.testing.assert_array_equal(getattr(compiled, name), getattr(numpy_path, name))
    assert len(np.unique(compiled.trace[:, -1].argmax(axis=1))) > 1  # the columns differ


@pytest.mark.parametrize("compiled", [True, False])
def test_strategies_run_together_give_the_results_of_each_alone(compiled):
    # The default scenario: strategies with and without engagement strata (batches of 2 and
    # 6 columns) and one-off values on transitions; then strategies whose draws differ.
    sc = load_scenario(default_scenario_path())
    draws = replicates(sc, 2)
    outputs = Outputs(trace=True, per_cycle=True)
    engine = MicrosimEngine(chunk=128, compiled=compiled)
    same = lambda b: PatientStreams(9, np.arange(b) % 2, 301)  # noqa: E731
    other = lambda b: PatientStreams(9, 5 + np.arange(b) % 2, 301)  # noqa: E731
    # columns with patients of their own (first_patient), and a replayed table of uniforms
    own = lambda b: PatientStreams(9, np.arange(b) % 2, 301, 301 * (np.arange(b) // 2))  # noqa: E731
    table = np.random.default_rng(0).random((2, 301, sc.settings.n_cycles + 1))
    replayed = lambda b: PatientStreams(9, np.arange(b) % 2, 301, uniforms=table)  # noqa: E731
    for plan in ([(s, same) for s in sc.strategies], [("usual_care", same), ("coach_cbt", other)],
                 [("usual_care", own), ("coach_cbt", own)],
                 [("usual_care", replayed), ("ipp", replayed)]):
        alone = [engine.run(strategy_inputs(sc, s, draws, f), outputs) for s, f in plan]
        together = engine.run_strategies([strategy_inputs(sc, s, draws, f) for s, f in plan],
                                         outputs)
        for a, t in zip(alone, together, strict=True):
            for name in ("discounted", "undiscounted", "by_cycle", "by_cycle_undiscounted",
                         "trace"):
                np.testing.assert_array_equal(getattr(a, name), getattr(t, name))
    assert len({r.trace.shape[0] for r in alone}) > 1  # the batches differ
    with pytest.raises(ValueError, match="same seed"):
        engine.run_strategies([strategy_inputs(sc, "usual_care", draws, same),
                               strategy_inputs(sc, "usual_care", draws,
                                               lambda b: PatientStreams(8, np.zeros(b), 301))],
                              outputs)


def test_one_thread_and_two_give_bit_identical_results():
    # One thread: the strategies run together on shared uniforms; two: side by side.
    sc = load_scenario(THR).with_settings(engine="microsim", patients=3)
    draws = replicates(sc, 1_000)
    one, two = (simulate(sc, draws, threads=k) for k in (1, 2))
    for var in ("total_cost", "qalys", "costs"):
        np.testing.assert_array_equal(one[var].values, two[var].values)


def test_patient_uniforms_do_not_depend_on_the_chunk():
    whole = patient_uniforms(11, 2, 5, 0, 1_001)
    pieces = [patient_uniforms(11, 2, 5, a, b - a) for a, b in ((0, 3), (3, 10), (10, 1_001))]
    np.testing.assert_array_equal(whole, np.concatenate(pieces))
    assert not np.isin(whole, patient_uniforms(11, 2, 6, 0, 1_001)).any()


def test_a_patient_follows_the_same_path_under_identical_strategies():
    # One patient per batch column (200 columns with their own streams): each trace is the
    # path of one patient. Two strategies with the same transitions and different payoffs.
    sc = load_scenario(THR)
    draws = base_draws(sc, 200)
    streams = lambda b: PatientStreams(3, np.arange(b), 1)  # noqa: E731
    a = strategy_inputs(sc, "standard", draws, streams)
    b = strategy_inputs(sc, "standard", draws, streams)
    b = EngineInputs(b.start, b.transitions, lambda k: 2.0 * a.values(k), b.terms, b.discount,
                     n_cycles=b.n_cycles, transition_values=b.transition_values,
                     transition_discount=b.transition_discount, patients=b.patients)
    ra = MicrosimEngine().run(a, Outputs(trace=True))
    rb = MicrosimEngine().run(b, Outputs(trace=True))
    assert set(np.unique(ra.trace)) <= {0.0, 1.0}
    np.testing.assert_array_equal(ra.trace, rb.trace)
    assert len({tuple(p.argmax(axis=1)) for p in ra.trace}) > 1  # the patients differ


def test_common_random_numbers_shrink_the_error_of_increments():
    sc = load_scenario(THR)
    draws = base_draws(sc, 40)
    crn = lambda b: PatientStreams(1, np.arange(b), 200)  # noqa: E731
    other = lambda b: PatientStreams(2, np.arange(b), 200)  # noqa: E731
    run = lambda s, st: MicrosimEngine().run(strategy_inputs(sc, s, draws, st), Outputs())  # noqa: E731
    base = run("standard", crn).discounted
    with_crn = run("np1", crn).discounted - base
    without = run("np1", other).discounted - base
    assert with_crn.std(axis=0).sum() < without.std(axis=0).sum()


def test_the_microsimulation_needs_its_patients():
    sc = load_scenario(THR)
    with pytest.raises(ValueError, match="needs EngineInputs.patients"):
        MicrosimEngine().run(strategy_inputs(sc, "standard", base_draws(sc)), Outputs())
    # The cohort ignores them.
    inputs = strategy_inputs(sc, "standard", base_draws(sc),
                             lambda b: PatientStreams(1, np.arange(b), 10))
    assert CohortEngine().run(inputs, Outputs()).discounted.shape[0] == 1


def test_the_batch_means_mcse_agrees_with_independent_replications():
    """The MCSE each run reports (blocks of its own patients) against the spread of the means
    of 40 independent runs: their ratio near 1 for the totals and the increments."""
    sc = load_scenario(THR).with_settings(engine="microsim", patients=2_000)
    micro = simulate(sc, replicates(sc, 40))
    for var in ("total_cost", "qalys"):
        for name, values, mcse in (
                ("total", micro[var], micro[f"mcse_{var}"]),
                ("increment", micro[var] - micro[var].isel(strategy=0),
                 micro[f"mcse_inc_{var}"])):
            spread = values.std("draw", ddof=1).isel(strategy=1)
            reported = np.sqrt((mcse**2).mean("draw")).isel(strategy=1)
            assert 0.75 < float(reported / spread) < 1.33, (var, name, float(reported),
                                                           float(spread))
    assert float(micro["mcse_inc_qalys"].isel(strategy=0).max()) == 0.0


def test_blocks_for_the_mcse_leave_the_totals_bit_identical():
    sc = load_scenario(THR)
    draws = replicates(sc, 3)
    plain = MicrosimEngine().run(
        strategy_inputs(sc, "np1", draws, lambda b: PatientStreams(5, np.arange(b), 1003)),
        Outputs())
    blocked = MicrosimEngine(chunk=77).run(
        strategy_inputs(sc, "np1", draws, lambda b: PatientStreams(5, np.arange(b), 1003)),
        Outputs(mcse=20))
    np.testing.assert_array_equal(plain.discounted, blocked.discounted)
    np.testing.assert_array_equal(plain.undiscounted, blocked.undiscounted)
    disc, _, sizes = blocked.blocks
    assert sizes.sum() == 1003 and len(sizes) == 20
    np.testing.assert_allclose((disc * sizes[:, None, None]).sum(0) / 1003, plain.discounted,
                               rtol=1e-13)
