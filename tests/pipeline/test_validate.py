"""vbhc validate --draws N: the uncertainty is checked too (issue 11)."""

from __future__ import annotations

from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.api import validate
from vbhc_model.cli import app

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"


def _negative_in_some_draws(tmp_path):
    """THR with an operative mortality drawn from a normal that goes below 0 in some draws."""
    text = THR.read_text().replace(
        "omrPTHR: {value: 0.02, distribution: {type: beta, alpha: 2, beta: 98}",
        "omrPTHR: {value: 0.02, distribution: {type: normal, mean: 0.02, sd: 0.02}")
    assert "type: normal, mean: 0.02, sd: 0.02" in text
    path = tmp_path / "thr_bad.yaml"
    path.write_text(text)
    return path


def test_the_base_case_passes_and_the_draws_do_not(tmp_path):
    path = _negative_in_some_draws(tmp_path)
    assert validate([path]).files[0].ok
    result = validate([path], draws=200)
    (issue,) = result.issues
    assert issue.draw is not None and issue.line == 87
    assert "outside [0, 1]" in issue.message
    assert f"in sampled draw {issue.draw}: omrPTHR = -" in issue.message


def test_cli_validate_draws_exits_2_naming_the_draw(tmp_path):
    path = _negative_in_some_draws(tmp_path)
    ok = CliRunner().invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, ["validate", str(path), "--draws", "200"])
    assert bad.exit_code == 2 and "in sampled draw" in bad.output and "Traceback" not in bad.output


def test_shipped_scenarios_pass_with_draws():
    result = validate([SCENARIOS / "chronic_pain_us.yaml", THR], draws=200)
    assert not result.issues, result.issues
