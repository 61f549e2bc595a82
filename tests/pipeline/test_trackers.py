"""Trackers (``trackers:``): a patient's history in the microsimulation.

- a tunnel model in the cohort equals the same model without the tunnel and with a
  time-in-state tracker in the microsimulation, within 3 Monte Carlo standard errors (and the
  two microsimulations move every patient alike);
- time_since, count and ever trackers replay a hand-computed example exactly;
- the compiled kernel equals the numpy path, in any chunk of patients;
- the update rules, and a cohort run refused with a located message.

The errors of bad tracker input (unknown state or kind, clashing names, a tracker in a
parameter, the cohort engine, ...) are files of tests/data/bad_scenarios/ (``tracker_*``),
run through ``vbhc validate`` and ``vbhc run`` by tests/scenario/test_bad_scenarios.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.engines.test_microsim import replicates, strategy_inputs
from vbhc_model.cli import app
from vbhc_model.engines.base import Outputs, PatientStreams
from vbhc_model.engines.microsim import MicrosimEngine
from vbhc_model.errors import ScenarioError
from vbhc_model.model.trackers import build_trackers
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate, simulate_patients
from vbhc_model.scenario import load_scenario

runner = CliRunner()

#: A tunnel state whose transitions and payoffs depend on the time in it; one-off values on
#: transitions (into dead from anywhere), half-cycle correction, two strategies.
TUNNEL = """\
metadata: {title: Tunnel, currency: USD, perspective: payer, country: US}
settings:
  cycle_length: 1 year
  n_cycles: 12
  discount: {costs: 0.03, effects: 0.03}
  start: {well: 0.8, sick: 0.2}
  wtp: [50000]
  within_cycle_correction: half_cycle
parameters:
  p_sick: {value: 0.2, source: test}
  c_sick: {value: 1000, source: test}
  rr: {value: 1, source: test}
  rr_new: {value: 0.7, source: test}
states:
  well: {}
  sick: {tunnel: 4}
  dead: {absorbing: true, alive: false}
transitions:
  well: {well: complement, sick: p_sick * rr, dead: 0.01}
  sick: {sick: complement, well: 0.1 * time_in_state, dead: '0.02 + 0.03 * min(time_in_state, 3)'}
payoffs:
  well: {utility: 0.9}
  sick: {utility: '0.7 - 0.05 * time_in_state', costs: {care: c_sick / time_in_state}}
transition_payoffs:
  - {to: dead, costs: {end: 500}}
strategies:
  standard: {}
  new:
    parameters: {rr: rr_new}
