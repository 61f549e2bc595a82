"""Stepped care (``strategies.<name>.steps``): exact in the cohort, the microsimulation within
Monte Carlo error of it, a step that never triggers changes nothing.

The reference for "exact" is independent of the arms machinery: tests/data/stepped/
small_by_hand.yaml writes the stepped strategy of small.yaml by hand, the second arm as extra
states (``well_b``, ``sick_b``) with the new strategy's clock (``cycle - 2``), its programme as
payoffs of those states in its cycles 1..3 and its one-off cost on the switch as transition
payoffs, one strategy per engagement level of the new programme weighted by hand (0.7, 0.3).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT as REPO
from tests.engines.test_microsim import replicates
from vbhc_model import dims
from vbhc_model.cli import app
from vbhc_model.parameters import base_draws
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

DATA = REPO / "tests" / "data" / "stepped"
TOTALS = ("total_cost", "costs", "costs_undiscounted", "qalys", "qalys_undiscounted",
          "life_years", "clinician_hours")
PER_CYCLE = ("cycle_costs", "cycle_qalys", "cycle_life_years", "cycle_clinician_hours")
#: The engagement shares of the new strategy, weighting the hand-written strategies.
BY_HAND = {"full": 0.7, "partial": 0.3}


def _by_hand(hand, var: str) -> np.ndarray:
    return sum(w * hand[var].sel(strategy=s).values for s, w in BY_HAND.items())


@pytest.mark.parametrize("correction, count_start", [
    ("none", False), ("none", True), ("half_cycle", False), ("trapezoidal", False),
    ("simpson", False),
])
def test_the_cohort_equals_the_model_written_by_hand(correction, count_start):
    sc = load_scenario(DATA / "small.yaml").with_settings(
        within_cycle_correction=correction, count_start=count_start)
    hand = load_scenario(DATA / "small_by_hand.yaml").with_settings(
        within_cycle_correction=correction, count_start=count_start)
    # 20 sampled draws, the same values of p_sick and p_rec in both files
    draws = sample_draws(sc, 20, seed=5)
    hand_draws = base_draws(hand, 20).copy()
    for p in ("p_sick", "p_rec"):
        hand_draws.loc[{dims.PARAMETER: p}] = draws.sel({dims.PARAMETER: p}).values
    out = simulate(sc, draws, per_cycle=True, trace=True)
    ref = simulate(hand, hand_draws, per_cycle=True, trace=True)
    stepped = out.sel(strategy="stepped")
    for var in TOTALS + PER_CYCLE:
        np.testing.assert_allclose(stepped[var].values, _by_hand(ref, var), rtol=1e-12,
                                   atol=1e-12, err_msg=var)
    # the trace over the model's states: arm b's states are the same states
    trace = _by_hand(ref, "trace")
    names = list(ref[dims.STATE].values)
    for state in ("well", "sick", "dead"):
        expected = trace[..., names.index(state)]
        if state + "_b" in names:
            expected = expected + trace[..., names.index(state + "_b")]
        np.testing.assert_allclose(stepped["trace"].sel(state=state).values, expected,
                                   rtol=1e-12, atol=1e-14)
    # someone switched, and the switch changed the results
    assert stepped["clinician_hours"].values.min() > 0.1
    assert not np.allclose(stepped["total_cost"], out["total_cost"].sel(strategy="standard"))


def test_the_cohort_is_the_same_in_any_chunk_of_draws():
    sc = load_scenario(DATA / "small.yaml")
    draws = sample_draws(sc, 12, seed=3)
    whole = simulate(sc, draws)
    part = simulate(sc, draws.isel({dims.DRAW: slice(7, 12)}))
    for var in ("total_cost", "qalys", "costs", "clinician_hours"):
        np.testing.assert_array_equal(whole[var].values[7:], part[var].values)


def _never_triggers(tmp_path):
    """small.yaml with a state nobody enters, from which the step switches."""
    doc = yaml.safe_load((DATA / "small.yaml").read_text())
    doc["states"]["elsewhere"] = {}
    doc["transitions"]["elsewhere"] = {"elsewhere": "complement"}
    doc["strategies"]["stepped"]["steps"][0]["in_states"] = ["elsewhere"]
    path = tmp_path / "never.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_scenario(path)


@pytest.mark.parametrize("engine", ["cohort", "microsim"])
def test_a_step_that_never_triggers_changes_nothing(tmp_path, engine):
    sc = _never_triggers(tmp_path).with_settings(engine=engine, patients=500)
    out = simulate(sc, sample_draws(sc, 6, seed=2), per_cycle=True, trace=True)
    for var in TOTALS + PER_CYCLE + ("trace",):
        # equal up to the rounding of mixing the (empty) second arm's engagement strata
        np.testing.assert_allclose(out[var].sel(strategy="stepped").values,
                                   out[var].sel(strategy="standard").values,
                                   rtol=1e-13, atol=1e-15, err_msg=var)


def _with_steps(tmp_path, steps: list[dict], name: str = "steps"):
    """small.yaml with other steps for the stepped strategy."""
    doc = yaml.safe_load((DATA / "small.yaml").read_text())
    doc["strategies"]["stepped"]["steps"] = steps
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_scenario(path)


def test_two_steps_at_one_cycle_equal_one_step_from_both_states(tmp_path):
    # Two arms on the same target, entered from different states, hold the patients one arm
    # would: the totals agree (up to rounding: other strata, other sums).
    two = _with_steps(tmp_path, [{"at_cycle": 3, "in_states": ["sick"], "switch_to": "new"},
                                 {"at_cycle": 3, "in_states": ["well"], "switch_to": "new"}],
                      "two")
    one = _with_steps(tmp_path, [{"at_cycle": 3, "in_states": ["well", "sick"],
                                  "switch_to": "new"}], "one")
    draws = sample_draws(one, 8, seed=4)
    a = simulate(two, draws, per_cycle=True, trace=True).sel(strategy="stepped")
    b = simulate(one, draws, per_cycle=True, trace=True).sel(strategy="stepped")
    for var in TOTALS + PER_CYCLE + ("trace",):
        np.testing.assert_allclose(a[var].values, b[var].values, rtol=1e-12, atol=1e-13,
                                   err_msg=var)


def _with_a_tunnel(tmp_path):
    """small.yaml with 'sick' a tunnel state (recovery depends on time in state): a patient
    who switches keeps the time it has spent in 'sick'."""
    doc = yaml.safe_load((DATA / "small.yaml").read_text())
    doc["states"]["sick"] = {"tunnel": 3}
    doc["transitions"]["sick"]["well"] = (
        "where(cycle <= 2, p_rec * (1 + boost * engagement_effect), p_rec) * "
        "(1.5 - 0.25 * time_in_state)")
    path = tmp_path / "tunnel.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_scenario(path)


@pytest.mark.parametrize("variant", ["plain", "tunnel", "two steps"])
def test_the_microsimulation_is_within_3_mcse_of_the_cohort(tmp_path, variant):
    sc = {"plain": lambda: load_scenario(DATA / "small.yaml"),
          "tunnel": lambda: _with_a_tunnel(tmp_path),
          "two steps": lambda: _with_steps(tmp_path, [  # at 2 the sick, at 5 the well
              {"at_cycle": 2, "in_states": ["sick"], "switch_to": "new"},
              {"at_cycle": 5, "in_states": ["well"], "switch_to": "new"}]),
          }[variant]()
    n_reps, n_patients = 20, 2_000
    cohort = simulate(sc, base_draws(sc))
    micro = simulate(sc.with_settings(engine="microsim", patients=n_patients),
                     replicates(sc, n_reps))
    for var in ("total_cost", "costs", "qalys", "life_years", "clinician_hours"):
        exact = cohort[var].isel(draw=0)
        reps = micro[var]
        for name, r, e in (("mean", reps, exact),
                           ("increment", reps - reps.sel(strategy="standard"),
                            exact - exact.sel(strategy="standard"))):
            r, e = r.sel(strategy="stepped"), e.sel(strategy="stepped")
            mean = r.mean("draw").values
            mcse = r.std("draw", ddof=1).values / np.sqrt(n_reps)
            assert (mcse > 0).all(), (var, name)
            assert (np.abs(mean - e.values) <= 3 * mcse).all(), (var, name, mean, e.values, mcse)


def test_a_patient_keeps_its_path_until_the_switch():
    # Common random numbers: up to the end of cycle 2 the stepped strategy's patients are the
    # standard strategy's, in the same states (the arms are ordered state-major).
    sc = load_scenario(DATA / "small.yaml").with_settings(engine="microsim", patients=300)
    out = simulate(sc, replicates(sc, 4), trace=True)["trace"]
    early = out.isel(cycle=slice(0, 3))
    np.testing.assert_allclose(early.sel(strategy="stepped"), early.sel(strategy="standard"),
                               rtol=1e-13, atol=1e-15)
    assert not np.allclose(out.sel(strategy="stepped"), out.sel(strategy="standard"))


def test_vbhc_run_reports_the_stepped_strategy(tmp_path):
    res = CliRunner().invoke(app, ["run", str(DATA / "small.yaml"), "--out",
                                   str(tmp_path / "out"), "--json"])
    assert res.exit_code == 0, res.output
    assert "stepped" in res.output


POPULATION = REPO / "tests" / "data" / "population" / "two_attributes.yaml"


def _population_with_a_step(tmp_path, profile: tuple[int, int] | None = None):
    """tests/data/population/two_attributes.yaml with a stepped strategy (old care, then the
    new programme, whose engagement shares depend on rurality, for those sick after 2
    cycles); with ``profile``, the model of that one combination of levels, without a
    population (the attributes fixed as parameters)."""
    doc = yaml.safe_load(POPULATION.read_text())
    doc["strategies"]["stepped"] = {"steps": [
        {"at_cycle": 2, "in_states": ["sick"], "switch_to": "new"}]}
    name = "with_step"
    if profile is not None:
        del doc["population"]
        doc["parameters"]["rural"] = {"value": profile[0], "source": "test"}
        doc["parameters"]["severity"] = {"value": profile[1], "source": "test"}
        name = f"profile_{profile[0]}_{profile[1]}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_scenario(path)


def test_steps_and_attribute_profiles_compose_exactly(tmp_path):
    sc = _population_with_a_step(tmp_path)
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0}).sel(strategy="stepped")
    p_rural = 0.4
    weights = {(1, 0): p_rural * 0.7, (1, 1): p_rural * 0.3,
               (0, 0): (1 - p_rural) * 0.7, (0, 1): (1 - p_rural) * 0.3}
    parts = {}
    for key in weights:
        one = _population_with_a_step(tmp_path, key)
        parts[key] = simulate(one, base_draws(one)).isel({dims.DRAW: 0}).sel(strategy="stepped")
    for var in ("total_cost", "qalys", "life_years", "costs"):
        expected = sum(w * parts[k][var] for k, w in weights.items())
        np.testing.assert_allclose(out[var].values, expected.values, rtol=1e-12, err_msg=var)
    severe = [(1, 1), (0, 1)]
    expected = sum(weights[k] * parts[k]["qalys"] for k in severe) / 0.3
    np.testing.assert_allclose(out["subgroup_qalys"].sel(subgroup="severity=severe").values,
                               expected.values, rtol=1e-12)


def test_with_attribute_profiles_the_microsimulation_is_within_3_mcse(tmp_path):
    sc = _population_with_a_step(tmp_path)
    cohort = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    micro = simulate(sc.with_settings(engine="microsim", patients=1_000), replicates(sc, 16))
    for var in ("subgroup_total_cost", "subgroup_qalys", "total_cost", "qalys"):
        m = micro[var]
        inc = m.sel(strategy="stepped") - m.sel(strategy="old")
        exact_inc = cohort[var].sel(strategy="stepped") - cohort[var].sel(strategy="old")
        for r, e in ((m.sel(strategy="stepped"), cohort[var].sel(strategy="stepped")),
                     (inc, exact_inc)):
            mean, mcse = r.mean(dims.DRAW), r.std(dims.DRAW, ddof=1) / np.sqrt(16)
            z = np.abs(mean - e) / mcse
            assert float(z.max()) <= 3, (var, z.values)


def test_the_engagement_of_a_stepped_strategy_is_by_combination_of_levels():
    sc = load_scenario(DATA / "small.yaml")
    shares = simulate(sc, base_draws(sc))["engagement"].isel(draw=0)
    stepped = shares.sel(strategy="stepped")
    np.testing.assert_allclose(stepped.sel(level=["all/full", "all/partial"]), [0.7, 0.3],
                               rtol=1e-15)
    assert float(stepped.sum()) == pytest.approx(1.0, rel=1e-15)
    assert float(shares.sel(strategy="new", level="all/full")) == 0.0


def test_the_per_patient_file_of_a_stepped_strategy_adds_up(tmp_path):
    # vbhc run --patient-file: each patient's states (the arms mapped back to the states)
    # and totals; their means over patients are the run's totals, and the share of patients
    # in each state is the trace, stratum by stratum.
    from tests.pipeline.test_patients import check_means
    from vbhc_model import api

    result = api.run_scenario(DATA / "small.yaml", engine="microsim", patients=400,
                              patient_file=True, trace=True)
    check_means(result)
    ds = result.patients
    assert list(ds["state"].values) == ["well", "sick", "dead"]
    path = ds["path"].sel(strategy="stepped")
    assert set(ds["level"].values) >= {"all/full", "all/partial"}
    # the patients of both combinations are the same patients up to the switch (cycle 2)
    early = path.sel(level=["all/full", "all/partial"]).isel(cycle=slice(0, 3))
    np.testing.assert_array_equal(early.isel(level=0), early.isel(level=1))
    np.testing.assert_array_equal(early.isel(level=0),
                                  ds["path"].sel(strategy="standard", level="all")
                                  .isel(cycle=slice(0, 3)))
    trace = result.outcomes["trace"].isel(draw=0).sel(strategy="stepped")
    shares = sum(w * np.stack([(path.sel(level=f"all/{lv}") == i).mean("patient")
                               for i in range(3)], -1) for lv, w in BY_HAND.items())
    np.testing.assert_allclose(shares, trace, rtol=0, atol=1e-14)


def test_with_a_patient_table_steps_give_what_the_same_grid_gives(tmp_path):
    # population.patients: the four profiles of two_attributes.yaml as weighted rows
    from tests.model.test_population import GRID_AS_ROWS, _table_scenario

    grid = _population_with_a_step(tmp_path)
    table_path = _table_scenario(tmp_path, GRID_AS_ROWS, weight="weight")
    doc = yaml.safe_load(table_path.read_text())
    doc["strategies"]["stepped"] = {"steps": [
        {"at_cycle": 2, "in_states": ["sick"], "switch_to": "new"}]}
    table_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    table = load_scenario(table_path)
    out = simulate(table, base_draws(table)).isel({dims.DRAW: 0}).sel(strategy="stepped")
    ref = simulate(grid, base_draws(grid)).isel({dims.DRAW: 0}).sel(strategy="stepped")
    for var in ("total_cost", "qalys", "life_years", "costs"):
        np.testing.assert_allclose(out[var].values, ref[var].values, rtol=1e-13, err_msg=var)


def test_the_share_stepped_up_is_the_share_in_the_step_states_at_the_switch():
    """stepped_up counts the patients switched: the share of the cohort in the step's states
    at the end of its cycle under the first strategy (whose trace the stepped strategy follows
    until then); 0 for strategies without steps; the microsimulation counts its patients."""
    from tests.conftest import ROOT
    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.simulate import simulate
    from vbhc_model.scenario import load_scenario

    sc = load_scenario(ROOT / "tests" / "data" / "stepped" / "small.yaml")
    out = simulate(sc, base_draws(sc), trace=True).isel(draw=0)
    step = sc.strategies["stepped"].steps[0]
    expected = float(out["trace"].sel(strategy="standard", cycle=step.at_cycle,
                                      state=list(step.in_states)).sum())
    assert float(out["stepped_up"].sel(strategy="stepped")) == pytest.approx(expected,
                                                                          rel=1e-12)
    assert float(out["stepped_up"].sel(strategy="standard")) == 0.0
    micro = simulate(sc.with_settings(engine="microsim", patients=4_000),
                     base_draws(sc)).isel(draw=0)
    assert float(micro["stepped_up"].sel(strategy="stepped")) == pytest.approx(expected,
                                                                            abs=0.03)
    thr = load_scenario(ROOT / "scenarios" / "reference" / "thr_dmhee.yaml")
    assert "stepped_up" not in simulate(thr, base_draws(thr))


# --- The cohort's faster forms: the chain, merged profiles, sparse products -----------------

def _forms(sc, draws, **kw):
    """The results of the cohort's fast forms (chain, merged profiles) and of the combined
    model with every profile built (the forms of session 6)."""
    from vbhc_model.model import build
    from vbhc_model.pipeline import simulate as module

    fast = simulate(sc, draws, **kw)
    original = module.build_strategy
    module.build_strategy = lambda *a, cohort=False, **k: original(*a, cohort=False, **k)
    try:
        slow = simulate(sc, draws, **kw)
    finally:
        module.build_strategy = original
    assert build.build_strategy is original
    return fast, slow


def _assert_same(fast, slow, rtol=1e-12):
    assert set(fast.data_vars) == set(slow.data_vars)
    for var in fast.data_vars:
        if fast[var].dtype.kind == "f":
            np.testing.assert_allclose(fast[var].values, slow[var].values, rtol=rtol,
                                       atol=1e-14, err_msg=var)


@pytest.mark.parametrize("kw", [{}, {"trace": True}, {"per_cycle": True}])
def test_the_chain_equals_the_combined_model(kw):
    sc = load_scenario(DATA / "small.yaml")
    fast, slow = _forms(sc, sample_draws(sc, 40, seed=5), **kw)
    _assert_same(fast, slow)


def test_the_chain_with_attribute_profiles_equals_the_combined_model(tmp_path):
    sc = _population_with_a_step(tmp_path)
    fast, slow = _forms(sc, sample_draws(sc, 30, seed=2), trace=True)
    _assert_same(fast, slow)


def test_the_default_scenario_merged_and_chained_equals_every_profile_built():
    """The default scenario's rurality changes only the IPP's engagement shares: its strata
    are built once for both levels (and once for the stepped strategy, which it does not
    touch), and the subgroup results equal those of every profile built."""
    from vbhc_model.model.build import build_model, build_strategy
    from vbhc_model.scenario import default_scenario_path

    sc = load_scenario(default_scenario_path())
    draws = sample_draws(sc, 20, seed=9)
    fast, slow = _forms(sc, draws, per_cycle=True)
    _assert_same(fast, slow)
    inputs = build_model(sc, draws, strategies=False)
    for name in ("usual_care", "ipp", "stepped_care"):
        strat = build_strategy(sc, name, draws, inputs, cohort=True)
        assert strat.expand is not None, name
        assert strat.n_strata == 2 * len(strat.levels)  # every profile's strata reported


def test_a_step_can_set_parameters_for_the_switched_patients(tmp_path):
    """A step's ``parameters`` apply to the switched patients only: the same as a target
    strategy that sets them itself."""
    data = yaml.safe_load((DATA / "small.yaml").read_text())
    data["strategies"]["stepped"]["steps"][0]["parameters"] = {"rr": 0.3}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(data))
    data["strategies"]["stepped"]["steps"][0].pop("parameters")
    data["strategies"]["new"]["parameters"]["rr"] = 0.3
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(data))
    a = simulate(load_scenario(tmp_path / "a.yaml"), base_draws(load_scenario(tmp_path / "a.yaml")))
    b = simulate(load_scenario(tmp_path / "b.yaml"), base_draws(load_scenario(tmp_path / "b.yaml")))
    for var in ("total_cost", "qalys"):
        np.testing.assert_allclose(a[var].sel(strategy="stepped").values,
                                   b[var].sel(strategy="stepped").values, rtol=1e-12)
        assert not np.allclose(a[var].sel(strategy="new").values,
                               b[var].sel(strategy="new").values)  # only the switched


def test_the_sparse_product_is_the_dense_product_bit_for_bit():
    from vbhc_model.engines.cohort import _product

    rng = np.random.default_rng(1)
    for n, density in ((4, 0.4), (8, 0.3), (12, 0.2)):
        mask = rng.random((n, n)) < density
        np.fill_diagonal(mask, True)
        p = rng.random((n, n, 500)) * mask[:, :, None]
        row = rng.random((n, 500))
        dense, sparse = np.empty((n, 500)), np.empty((n, 500))
        np.einsum("sb,stb->tb", row, p, out=dense)
        _product(mask, n, 500)(row, p, sparse)
        assert np.array_equal(dense, sparse)


def test_the_cohort_keeps_the_trace_rows_asked_for():
    from vbhc_model.engines.base import Outputs
    from vbhc_model.engines.cohort import CohortEngine
    from vbhc_model.pipeline.simulate import _prepare

    sc = load_scenario(DATA / "small.yaml")
    _, prepare = _prepare(sc, base_draws(sc), False, None)
    _, inputs = prepare("standard")
    full = CohortEngine().run(inputs, Outputs(trace=True))
    _, inputs = prepare("standard")
    some = CohortEngine().run(inputs, Outputs(rows=(0, 3)))
    assert some.trace is None and set(some.rows) == {0, 3}
    for j in (0, 3):
        assert np.array_equal(some.rows[j], full.trace[:, j].T)
