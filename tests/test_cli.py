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
    for name in ("Usual care", "Coach-led telehealth CBT", "Self-guided online CBT (painTRAINER)",
                 "Interdisciplinary pain programme", "ICER", "frontier"):
        assert name in result.output
    assert "coach_cbt" not in result.output  # labels for people; codes in the files
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
                if line.startswith("Highest net monetary benefit: Coach-led telehealth CBT at "
                                   "50,000"))
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
    # Issue 11 (N9): as the console: no row for usual care (no programme), no negative price
    assert "usual_care" not in {r["strategy"] for r in rows}
    assert all(r["price"] == "" or float(r["price"]) >= 0 for r in rows)



def test_a_psa_prints_labels_and_one_conclusion_per_wtp_and_nothing_on_stderr(tmp_path):
    """Issue 11 (FH7): every console table names strategies by their labels (the codes stay in
    the files); one line per WTP says which is best, how sure, and the EVPI; with stderr not a
    terminal, no progress line."""
    import csv

    out = tmp_path / "r"
    result = runner.invoke(app, ["run", "--draws", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    text = result.stdout
    for code in ("usual_care", "coach_cbt", "paintrainer", "stepped_care"):
        assert code not in text
    psa = xr.open_dataset(out / "psa_summary.nc")
    labels = dict(zip(psa["strategy"].values, psa["strategy_label"].values))
    for k, w in enumerate(psa["wtp"].values):
        best = str(psa["strategy"].values[int(psa["expected_nmb"].values[:, k].argmax())])
        p = float(psa["ceac"].sel(strategy=best).values[k])
        evpi = float(psa["evpi"].values[k])
        assert (f"At {w:,.0f} USD 2025 per QALY: {labels[best]} is best (P {p:.2f} that it is "
                f"cost-effective); EVPI {evpi:,.2f} USD 2025 per person") in text
    psa.close()
    subgroups = text[text.index("Subgroups"):]
    assert "Coach-led telehealth CBT (P " in subgroups
    prices = text[text.index("Value-based price"):]
    assert "\nCoach-led telehealth CBT " in prices and "\nInterdisciplinary pain programme " in prices
    assert {r["strategy"] for r in csv.DictReader((out / "summary.csv").open())} >= {"coach_cbt"}


def test_short_strategy_labels_stay_distinct():
    from vbhc_model.report.table import short_strategy_label, strategy_names

    assert short_strategy_label("x" * 50).endswith("...")
    assert len(short_strategy_label("word " * 20)) <= 40
    assert strategy_names({"a": "Same (one)", "b": "Same (two)"}) == {
        "a": "Same (one)", "b": "Same (two)"}
    # two labels that shorten alike keep their codes
    long = "A programme with a very long name indeed"
    names = strategy_names({"a": long + " (first version)", "b": long + " (second version)"})
    assert names == {"a": "a", "b": "b"}


def test_convergence_advice_names_each_command_s_own_options(monkeypatch, tmp_path):
    """Issue 11 (N4, N5): vbhc fit's advice names its --draws/--tune/--chains/--target-accept
    options; vbhc update's names its --fit-* options and never --allow-unconverged (which it
    does not have)."""
    from vbhc_model.fitting import run as fitting
    from vbhc_model.fitting.run import FIT_ADVICE, ConvergenceError
    from vbhc_model.pipeline import update as updating

    assert "--target-accept 0.95" in FIT_ADVICE and "--tune N" in FIT_ADVICE
    seen = {}

    def fake_fit(path, **kwargs):
        seen.update(kwargs)
        raise ConvergenceError(f"{path}: the fit did not converge\n  - R-hat 1.02\n{FIT_ADVICE}")

    monkeypatch.setattr(fitting, "fit", fake_fit)
    fit_file = SCENARIOS / "fits" / "resolve.yaml"
    res = runner.invoke(app, ["fit", str(fit_file), "--target-accept", "0.97",
                              "--out", str(tmp_path / "f")])
    assert res.exit_code == 3 and seen["target_accept"] == 0.97
    assert "--target-accept 0.95" in res.output and "--allow-unconverged" in res.output

    def fake_update(*args, **kwargs):
        fake_fit("resolve.yaml")

    monkeypatch.setattr(updating, "update", fake_update)
    res = runner.invoke(app, ["update", str(fit_file), "--data",
                              str(SCENARIOS / "examples" / "resolve_new_outcomes.csv"),
                              "--out", str(tmp_path / "u")])
    assert res.exit_code == 3, res.output
    assert "--fit-draws N --fit-tune N" in res.output and "R-hat 1.02" in res.output
    assert "--allow-unconverged" not in res.output
