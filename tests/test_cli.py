"""The command line, end to end through typer's CliRunner."""

from __future__ import annotations

import json

import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model import __version__
from vbhc_model.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_run_default_prints_frontier_and_writes_files(tmp_path):
    out = tmp_path / "res"
    result = runner.invoke(app, ["run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("usual_care", "coach_cbt", "paintrainer", "ipp", "ICER", "frontier"):
        assert name in result.output
    ds = xr.open_dataset(out / "outcomes.nc")
    assert set(ds["strategy"].values) == {"usual_care", "coach_cbt", "paintrainer", "ipp",
                                          "stepped_care"}
    assert ds.attrs["engine"] == "cohort" and len(ds.attrs["scenario_sha256"]) == 64
    ds.close()
    lines = (out / "summary.csv").read_text().splitlines()
    assert lines[0].startswith("strategy,label,cost,effect")
    assert len(lines) == 6  # five strategies


def test_run_json_parses(tmp_path):
    result = runner.invoke(app, ["run", "--json", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    # sorted by cost: coach CBT is cost-saving against usual care in the default scenario
    assert {r["strategy"] for r in records} == {"usual_care", "coach_cbt", "paintrainer", "ipp",
                                               "stepped_care"}
    costs = [r["cost"] for r in records]
    assert costs == sorted(costs)
    for rec in records:
        assert {"strategy", "cost", "qalys", "icer", "status"} <= set(rec)
        assert rec["status"] in {"frontier", "dominated", "extendedly dominated"}
        # the default scenario's subgroups (rurality) and its stepped-care strategy
        assert set(rec["subgroups"]) == {"rural=rural", "rural=other"}
    stepped = next(r for r in records if r["strategy"] == "stepped_care")
    assert 0.5 < stepped["stepped_up"] < 0.9  # the share still in high-impact pain at 3 months
    assert stepped["subgroups"]["rural=rural"]["share"] == 0.44


def test_run_trace_keeps_trace(tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                 "--trace", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out / "outcomes.nc")
    assert ds["trace"].sizes["cycle"] == 61
    assert float(ds["trace"].sum("state").min()) > 1 - 1e-12
    ds.close()


def test_force_replaces_existing_results(tmp_path):
    # An earlier result (here one with a PSA) is replaced whole; a folder holding anything
    # vbhc did not write is refused instead (tests/report/test_files.py, issue 11).
    from vbhc_model.report.files import write_directory

    out = write_directory(tmp_path / "r",
                          lambda tmp: (tmp / "psa.nc").write_text("an earlier run's"))
    result = runner.invoke(app, ["run", "--out", str(out), "--force"])
    assert result.exit_code == 0
    assert not (out / "psa.nc").exists() and (out / "outcomes.nc").exists()


def test_validate_shipped_scenarios():
    files = sorted(SCENARIOS.glob("*.yaml")) + sorted((SCENARIOS / "reference").glob("*.yaml"))
    result = runner.invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok:") == len(files) >= 6


def test_schema_is_json_schema():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert {"metadata", "settings", "states", "transitions", "strategies"} <= set(doc["properties"])
    assert "Settings" in doc["$defs"]


def test_missing_file_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "file not found" in result.output and "Traceback" not in result.output


def test_negative_wtp_is_refused_by_every_command(tmp_path):
    thr = str(SCENARIOS / "reference" / "thr_dmhee.yaml")
    for args in (["dsa", thr, "--wtp", "-5", "--out", str(tmp_path / "d")],
                 ["voi", str(tmp_path), "--wtp", "-5"],
                 ["voi", str(tmp_path), "--wtp", "nan"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "--wtp must be a finite number >= 0" in result.output
    assert not (tmp_path / "d").exists()


def test_psa_options_need_draws_and_one_kind_of_cluster(tmp_path):
    for args, expected in ((["--workers", "2"], "--workers applies to the probabilistic"),
                           (["--seed", "3"], "--seed applies to the probabilistic"),
                           (["--draws", "10", "--workers", "2", "--scheduler", "tcp://x:1"],
                            "not both")):
        result = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2 and expected in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_psa_notes_a_model_without_uncertainty_and_unbalanced_sobol(tmp_path):
    hiv = str(SCENARIOS / "reference" / "hiv_chancellor_1997.yaml")
    result = CliRunner().invoke(app, ["run", hiv, "--draws", "100", "--sampling", "sobol", "--json",
                                      "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "every PSA draw is the base case" in result.stderr
    assert "100 is not (64 or 128 are)" in result.stderr
    assert "UserWarning" not in result.stderr
    with xr.open_dataset(tmp_path / "r" / "psa_summary.nc") as s:
        assert (s["evpi"].values == 0).all()  # not -0.00 from rounding


def test_run_engine_and_patients_override_the_scenario(tmp_path):
    out = tmp_path / "thr_micro"
    result = runner.invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                 "--engine", "microsim", "--patients", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out / "outcomes.nc") as ds:
        assert ds.attrs["engine"] == "microsim" and int(ds.attrs["n_patients"]) == 300
    bad = runner.invoke(app, ["run", "--patients", "0", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2


def test_the_default_tables_print_no_icer_for_a_negligible_gain(tmp_path):
    """Issue 14: the console never prints a nine-digit ICER for a negligible difference; it
    leads with the strategy of highest net monetary benefit."""
    import re

    result = runner.invoke(app, ["run", "--draws", "300", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    lead = next(i for i, line in enumerate(lines)
                if line.startswith("Highest net monetary benefit: coach_cbt at 50,000"))
    assert lines[lead + 1].startswith("strategy ")  # before the table
    for number in re.findall(r"\d{1,3}(?:,\d{3}){2,}", result.output):  # >= 1,000,000
        raise AssertionError(f"a seven-digit or longer figure printed: {number}")


def test_run_reports_value_based_prices(tmp_path):
    """Issue 15: each programme's value-based price, in the console and prices.csv."""
    import csv

    out = tmp_path / "r"
    result = runner.invoke(app, ["run", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Value-based price (the highest programme cost per person offered" in result.output
    rows = list(csv.DictReader((out / "prices.csv").open()))
    coach = [r for r in rows if r["strategy"] == "coach_cbt"]
    assert len(coach) == 3 and float(coach[0]["price"]) > float(coach[0]["programme_cost"]) > 0

