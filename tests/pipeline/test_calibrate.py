"""vbhc calibrate: targets reproduced through the cohort model (sampling importance resampling)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"


def write_cal(tmp_path, targets: str, prior: str = "{type: beta, alpha: 2, beta: 98}",
              settings: str = "{prior_draws: 20000, posterior_draws: 2000, seed: 3}"):
    path = tmp_path / "cal.yaml"
    path.write_text(f"name: thr_cal\nsource: simulated\nscenario: {THR}\n"
                    f"parameters:\n  omrPTHR: {prior}\ntargets:\n{targets}settings: {settings}\n")
    return path


def test_calibration_recovers_a_parameter_through_the_model(tmp_path):
    # In THR, the share dead after cycle 1 of the standard strategy is the operative mortality
    # plus the first year's background mortality: generate the target at omrPTHR = 0.035.
    from vbhc_model.pipeline.calibrate import load_calibration, predicted_shares

    target = "  - {strategy: standard, states: [Death], cycle: 1, events: 0, n: 2000, source: s}\n"
    spec, _, scenario, _ = load_calibration(write_cal(tmp_path, target))
    share = float(predicted_shares(scenario, spec, {"omrPTHR": np.array([0.035])})[0, 0])
    events = int(round(share * 2000))
    path = write_cal(tmp_path, target.replace("events: 0", f"events: {events}"))
    res = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "cal.nc")])
    assert res.exit_code == 0, res.output
    post = xr.open_dataset(tmp_path / "cal.nc", group="posterior")
    lo, hi = np.quantile(post["omrPTHR"].values, [0.025, 0.975])
    assert lo < 0.035 < hi and hi - lo < 0.02
    post.close()


def test_calibrate_writes_results_in_the_working_directory_and_never_replaces_without_force(
        tmp_path, monkeypatch):
    """The shipped calibration, run where a user would: results/<name>/ in the working
    directory gets the posterior and summary; a second run is refused (exit 2, nothing changed)
    until --force; the shipped posterior and the package are left as they were."""
    from tests.conftest import ROOT
    from tests.fitting.test_fit import snapshot

    package = snapshot(ROOT / "vbhc_model", SCENARIOS)
    monkeypatch.chdir(tmp_path)
    args = ["calibrate", str(SCENARIOS / "calibration" / "resolve_usual_care.yaml")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = tmp_path / "results" / "resolve_usual_care"
    assert sorted(p.name for p in out.iterdir()) == [".vbhc_result", "posterior.nc", "summary.csv"]
    before = snapshot(out)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "results/resolve_usual_care: already exists" in res.output
    assert snapshot(out) == before
    res = CliRunner().invoke(app, [*args, "--force"])
    assert res.exit_code == 0, res.output
    assert "replaced the previous results/resolve_usual_care" in res.output
    assert snapshot(ROOT / "vbhc_model", SCENARIOS) == package


def test_shipped_calibration_agrees_with_the_direct_fit():
    """Calibrating the usual-care response through the model gives what fitting the arm gives."""
    cal = xr.open_dataset(SCENARIOS / "calibration" / "resolve_usual_care.nc", group="posterior")
    fit = xr.open_dataset(SCENARIOS / "fits" / "resolve.nc", group="posterior")
    q = [0.025, 0.5, 0.975]
    np.testing.assert_allclose(np.quantile(cal["p_resp_3m_uc"].values, q),
                               np.quantile(fit["p_usual_care"].values, q), atol=0.006)
    cal.close()
    fit.close()


def test_too_few_effective_samples_fail_the_gate(tmp_path):
    target = "  - {strategy: standard, states: [Death], cycle: 1, events: 700, n: 20000, source: s}\n"
    path = write_cal(tmp_path, target, prior="{type: beta, alpha: 1, beta: 1}",
                     settings="{prior_draws: 500, posterior_draws: 200, seed: 3}")
    res = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "out")])
    assert res.exit_code == 3, res.output
    assert "ESS" in res.output and not (tmp_path / "out").exists()


def test_bad_targets_are_clear_errors(tmp_path):
    target = "  - {strategy: nope, states: [Dead], cycle: 99, events: 5, n: 10, source: s}\n"
    res = CliRunner().invoke(app, ["calibrate", str(write_cal(tmp_path, target))])
    assert res.exit_code == 2
    for bit in ("targets[0].strategy", "no strategy 'nope'", "targets[0].states",
                "no state 'Dead'", "targets[0].cycle"):
        assert bit in res.output, bit


def test_shipped_calibrations_record_their_current_file():
    import hashlib

    for path in sorted((SCENARIOS / "calibration").glob("*.yaml")):
        tree = xr.open_datatree(path.with_suffix(".nc"))
        try:
            assert tree.attrs["calibration_file_sha256"] == \
                hashlib.sha256(path.read_bytes()).hexdigest(), f"recalibrate {path.name}"
        finally:
            tree.close()