"""

#: The same model without the tunnel: the time in state is a tracker capped at the tunnel's
#: length (4 means 4 or more, as the tunnel's last sub-state does).
TRACKER = (TUNNEL.replace("sick: {tunnel: 4}", "sick: {}").replace("time_in_state", "t_in")
           + "trackers:\n  t_in: {kind: time_in_state, cap: 4}\n")


def scenario(tmp_path, text: str, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_scenario(path)


def test_a_tunnel_in_the_cohort_equals_a_time_in_state_tracker_within_3_mcse(tmp_path):
    tunnel = scenario(tmp_path, TUNNEL, "tunnel")
    tracker = scenario(tmp_path, TRACKER, "tracker")
    cohort = simulate(tunnel, base_draws(tunnel))
    n_reps = 20
    micro = simulate(tracker.with_settings(engine="microsim", patients=2_000),
                     replicates(tracker, n_reps))
    for var in ("total_cost", "costs", "qalys", "life_years"):
        exact = cohort[var].isel(draw=0)
        reps = micro[var]
        for name, r, e in (("mean", reps, exact),
                           ("increment", reps - reps.isel(strategy=0),
                            exact - exact.isel(strategy=0))):
            mean = r.mean("draw").values
            mcse = r.std("draw", ddof=1).values / np.sqrt(n_reps)
            assert (mcse[1] > 0).all()  # strategy 'new' (its increment too) is random
            ok = np.abs(mean - e.values) <= 3 * mcse + 1e-9 * np.abs(exact.values).max()
            assert ok.all(), (var, name, mean, e.values, mcse)


def test_the_tracker_moves_every_patient_as_the_tunnel_does(tmp_path):
    # Zeros in a row do not change its cumulative sums, so a patient draws the same state
    # from the tunnel's expanded row as from the tracker's row: the same paths, and totals
    # equal to rounding (the sums run over other rows).
    tunnel = scenario(tmp_path, TUNNEL, "tunnel").with_settings(engine="microsim",
                                                               patients=3_000)
    tracker = scenario(tmp_path, TRACKER, "tracker").with_settings(engine="microsim",
                                                                  patients=3_000)
    a = simulate_patients(tunnel, base_draws(tunnel))
    b = simulate_patients(tracker, base_draws(tracker))
    np.testing.assert_array_equal(a["path"].values, b["path"].values)
    assert len(np.unique(a["path"].values)) == 3
    for var in ("total_cost", "qalys", "life_years"):
        np.testing.assert_allclose(a[var].values, b[var].values, rtol=1e-12, atol=1e-12)
    ta = simulate(tunnel, base_draws(tunnel), trace=True)
    tb = simulate(tracker, base_draws(tracker), trace=True)
    np.testing.assert_allclose(ta["trace"].values, tb["trace"].values, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ta["total_cost"].values, tb["total_cost"].values, rtol=1e-13)


#: time_since, count and ever trackers in a model small enough to follow by hand:
#: healthy -> sick is less likely after each episode of sickness (count), sick -> healthy
#: more likely from the second cycle of an episode (time_since); an episode costs 100 per
#: cycle since it began, healthy costs 10 per past episode, and a past episode lowers the
#: utility of health (ever). Undiscounted, correction 'none' (rows 1..6 counted).
HAND = """\
metadata: {title: trackers by hand, currency: USD, perspective: payer, country: US}
settings:
  cycle_length: 1 year
  n_cycles: 6
  discount: {costs: 0, effects: 0}
  start: {healthy: 1}
  wtp: [50000]
  engine: microsim
  uniforms: u.csv
states:
  healthy: {}
  sick: {}
  dead: {absorbing: true, alive: false}
transitions:
  healthy: {healthy: complement, sick: 0.4 - 0.1 * n_sick, dead: 0.1}
  sick: {healthy: 'where(since_sick >= 2, 0.6, 0.2)', sick: complement, dead: 0.1}
payoffs:
  healthy: {utility: 1 - 0.1 * was_sick, costs: {care: 10 * n_sick}}
  sick: {utility: 0.5, costs: {care: 100 * since_sick}}
trackers:
  since_sick: {kind: time_since, event: {enter: [sick]}, never: 0, cap: 2}
  n_sick: {kind: count, event: {enter: [sick]}, cap: 2}
  was_sick: {kind: ever, event: {enter: [sick]}}
strategies:
  usual: {}
