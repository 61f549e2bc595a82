"""Patient attributes (``population:``): the cohort runs their combinations as strata exactly,
the microsimulation gives each combination patients of its own, and subgroups are the
within-subgroup means.

The reference for "exactly" is independent of the strata machinery: the same model written
once per combination of attribute levels, without a population, the attributes replaced by
their values as parameters, and the results weighted by hand.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT as REPO
from vbhc_model import dims
from vbhc_model.cli import app
from vbhc_model.errors import ScenarioError
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

MODEL = REPO / "tests" / "data" / "population" / "two_attributes.yaml"
TOTALS = ("total_cost", "qalys", "life_years")


def _profile_scenario(tmp_path, rural: int, severity: int):
    """The model for one combination of levels: attributes as fixed parameters."""
    doc = yaml.safe_load(MODEL.read_text())
    del doc["population"]
    doc["parameters"]["rural"] = {"value": rural, "source": "test"}
    doc["parameters"]["severity"] = {"value": severity, "source": "test"}
    path = tmp_path / f"profile_{rural}_{severity}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_scenario(path)


def test_the_cohort_runs_attribute_combinations_as_exact_strata(tmp_path):
    sc = load_scenario(MODEL)
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    p_rural = 0.4
    weights = {(1, 0): p_rural * 0.7, (1, 1): p_rural * 0.3,
               (0, 0): (1 - p_rural) * 0.7, (0, 1): (1 - p_rural) * 0.3}
    parts = {}
    for (rural, severity) in weights:
        one = _profile_scenario(tmp_path, rural, severity)
        parts[rural, severity] = simulate(one, base_draws(one)).isel({dims.DRAW: 0})
    for var in TOTALS:
        expected = sum(w * parts[k][var] for k, w in weights.items())
        np.testing.assert_allclose(out[var].values, expected.values, rtol=1e-13, err_msg=var)
    # subgroups: the weighted mean within each level
    members = {"severity=mild": [(1, 0), (0, 0)], "severity=severe": [(1, 1), (0, 1)],
               "rural=rural": [(1, 0), (1, 1)], "rural=urban": [(0, 0), (0, 1)]}
    assert list(out[dims.SUBGROUP].values) == list(members)
    for group, keys in members.items():
        total = sum(weights[k] for k in keys)
        np.testing.assert_allclose(out["subgroup_share"].sel(subgroup=group).values, total,
                                   rtol=1e-14)
        for var in TOTALS:
            expected = sum(weights[k] * parts[k][var] for k in keys) / total
            np.testing.assert_allclose(out[f"subgroup_{var}"].sel(subgroup=group).values,
                                       expected.values, rtol=1e-13, err_msg=(group, var))
    # engagement shares depend on rurality: the reported share is the population's
    stop = out["engagement"].sel(strategy="new", level="stop")
    assert float(stop) == pytest.approx(p_rural * 0.3 + (1 - p_rural) * 0.2, rel=1e-14)


def test_the_microsimulation_matches_the_cohort_per_subgroup_within_3_mcse():
    sc = load_scenario(MODEL)
    cohort = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    reps = base_draws(sc).isel({dims.DRAW: np.zeros(16, dtype=int)}).assign_coords(
        {dims.DRAW: np.arange(16)})
    micro = simulate(sc.with_settings(engine="microsim", patients=1_000), reps)
    for var in ("subgroup_total_cost", "subgroup_qalys", "total_cost", "qalys"):
        m = micro[var]
        inc = m.sel(strategy="new") - m.sel(strategy="old")
        exact_inc = cohort[var].sel(strategy="new") - cohort[var].sel(strategy="old")
        for r, e in ((m, cohort[var]), (inc, exact_inc)):
            mean, mcse = r.mean(dims.DRAW), r.std(dims.DRAW, ddof=1) / np.sqrt(16)
            z = np.abs(mean - e) / mcse
            assert float(z.max()) <= 3, (var, z.values)


def test_attribute_profiles_have_their_own_patients_and_strata_of_one_profile_share_them():
    """Patients of different profiles draw different uniforms (so subgroup results are
    independent samples); a PSA gives the same draw the same patients in any chunk."""
    sc = load_scenario(MODEL).with_settings(engine="microsim", patients=300)
    whole = run_psa(sc, 6, chunk_size=6)
    parts = run_psa(sc, 6, chunk_size=4)
    for var in ("total_cost", "qalys", "subgroup_total_cost", "subgroup_qalys"):
        np.testing.assert_array_equal(whole[var].values, parts[var].values, err_msg=var)
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    old = out["subgroup_qalys"].sel(strategy="old")
    # the two rurality subgroups of usual care differ by their patients' luck as well
    assert float(old.sel(subgroup="rural=rural")) != float(old.sel(subgroup="rural=urban"))


def test_a_psa_keeps_subgroup_results_and_the_run_analyses_them(tmp_path):
    result = CliRunner().invoke(app, ["run", str(MODEL), "--draws", "200", "--out",
                                      str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    records = json.loads(result.output[result.output.index("["):])
    new = next(r for r in records if r["strategy"] == "new")
    assert set(new["subgroups"]) == {"severity=mild", "severity=severe", "rural=rural",
                                     "rural=urban"}
    mild = new["subgroups"]["severity=mild"]
    assert mild["share"] == pytest.approx(0.7)
    assert set(mild["p_cost_effective"]) == {"20000", "50000"}
    old_mild = next(r for r in records if r["strategy"] == "old")["subgroups"]["severity=mild"]
    for w in ("20000", "50000"):
        assert mild["p_cost_effective"][w] + old_mild["p_cost_effective"][w] == \
            pytest.approx(1.0)
        assert mild["optimal"][w] != old_mild["optimal"][w]
    import pandas as pd

    frame = pd.read_csv(tmp_path / "r" / "subgroups.csv")
    assert len(frame) == 8 and {"subgroup", "share", "strategy", "icer", "p_ce_at_20000",
                                "optimal_at_50000"} <= set(frame.columns)
    again = CliRunner().invoke(app, ["run", str(MODEL), "--out", str(tmp_path / "r"),
                                     "--force"])
    assert again.exit_code == 0, again.output  # a folder with subgroups.csv is vbhc's


def test_a_scenario_without_population_has_no_subgroup_variables():
    sc = load_scenario(REPO / "scenarios" / "reference" / "thr_dmhee.yaml")
    out = simulate(sc, base_draws(sc))
    assert not any(v.startswith("subgroup") for v in out.data_vars)


@pytest.mark.parametrize("edit, line_key, message", [
    (lambda d: d["population"].update(subgroups=["rurality"]), "population.subgroups[0]",
     "unknown attribute 'rurality'; did you mean 'rural'?"),
    (lambda d: d["population"]["attributes"].update(p_ill=d["population"]["attributes"]["rural"]),
     "population.attributes.p_ill", "both an attribute and one of the parameters"),
    (lambda d: d["parameters"]["p_die"].update(value="0.05 * (1 + rural)"),
     "parameters.p_die.value", "patient attributes can be used in transitions"),
    (lambda d: d["population"]["attributes"]["severity"]["levels"]["mild"].update(share=0.6),
     "population.attributes.severity.levels", "shares sum to 0.9, not 1"),
    (lambda d: d["population"]["attributes"]["rural"]["levels"]["rural"].update(
        share="complement"), "population.attributes.rural.levels",
     "at most one level may be 'complement'"),
    (lambda d: d["population"]["attributes"]["rural"]["levels"]["rural"].pop("value"),
     "population.attributes.rural.levels.rural.value", "missing required key 'value'"),
    (lambda d: d["population"]["attributes"].update(
        {f"a{i}": {"levels": {f"l{j}": {"share": 1 / 8, "value": j} for j in range(8)},
                   "source": "t"} for i in range(4)}), "population.attributes",
     "combinations of attribute levels"),
    (lambda d: d["population"]["attributes"]["rural"]["levels"]["rural"].update(
        share="p_rural * (1 + severity)"),
     "population.attributes.rural.levels.rural.share", "unknown name 'severity'"),
])
def test_bad_population_input_names_the_file_line_and_key(tmp_path, edit, line_key, message):
    doc = yaml.safe_load(MODEL.read_text())
    edit(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "bad.yaml, line " in result.output and line_key in result.output, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_attribute_shares_are_checked_in_every_draw():
    sc = load_scenario(MODEL)
    draws = base_draws(sc)
    bad = draws.copy()
    bad.loc[{"parameter": "p_rural"}] = 1.2
    with pytest.raises(ScenarioError, match="attribute 'rural' share is"):
        simulate(sc, bad)


def test_profiles_are_every_combination_in_file_order():
    from vbhc_model.model.build import build_model, build_strategy

    sc = load_scenario(MODEL)
    draws = base_draws(sc)
    strat = build_strategy(sc, "new", draws, build_model(sc, draws, strategies=False))
    prof = strat.profiles
    assert prof.labels == [f"rural={r}, severity={s}" for r, s in
                           itertools.product(("rural", "urban"), ("mild", "severe"))]
    np.testing.assert_allclose(prof.weights[0], [0.28, 0.12, 0.42, 0.18], rtol=1e-14)
    assert strat.n_strata == 4 * 2 and strat.shares.shape == (1, 8)


def _table_scenario(tmp_path, rows: str, **patients):
    doc = yaml.safe_load(MODEL.read_text())
    (tmp_path / "patients.csv").write_text(rows)
    doc["population"] = {"patients": {"file": "patients.csv", "source": "test", **patients},
                         "subgroups": ["severity", "rural"]}
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


GRID_AS_ROWS = "rural,severity,weight\n1,0,28\n1,1,12\n0,0,42\n0,1,18\n"


def test_a_patient_table_runs_its_rows_as_strata_like_the_same_grid(tmp_path):
    """The grid of two_attributes.yaml at its base case, written as four weighted rows."""
    sc = load_scenario(_table_scenario(tmp_path, GRID_AS_ROWS, weight="weight"))
    grid = load_scenario(MODEL)
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    ref = simulate(grid, base_draws(grid)).isel({dims.DRAW: 0})
    for var in TOTALS:
        np.testing.assert_allclose(out[var].values, ref[var].values, rtol=1e-14, err_msg=var)
    assert list(out[dims.SUBGROUP].values) == ["severity=0", "severity=1", "rural=0", "rural=1"]
    pairs = {"severity=0": "severity=mild", "severity=1": "severity=severe",
             "rural=0": "rural=urban", "rural=1": "rural=rural"}
    for mine, theirs in pairs.items():
        for var in ("subgroup_total_cost", "subgroup_qalys", "subgroup_share"):
            np.testing.assert_allclose(out[var].sel(subgroup=mine).values,
                                       ref[var].sel(subgroup=theirs).values, rtol=1e-13,
                                       err_msg=(mine, var))


def test_a_patient_table_without_weights_weighs_rows_equally(tmp_path):
    rows = "rural,severity\n1,0\n0,1\n"
    sc = load_scenario(_table_scenario(tmp_path, rows))
    out = simulate(sc, base_draws(sc)).isel({dims.DRAW: 0})
    np.testing.assert_allclose(out["subgroup_share"].isel(strategy=0).values, 0.5)


@pytest.mark.parametrize("rows, patients, message", [
    ("rural,severity,weight\n1,0,1\n0,x,1\n", {"weight": "weight"},
     "column 'severity': 'x' is not a finite number"),
    ("rural,severity,weight\n1,0,-1\n0,1,1\n", {"weight": "weight"},
     "weight -1 in row 1 (line 2) of column 'weight' is negative"),
    ("rural,severity\n1,0\n", {"weight": "w"}, "no column 'w'"),
    ("rural,sev\n1,0\n", {}, "unknown name 'severity'"),
])
def test_bad_patient_tables_are_refused_with_the_file_and_what_is_wrong(tmp_path, rows,
                                                                          patients, message):
    path = _table_scenario(tmp_path, rows, **patients)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output, result.output
    assert "table.yaml, line " in result.output, result.output


def test_attributes_and_a_patient_table_together_are_refused(tmp_path):
    doc = yaml.safe_load(MODEL.read_text())
    doc["population"]["patients"] = {"file": "p.csv", "source": "t"}
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "not both" in result.output, result.output


def test_the_per_patient_file_says_it_does_not_take_a_population_yet(tmp_path):
    result = CliRunner().invoke(app, ["run", str(MODEL), "--engine", "microsim", "--patients",
                                      "1", "--patient-file", "--out", str(tmp_path / "o")],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "settings.patient_output" in result.output and "population" in result.output


def test_a_population_replays_its_own_uniforms_bit_for_bit(tmp_path):
    """The rows of a uniforms table are the patients of every attribute profile in turn:
    the engine's own streams written out so replay the run exactly; a table whose rows the
    profiles cannot share equally is refused."""
    from vbhc_model.engines.microsim import patient_uniforms

    n, sc = 50, load_scenario(MODEL)
    profiles, cycles = 4, sc.settings.n_cycles + 1
    table = np.column_stack([np.concatenate([
        patient_uniforms(sc.settings.seed, 0, c, p * n, n) for p in range(profiles)])
        for c in range(cycles)])
    np.save(tmp_path / "u.npy", table)
    micro = sc.with_settings(engine="microsim", patients=n)
    expected = simulate(micro, base_draws(sc))
    replayed = simulate(micro.with_settings(uniforms=str(tmp_path / "u.npy")), base_draws(sc))
    for var in ("total_cost", "qalys", "subgroup_total_cost", "subgroup_qalys"):
        np.testing.assert_array_equal(replayed[var].values, expected[var].values, err_msg=var)
    np.save(tmp_path / "odd.npy", table[:-1])
    with pytest.raises(ScenarioError, match="cannot share equally"):
        simulate(micro.model_copy(update={"settings": micro.settings.model_copy(
            update={"uniforms": str(tmp_path / "odd.npy")})}), base_draws(sc))


def test_a_level_with_no_patients_is_reported_as_an_empty_subgroup(tmp_path):
    """A 'men only' population: the other level's subgroup has no patients; the run reports
    it as such instead of failing on its undefined means."""
    doc = yaml.safe_load(MODEL.read_text())
    doc["parameters"]["p_rural"] = {"value": 0, "source": "test"}
    path = tmp_path / "urban_only.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["run", str(path), "--draws", "30", "--out",
                                      str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    records = json.loads(result.output[result.output.index("["):])
    empty = records[0]["subgroups"]["rural=rural"]
    assert empty["share"] == 0 and empty["status"] == "no patients"
    assert empty["cost"] is None and empty["p_cost_effective"]["20000"] is None
    full = records[0]["subgroups"]["rural=urban"]
    assert full["share"] == 1 and full["cost"] == pytest.approx(records[0]["cost"], rel=1e-12)


def test_the_microsimulation_reports_its_monte_carlo_errors_in_the_tables(tmp_path):
    result = CliRunner().invoke(app, ["run", str(MODEL), "--engine", "microsim", "--patients",
                                      "400", "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    import json

    import pandas as pd

    records = json.loads(result.output[result.output.index("["):])
    assert records[0]["mcse"]["inc_cost"] == 0 and records[1]["mcse"]["inc_cost"] > 0
    frame = pd.read_csv(tmp_path / "r" / "summary.csv")
    assert {"mcse_cost", "mcse_effect", "mcse_inc_cost", "mcse_inc_effect"} <= set(frame)
    columns = pd.read_csv(tmp_path / "r" / "subgroups_columns.csv")
    assert set(columns["column"]) == set(pd.read_csv(tmp_path / "r" / "subgroups.csv").columns)
    assert (columns["description"].str.len() > 0).all()
    few = CliRunner().invoke(app, ["run", str(MODEL), "--engine", "microsim", "--patients",
                                   "20", "--out", str(tmp_path / "few")])
    assert few.exit_code == 0 and "Monte Carlo standard errors" not in few.output
    cohort = CliRunner().invoke(app, ["run", str(MODEL), "--patients", "20", "--out",
                                      str(tmp_path / "c")])
    assert cohort.exit_code == 0 and "ignores it" in cohort.output


def test_a_microsimulation_of_a_patient_table_says_how_many_patients_it_runs(tmp_path):
    path = _table_scenario(tmp_path, GRID_AS_ROWS, weight="weight")
    result = CliRunner().invoke(app, ["run", str(path), "--engine", "microsim", "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "10,000 patients for each of the patient table's 4 rows (40,000 in all)" in \
        result.output
    quiet = CliRunner().invoke(app, ["run", str(path), "--engine", "microsim", "--patients",
                                     "1", "--out", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and "for each of the patient table" not in quiet.output
