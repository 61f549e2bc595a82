"""Replaying supplied uniforms: a hand-computed example reproduced exactly, and the engine's
own Philox streams, supplied as a table, reproducing its run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engines.test_microsim import replicates, strategy_inputs
from vbhc_model.engines.accumulate import accumulate_paths
from vbhc_model.engines.base import EngineInputs, Outputs, PatientStreams
from vbhc_model.engines.corrections import discount_factors, quadrature_terms
from vbhc_model.engines.microsim import MicrosimEngine, patient_uniforms
from vbhc_model.scenario import default_scenario_path, load_scenario

#: Four patients x cycles 0..2 (column 0 draws the starting state).
UNIFORMS = np.array([
    [0.10, 0.50, 0.95],
    [0.60, 0.30, 0.80],
    [0.49, 0.75, 0.20],
    [0.99, 0.65, 0.00],
])
#: States healthy (H), sick (S), dead (D); half start healthy, half sick.
START = np.array([0.5, 0.5, 0.0])
USUAL = np.array([[0.7, 0.2, 0.1],
                  [0.0, 0.6, 0.4],
                  [0.0, 0.0, 1.0]])
TREAT = np.array([[0.8, 0.1, 0.1], USUAL[1], USUAL[2]])
#: Per cycle in each state: cost (channel 0) and QALYs (channel 1).
VALUES = np.array([[100.0, 1.0], [1000.0, 0.5], [0.0, 0.0]])


def hand_inputs(p: np.ndarray, uniforms: np.ndarray = UNIFORMS) -> EngineInputs:
    # End-of-cycle counting (cycle k values row k), discounted at 100% a year: the factors
    # 1/2 and 1/4 are exact, so every sum below is exact in floating point.
    terms = quadrature_terms(2, 1.0, "none")
    return EngineInputs(START[:, None], lambda k: p[:, :, None], lambda k: VALUES[:, :, None],
                        terms, discount_factors(terms.time, np.array([1.0, 1.0])), n_cycles=2,
                        patients=PatientStreams(99, np.array([0]), 4, uniforms=uniforms))


@pytest.mark.parametrize("engine", [MicrosimEngine(), MicrosimEngine(chunk=3, compiled=False)])
def test_replayed_uniforms_reproduce_a_hand_computed_example_exactly(engine):
    # By hand, the inverse CDF picks the first state whose cumulative probability exceeds u.
    # Start (cumulative 0.5, 1.0): u = 0.10, 0.49 -> H; 0.60, 0.99 -> S.
    # Usual care, H row cumulative (0.7, 0.9, 1.0), S row (0, 0.6, 1.0):
    #   patient 0: H, u 0.50 -> H, u 0.95 -> D        H H D
    #   patient 1: S, u 0.30 -> S, u 0.80 -> D        S S D
    #   patient 2: H, u 0.75 -> S, u 0.20 -> S        H S S
    #   patient 3: S, u 0.65 -> D, then D             S D D
    # Treatment, H row cumulative (0.8, 0.9, 1.0): the same uniforms (common random numbers)
    #   patient 0: H H D; patient 1: S S D; patient 2: H, u 0.75 -> H, u 0.20 -> H (H H H);
    #   patient 3: S D D.
    usual = engine.run(hand_inputs(USUAL), Outputs(trace=True))
    treat = engine.run(hand_inputs(TREAT), Outputs(trace=True))
    assert usual.trace[0].tolist() == [[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.25, 0.75]]
    assert treat.trace[0].tolist() == [[0.5, 0.5, 0.0], [0.5, 0.25, 0.25], [0.25, 0.0, 0.75]]
    # Usual care, per patient (cycle 1 at 1/2, cycle 2 at 1/4):
    #   costs 100/2 = 50, 1000/2 = 500, 1000/2 + 1000/4 = 750, 0       -> mean 1300/4 = 325
    #   QALYs 1/2 = 0.5, 0.5/2 = 0.25, 0.5/2 + 0.5/4 = 0.375, 0        -> mean 1.125/4
    #   undiscounted costs 100, 1000, 2000, 0 -> 775; QALYs 1, 0.5, 1, 0 -> 0.625
    assert usual.discounted.tolist() == [[325.0, 1.125 / 4]]
    assert usual.undiscounted.tolist() == [[775.0, 0.625]]
    # Treatment: costs 50, 500, 100/2 + 100/4 = 75, 0 -> 625/4; QALYs 0.5, 0.25, 0.75, 0
    #   -> 1.5/4; undiscounted costs 100, 1000, 200, 0 -> 325; QALYs 1, 0.5, 2, 0 -> 0.875
    assert treat.discounted.tolist() == [[625 / 4, 1.5 / 4]]
    assert treat.undiscounted.tolist() == [[325.0, 0.875]]


def test_each_patients_path_and_totals_in_the_hand_computed_example():
    inputs = hand_inputs(USUAL)
    res = MicrosimEngine().run(inputs, Outputs(paths=True))
    # H = 0, S = 1, D = 2; paths [batch, cycle, patient]
    assert res.paths[0].T.tolist() == [[0, 0, 2], [1, 1, 2], [0, 1, 1], [1, 2, 2]]
    disc, und = accumulate_paths(res.paths, inputs)
    # per patient, by hand (above): costs 50, 500, 750, 0; QALYs 0.5, 0.25, 0.375, 0
    assert disc[0].tolist() == [[50.0, 0.5], [500.0, 0.25], [750.0, 0.375], [0.0, 0.0]]
    assert und[0].tolist() == [[100.0, 1.0], [1000.0, 0.5], [2000.0, 1.0], [0.0, 0.0]]
    assert disc[0].mean(0).tolist() == res.discounted[0].tolist()


def test_a_table_of_the_engines_own_streams_replays_its_run_bit_for_bit():
    sc = load_scenario(default_scenario_path())  # engagement strata: columns share a draw
    draws, n, seed = replicates(sc, 3), 300, 11
    # table[d, i, k]: patient i's uniform of cycle k in draw d, from the engine's streams
    table = np.stack([np.stack([patient_uniforms(seed, d, k, 0, n)
                                for k in range(sc.settings.n_cycles + 1)], axis=1)
                      for d in range(3)])
    for sname in sc.strategies:
        runs = []
        for uniforms in (None, table):
            inputs = strategy_inputs(sc, sname, draws, lambda b: PatientStreams(
                seed, np.tile(np.arange(3), b // 3), n, uniforms=uniforms))
            runs.append(MicrosimEngine(chunk=128).run(inputs, Outputs(trace=True)))
        normal, replayed = runs
        for field in ("discounted", "undiscounted", "trace"):
            assert np.array_equal(getattr(normal, field), getattr(replayed, field)), field


def test_a_two_dimensional_table_serves_every_draw():
    one = MicrosimEngine().run(hand_inputs(USUAL), Outputs(trace=True))
    inputs = hand_inputs(USUAL)
    two = EngineInputs(np.repeat(START[:, None], 2, axis=1), lambda k: np.repeat(
        USUAL[:, :, None], 2, axis=2), lambda k: np.repeat(VALUES[:, :, None], 2, axis=2),
        inputs.terms, inputs.discount, n_cycles=2,
        patients=PatientStreams(1, np.array([0, 7]), 4, uniforms=UNIFORMS))
    res = MicrosimEngine().run(two, Outputs(trace=True))
    assert res.discounted.tolist() == [one.discounted[0].tolist()] * 2
    assert np.array_equal(res.trace, np.repeat(one.trace, 2, axis=0))


@pytest.mark.parametrize("uniforms, message", [
    (UNIFORMS[:3], "with 4 patients, got shape"),
    (UNIFORMS[0], "with 4 patients, got shape"),
    (np.where(UNIFORMS == 0.0, 1.0, UNIFORMS), r"must lie in \[0, 1\)"),
    (np.where(UNIFORMS == 0.0, np.nan, UNIFORMS), r"must lie in \[0, 1\)"),
])
def test_supplied_uniforms_are_checked(uniforms, message):
    with pytest.raises(ValueError, match=message):
        PatientStreams(1, np.array([0]), 4, uniforms=uniforms)


def test_the_engine_refuses_a_table_of_the_wrong_shape():
    with pytest.raises(ValueError, match="2 cycles need 3"):
        MicrosimEngine().run(hand_inputs(USUAL, UNIFORMS[:, :2]), Outputs())
    with pytest.raises(ValueError, match="hold 1 tables; draw 5 has none"):
        inputs = hand_inputs(USUAL, UNIFORMS[None])
        inputs = EngineInputs(inputs.start, inputs.transitions, inputs.values, inputs.terms,
                              inputs.discount, n_cycles=2,
                              patients=PatientStreams(1, np.array([5]), 4, uniforms=UNIFORMS[None]))
        MicrosimEngine().run(inputs, Outputs())
