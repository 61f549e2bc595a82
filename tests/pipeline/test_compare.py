"""Variants (``variants:``), ``vbhc run --variant`` and ``vbhc compare`` (issue 14: structural
choices ship as scenario variants with a side-by-side comparison)."""

from __future__ import annotations

import csv

import numpy as np
from typer.testing import CliRunner

from vbhc_model.cli import app
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import default_scenario_path, load_scenario

runner = CliRunner()


def test_a_variant_sets_its_parameters_and_nothing_else():
    sc = load_scenario(default_scenario_path())
    v = sc.with_variant("ipp_as_coach")
    assert v.name == "chronic_pain_us_ipp_as_coach" and v.variant == "ipp_as_coach"
    assert v.parameters["rr_resp_ipp"].distribution is None
    assert "variant 'ipp_as_coach'" in v.parameters["rr_resp_ipp"].source
    assert sc.parameters["rr_resp_ipp"].distribution is not None  # the original untouched
    a, b = simulate(sc, base_draws(sc)), simulate(v, base_draws(v))
    for s in ("usual_care", "coach_cbt", "paintrainer", "stepped_care"):
        np.testing.assert_array_equal(a["qalys"].sel(strategy=s), b["qalys"].sel(strategy=s))
    assert b["qalys"].sel(strategy="ipp").item() != a["qalys"].sel(strategy="ipp").item()
    # in the variant the IPP's relative risk follows coach CBT's in every draw
    assert "rr_resp_ipp" not in [str(p) for p in base_draws(v)["parameter"].values]


def test_run_variant_writes_its_own_folder_and_records_it(tmp_path, monkeypatch):
    import xarray as xr

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "--variant", "no_waning"])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(tmp_path / "results" / "chronic_pain_us_no_waning" / "outcomes.nc")
    assert ds.attrs["variant"] == "no_waning"
    ds.close()
    bad = runner.invoke(app, ["run", "--variant", "no_wanning", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "variants: no variant 'no_wanning'; did you mean 'no_waning'?" in bad.output
    assert not (tmp_path / "x").exists()


def test_compare_puts_the_variants_side_by_side(tmp_path):
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", "--draws", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Variants of ")
    assert "Coach-led telehealth CBT (P " in result.output  # labels, not codes
    sc = load_scenario(default_scenario_path())
    rows = list(csv.DictReader((out / "variants.csv").open()))
    assert [r["variant"] for r in rows[::len(sc.strategies)]] == ["base", *sc.variants]
    base = {r["strategy"]: r for r in rows if r["variant"] == "base"}
    # the base case's row is what vbhc run gives
    run = runner.invoke(app, ["run", "--draws", "200", "--out", str(tmp_path / "run")])
    summary = {r["strategy"]: r for r in csv.DictReader((tmp_path / "run" / "summary.csv").open())}
    for s in sc.strategies:
        assert float(base[s]["cost"]) == float(summary[s]["cost"])
        assert float(base[s]["p_ce_50000"]) == float(summary[s]["p_ce_at_50000"])
    assert run.exit_code == 0
    # no waning gains more than fast waning for coach CBT
    eff = {(r["variant"], r["strategy"]): float(r["effect"]) for r in rows}
    assert eff[("no_waning", "coach_cbt")] > eff[("base", "coach_cbt")] > eff[
        ("fast_waning", "coach_cbt")]


def test_compare_without_variants_is_a_clear_error(tmp_path):
    from tests.conftest import ROOT

    result = runner.invoke(app, ["compare", str(ROOT / "scenarios" / "reference" /
                                                 "thr_dmhee.yaml"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "has no 'variants:' section: nothing to compare" in result.output
    assert not (tmp_path / "c").exists()


def test_the_perspective_decides_what_total_cost_sums():
    """Societal categories (productivity, patients' time) are reported by category under
    either perspective and counted in total_cost only under the societal one."""
    sc = load_scenario(default_scenario_path())
    soc = sc.with_variant("societal")
    assert soc.settings.perspective == "societal" and sc.settings.perspective == "health_care"
    a, b = simulate(sc, base_draws(sc)).isel(draw=0), simulate(soc, base_draws(soc)).isel(draw=0)
    societal = ["productivity", "patient_time"]
    np.testing.assert_allclose(a["costs"].values, b["costs"].values, rtol=1e-13)
    health = a["costs"].drop_sel(category=societal).sum("category")
    np.testing.assert_allclose(a["total_cost"].values, health.values, rtol=1e-13)
    np.testing.assert_allclose(b["total_cost"].values, b["costs"].sum("category").values,
                               rtol=1e-13)
    assert float(a["costs"].sel(category="productivity", strategy="usual_care")) > 0
    assert a.attrs["perspective"] == "health_care" and b.attrs["perspective"] == "societal"


def test_bad_variant_settings_and_categories_are_file_line_key_errors(tmp_path):
    import yaml

    from tests.conftest import ROOT

    src = ROOT / "tests" / "data" / "bad_scenarios" / "variant_unknown_parameter.yaml"
    data = yaml.safe_load(src.read_text())
    data["variants"] = {"longer": {"settings": {"n_cycle": 20}},
                        "wrong": {"settings": {"perspective": "payer"}}, "empty": {}}
    data["cost_categories"] = {"productivity": {"perspective": "societal"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    out = result.output
    assert "variants.longer.settings.n_cycle: unknown setting 'n_cycle'; did you mean 'n_cycles'?" in out
    assert "variants.wrong.settings.perspective:" in out and "health_care" in out
    assert "variants.empty: a variant sets parameters, settings or plan keys" in out
    assert "cost_categories.productivity: no cost uses category 'productivity'" in out


def test_compare_force_replaces_its_own_results(tmp_path):
    out = tmp_path / "cmp"
    assert runner.invoke(app, ["compare", "--out", str(out)]).exit_code == 0
    again = runner.invoke(app, ["compare", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert runner.invoke(app, ["compare", "--out", str(out), "--force"]).exit_code == 0
