"""Deterministic sensitivity: one-way, two-way, threshold, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.dsa import _incremental, _nmb, one_way, threshold, two_way
from vbhc_model.errors import VbhcError
from vbhc_model.parameters import base_draws
from vbhc_model.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "chronic_pain_us.yaml")


def test_one_way_matches_single_runs(scenario):
    ow = one_way(scenario, 100_000, ["rr_resp_coach", "u_gain_responder"])
    swing = np.abs(ow["inmb_high"] - ow["inmb_low"]).values
    assert (np.diff(swing) <= 0).all()  # widest first
    # The vectorised run equals a separate run at the parameter's high value.
    draws = base_draws(scenario, 1)
    draws.loc[{"parameter": "rr_resp_coach"}] = float(ow["high"].sel(parameter="rr_resp_coach"))
    single = _incremental(_nmb(scenario, draws, 100_000), ow.attrs["strategy"]).values[0]
    assert float(ow["inmb_high"].sel(parameter="rr_resp_coach")) == pytest.approx(single, rel=1e-12)


def test_threshold_makes_incremental_net_benefit_zero(scenario):
    t = threshold(scenario, "rr_resp_coach", "coach_cbt", 100_000)
    assert t["range"][0] < t["value"] < t["range"][1]
    nmb_scale = 100_000 * 2.7  # NMB is of order wtp x QALYs
    assert abs(t["inmb_at_value"]) < 1e-9 * nmb_scale


def test_no_threshold_is_a_clear_error(scenario):
    with pytest.raises(VbhcError, match=r"no threshold for c_xray in \[.*'ipp' is never the optimal"):
        threshold(scenario, "c_xray", "ipp", 100_000)


def test_two_way_grid(scenario):
    grid = two_way(scenario, "rr_resp_coach", "rr_resp_paintrainer", 100_000, n=4)
    assert grid["optimal"].shape == (4, 4)
    assert set(np.unique(grid["optimal"].values)) <= set(scenario.strategies)


def test_cli_dsa(tmp_path):
    out = tmp_path / "d"
    result = CliRunner().invoke(app, ["dsa", "--wtp", "100000", "--threshold", "rr_resp_coach",
                                      "--strategy", "coach_cbt", "--two-way",
                                      "rr_resp_coach,u_gain_responder", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "threshold: coach_cbt" in result.output
    assert (out / "dsa.nc").exists() and (out / "two_way.nc").exists()
    assert (out / "figures" / "tornado.svg").exists() and (out / "figures" / "two_way.png").exists()
    bad = CliRunner().invoke(app, ["dsa", "--threshold", "nope", "--strategy", "ipp",
                                   "--out", str(tmp_path / "e")])
    assert bad.exit_code == 2 and "'nope' is not a parameter" in bad.output
    assert not (tmp_path / "e").exists()