"""

#: Uniforms of 4 patients, cycles 0..6 (column 0 draws the start: everyone is healthy).
#: Rows by tracker values, in state order healthy, sick, dead: healthy with n_sick = n has
#: cumulative sums 0.5 + 0.1 n, 0.9, 1; sick with since_sick 1: 0.2, 0.9, 1; 2: 0.6, 0.9, 1.
UNIFORMS = [
    [0.5, 0.6, 0.5, 0.5, 0.7, 0.5, 0.7],
    [0.5, 0.2, 0.95, 0.5, 0.5, 0.5, 0.5],
    [0.5, 0.85, 0.1, 0.65, 0.15, 0.8, 0.95],
    [0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
]


def test_time_since_count_and_ever_replay_a_hand_computed_example(tmp_path):
    # Patient 1: H -> S (since 1, n 1): 100, QALY 0.5; S stays (since 2): 200, 0.5; S -> H
    #   (since stays 2, the cap; n 1, ever 1): 10, 0.9; H (n 1: cum 0.6, 0.9) u 0.7 -> S
    #   (since 1, n 2): 100, 0.5; S stays (since 2): 200, 0.5; S (since 2: cum 0.6) u 0.7
    #   stays (since 3 -> cap 2): 200, 0.5. Cost 810, QALYs 3.4.
    # Patient 2: H stays (since never, n 0): 0, 1; u 0.95 -> dead. Cost 0, QALYs 1.
    # Patient 3: H -> S: 100, 0.5; S (since 1) u 0.1 -> H (n 1): 10, 0.9; H (n 1) u 0.65
    #   -> S (since 1, n 2): 100, 0.5; u 0.15 -> H (n 2): 20, 0.9; H (n 2: cum 0.7, 0.9)
    #   u 0.8 -> S (n 3 -> cap 2, since 1): 100, 0.5; u 0.95 -> dead. Cost 330, QALYs 3.3.
    # Patient 4: healthy throughout, never sick: cost 0, QALYs 6.
    (tmp_path / "u.csv").write_text(
        "c0,c1,c2,c3,c4,c5,c6\n" + "".join(",".join(map(repr, r)) + "\n" for r in UNIFORMS))
    (tmp_path / "hand.yaml").write_text(HAND)
    out = tmp_path / "res"
    result = runner.invoke(app, ["run", str(tmp_path / "hand.yaml"), "--out", str(out),
                                 "--patient-file"])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out / "outcomes.nc") as ds:
        assert ds["total_cost"].values[0, 0] == pytest.approx((810 + 0 + 330 + 0) / 4,
                                                              rel=1e-14)
        assert ds["qalys"].values[0, 0] == pytest.approx((3.4 + 1 + 3.3 + 6) / 4, rel=1e-14)
    with xr.open_dataset(out / "patients.nc") as ds:
        np.testing.assert_allclose(ds["total_cost"].values[0], [810, 0, 330, 0], rtol=1e-14)
        np.testing.assert_allclose(ds["qalys"].values[0], [3.4, 1, 3.3, 6], rtol=1e-14)
        # the states, as the comments above follow them (0 healthy, 1 sick, 2 dead)
        assert ds["path"].values[0, 0].tolist() == [
            [0, 1, 1, 0, 1, 1, 1], [0, 0, 2, 2, 2, 2, 2], [0, 1, 0, 1, 0, 1, 2], [0] * 7]


def test_the_kernel_equals_the_numpy_path_with_trackers(tmp_path):
    # Two trackers (time in state and a count of entries into sick), one-off values on
    # transitions, three draws; chunks that do not divide the patients.
    text = TRACKER.replace(
        "  t_in: {kind: time_in_state, cap: 4}\n",
        "  t_in: {kind: time_in_state, cap: 4}\n"
        "  n_sick: {kind: count, cap: 3, event: {enter: [sick]}}\n").replace(
        "well: {utility: 0.9}", "well: {utility: '0.9 - 0.02 * n_sick'}")
    sc = scenario(tmp_path, text, "two")
    inputs = strategy_inputs(sc, "new", replicates(sc, 3),
                             lambda b: PatientStreams(3, np.arange(b), 1_001))
    assert inputs.start.shape[0] == 3 * 4 * 4  # states x combinations
    outputs = Outputs(trace=True, per_cycle=True, mcse=7)
    compiled = MicrosimEngine(chunk=250).run(inputs, outputs)
    numpy_path = MicrosimEngine(chunk=1_001, compiled=False).run(inputs, outputs)
    other_chunk = MicrosimEngine(chunk=77).run(inputs, outputs)
    for name in ("discounted", "undiscounted", "by_cycle", "trace"):
        np.testing.assert_array_equal(getattr(compiled, name), getattr(numpy_path, name))
        np.testing.assert_array_equal(getattr(compiled, name), getattr(other_chunk, name))
    # patients reach every count of entries, the cap included
    reached = compiled.trace.sum(axis=(0, 1)).reshape(3, 4, 4).sum(axis=(0, 1))
    assert (reached > 0).all()


def test_the_update_rules(tmp_path):
    sc = scenario(tmp_path, HAND.replace("  uniforms: u.csv\n", ""), "rules")
    tr = build_trackers(sc)
    assert tr.names == ("since_sick", "n_sick", "was_sick")
    assert tr.n_combos == 3 * 3 * 2
    labels = tr.labels()
    H, S, D = 0, 1, 2

    def walk(*states):
        c, state = tr.start, states[0]
        for nxt in states[1:]:
            c, state = tr.next_combo[c, state, nxt], nxt
        return labels[c]

    assert walk(H) == "since_sick=0, n_sick=0, was_sick=0"  # never: 0
    assert walk(H, H, H) == "since_sick=0, n_sick=0, was_sick=0"
    assert walk(H, S) == "since_sick=1, n_sick=1, was_sick=1"
    assert walk(H, S, S, S, H) == "since_sick=2, n_sick=1, was_sick=1"  # cap 2
    assert walk(H, S, H, S, H, S) == "since_sick=1, n_sick=2, was_sick=1"  # 3 -> cap 2
    assert walk(H, S, D) == "since_sick=2, n_sick=1, was_sick=1"
    # the starting state is not an event; staying in sick is not a new one
    assert build_trackers(sc).start == 0
    assert walk(S, S) == "since_sick=0, n_sick=0, was_sick=0"


def test_the_cohort_refuses_trackers_naming_the_tracker(tmp_path):
    sc = scenario(tmp_path, TRACKER, "tracker")
    assert sc.settings.engine == "cohort"
    with pytest.raises(ScenarioError, match=r"tracker\.yaml, line \d+: trackers\.t_in: "
                                            r"tracker 't_in' needs individual patients"):
        simulate(sc, base_draws(sc))


def test_trackers_with_a_population_and_the_psa_chunk_they_need(tmp_path):
    """A tracker in a scenario with patient attributes: the subgroups' share-weighted means
    add up to the totals; and a tracker's combinations cut a microsimulation PSA's chunk."""
    import yaml

    from tests.conftest import ROOT
    from vbhc_model import dims
    from vbhc_model.defaults import MICROSIM_CHUNK_CELLS
    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.chunk import draws_per_chunk
    from vbhc_model.pipeline.simulate import simulate
    from vbhc_model.scenario import load_scenario

    doc = yaml.safe_load((ROOT / "tests" / "data" / "population" / "two_attributes.yaml")
                         .read_text())
    doc["settings"]["engine"] = "microsim"
    doc["settings"]["patients"] = 500
    doc["trackers"] = {"t_sick": {"kind": "time_in_state", "cap": 4}}
    doc["transitions"]["sick"]["well"] = "0.2 - 0.05 * severity - 0.02 * t_sick"
    path = tmp_path / "tracked.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    sc = load_scenario(path)
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    for var in ("total_cost", "qalys"):
        for attr in ("rural", "severity"):
            groups = [g for g in out[dims.SUBGROUP].values if g.startswith(attr + "=")]
            share = out["subgroup_share"].sel(subgroup=groups)
            mixed = (out[f"subgroup_{var}"].sel(subgroup=groups) * share).sum(dims.SUBGROUP)
            np.testing.assert_allclose(mixed.values, out[var].values, rtol=1e-12)
    many = sc.model_copy(update={"trackers": {
        "t_sick": sc.trackers["t_sick"].model_copy(update={"cap": 1000})}})
    many._source = sc.source
    assert draws_per_chunk(many, 10_000) < draws_per_chunk(sc, 10_000)
    assert draws_per_chunk(many, 10_000) * 1000 * 9 * 8 <= MICROSIM_CHUNK_CELLS
