"""Deterministic sensitivity: one-way, two-way, threshold, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from tests.model.test_build import load
from vbhc_model.analysis.tornado import incremental_net_benefit, net_benefit
from vbhc_model.cli import app
from vbhc_model.parameters.ranges import parameter_ranges
from vbhc_model.pipeline.dsa import one_way, threshold, two_way
from vbhc_model.pipeline.simulate import simulate


def _nmb(scenario, draws, wtp):
    return net_benefit(simulate(scenario, draws), scenario.settings.effect, wtp)

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
    single = incremental_net_benefit(_nmb(scenario, draws, 100_000), ow.attrs["strategy"]).values[0]
    assert float(ow["inmb_high"].sel(parameter="rr_resp_coach")) == pytest.approx(single, rel=1e-12)


def test_threshold_makes_incremental_net_benefit_zero(scenario):
    t = threshold(scenario, "rr_resp_coach", "coach_cbt", 100_000)
    assert t.range[0] < t.value < t.range[1]
    nmb_scale = 100_000 * 2.7  # NMB is of order wtp x QALYs
    assert abs(t.inmb_at_value) < 1e-9 * nmb_scale


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
    assert "threshold: Coach-led telehealth CBT" in result.output
    assert (out / "dsa.nc").exists() and (out / "two_way.nc").exists()
    assert (out / "figures" / "tornado.svg").exists() and (out / "figures" / "two_way.png").exists()
    bad = CliRunner().invoke(app, ["dsa", "--threshold", "nope", "--strategy", "ipp",
                                   "--out", str(tmp_path / "e")])
    assert bad.exit_code == 2 and "'nope' is not a parameter" in bad.output
    assert not (tmp_path / "e").exists()


# --- parameters drawn jointly in the PSA ------------------------------------------------------

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"
Z975 = 1.959963984540054  # standard normal 97.5% quantile
WEIBULL = ["lngamma", "cons", "ageC", "maleC", "lnrrNP1"]


@pytest.fixture(scope="module")
def thr():
    return load_scenario(THR)


def _inmb(sc, wtp, strategy, **values):
    """Incremental net benefit of ``strategy`` in one run with ``values`` set by hand."""
    draws = base_draws(sc, 1)
    for name, v in values.items():
        draws.loc[{"parameter": name}] = v
    return float(incremental_net_benefit(_nmb(sc, draws, wtp), strategy).values[0])


def test_thr_tornado_varies_the_multivariate_normal_coefficients(thr):
    group = yaml.safe_load(THR.read_text())["joint"]["weibull_regression"]
    ow = one_way(thr, 2200)
    assert set(WEIBULL) <= set(ow["parameter"].values.tolist())
    for name, mean, row in zip(group["parameters"], group["mean"], group["covariance"]):
        sd = np.sqrt(row[-1])  # lower triangle: the diagonal ends each row
        t = ow.sel(parameter=name)
        assert float(t["low"]) == pytest.approx(mean - Z975 * sd, rel=1e-12)
        assert float(t["high"]) == pytest.approx(mean + Z975 * sd, rel=1e-12)
        assert "mvnormal 'weibull_regression'" in str(t.basis.values)
    # One at a time: the other coefficients stay at their base values.
    high = float(ow["high"].sel(parameter="lnrrNP1"))
    assert float(ow["inmb_high"].sel(parameter="lnrrNP1")) == pytest.approx(
        _inmb(thr, 2200, ow.attrs["strategy"], lnrrNP1=high), rel=1e-12)
    # The coefficients are among the widest swings (they lead the EVPPI too).
    assert set(ow["parameter"].values[:4].tolist()) == {"ageC", "lngamma", "cons", "lnrrNP1"}
    left = ow.attrs["left_out"]
    assert left.startswith("left out (5): ") and "c_standard" in left and "lnrrNP1" not in left


def test_threshold_on_a_multivariate_normal_coefficient(thr):
    t = threshold(thr, "lnrrNP1", "np1", 2200)
    mean, sd = -1.344474, np.sqrt(0.14636860414225)
    assert t.range == pytest.approx((mean - Z975 * sd, mean + Z975 * sd), rel=1e-12)
    assert t.range[0] < t.value < t.range[1]
    # Re-running the scenario at the threshold makes NP1's incremental net benefit zero.
    assert abs(_inmb(thr, 2200, "np1", lnrrNP1=t.value)) < 1e-6
    assert _inmb(thr, 2200, "np1", lnrrNP1=t.value - 0.01) > 0 > _inmb(
        thr, 2200, "np1", lnrrNP1=t.value + 0.01)


DIRICHLET = """
parameters:
  p_stay: {value: 0.7, source: t}
  p_sick: {value: 0.2, source: t}
  p_die: {value: 0.1, source: t}
  rr: {value: 1, source: t}
  rr_treat: {value: 0.6, distribution: {type: lognormal, meanlog: -0.51, sdlog: 0.1}, source: t}
  c_drug: {value: 20000, source: t}
joint:
  well_row: {type: dirichlet, parameters: [p_stay, p_sick, p_die], alpha: [70, 20, 10], source: t}
states:
  well: {}
  sick: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {sick: p_sick * rr, dead: p_die, well: complement}
  sick: {dead: 0.2, sick: complement}
payoffs:
  well: {utility: 0.9}
  sick: {utility: 0.5, costs: {care: 1000}}
strategies:
  none: {}
  treat:
    parameters: {rr: rr_treat}
    programme: {one_off: {costs: {drug: c_drug}}}
"""


def _row(p_sick):
    """The Dirichlet row with p_sick set and the others rescaled from 0.7 : 0.1."""
    rest = (1 - p_sick) / 0.8
    return {"p_sick": p_sick, "p_stay": 0.7 * rest, "p_die": 0.1 * rest}


def test_dirichlet_member_varied_over_its_beta_marginal_with_the_row_rescaled(tmp_path):
    sc = load(tmp_path, DIRICHLET)
    ow = one_way(sc, 50_000)
    t = ow.sel(parameter="p_sick")
    expected = stats.beta(20, 80).ppf([0.025, 0.975])
    np.testing.assert_allclose([float(t["low"]), float(t["high"])], expected, rtol=1e-12)
    assert "Dirichlet 'well_row', others rescaled" in str(t.basis.values)
    for end in ("low", "high"):
        by_hand = _inmb(sc, 50_000, ow.attrs["strategy"], **_row(float(t[end])))
        assert float(t[f"inmb_{end}"]) == pytest.approx(by_hand, rel=1e-12)
    # p_die's own variation rescales p_sick, which the treatment acts on.
    assert float(ow["inmb_high"].sel(parameter="p_die")) != pytest.approx(ow.attrs["base_inmb"])

    th = threshold(sc, "p_sick", "treat", 50_000)
    assert th.range == pytest.approx(tuple(expected), rel=1e-12)
    assert abs(_inmb(sc, 50_000, "treat", **_row(th.value))) < 1e-6


def test_dirichlet_row_that_cannot_be_rescaled_is_left_out_with_the_reason(tmp_path):
    sc = load(tmp_path, DIRICHLET.replace("p_stay: {value: 0.7", "p_stay: {value: 0.6"))
    ow = one_way(sc, 50_000)
    assert not {"p_stay", "p_sick", "p_die"} & set(ow["parameter"].values.tolist())
    assert ("p_stay, p_sick, p_die (Dirichlet row 'well_row': its base values sum to 0.9, "
            "not 1") in ow.attrs["left_out"]
    with pytest.raises(VbhcError, match="parameters.p_sick: Dirichlet row 'well_row'"):
        threshold(sc, "p_sick", "treat", 50_000)


def test_posterior_parameters_use_their_posterior_interval(scenario):
    ranges = parameter_ranges(scenario, ["rr_resp_coach"])
    assert ranges["rr_resp_coach"][2] == "95% posterior interval"


def test_cli_dsa_thr_varies_joint_parameters_and_says_what_is_left_out(tmp_path):
    result = CliRunner().invoke(app, ["dsa", str(THR), "--wtp", "2200", "--threshold",
                                      "lnrrNP1", "--strategy", "np1", "--out",
                                      str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("lnrrNP1 ") for line in lines)
    left = [line for line in lines if line.startswith("left out")]
    assert left == [("left out (5): age_at_surgery, male, rr_revision, c_standard, c_np1 "
                     "(no range and no distribution to vary it over)")]
    assert "threshold: NP1 is optimal at 2,200 when lnrrNP1 is below " in result.output


def test_two_way_on_one_dirichlet_row_marks_the_cells_that_sum_above_one(tmp_path):
    from vbhc_model.analysis.tornado import INFEASIBLE
    from vbhc_model.parameters.ranges import parameter_ranges
    from vbhc_model.pipeline.dsa import two_way

    sc = load(tmp_path, DIRICHLET)
    ranges = parameter_ranges(sc, ["p_stay", "p_sick"])
    grid = two_way(sc, "p_stay", "p_sick", 50000)
    a = grid["p_stay"].values[:, None]
    b = grid["p_sick"].values[None, :]
    over = (a + b) > 1
    assert over.any() and not over.all()  # the ranges' top corner is infeasible
    np.testing.assert_array_equal(grid["optimal"].values == INFEASIBLE, over)
    assert np.isnan(grid["nmb"].values[over]).all()
    assert np.isfinite(grid["nmb"].values[~over]).all()
    assert ranges["p_stay"][1] + ranges["p_sick"][1] > 1


def test_a_microsimulation_dsa_gives_every_variation_the_same_patients(tmp_path):
    """Common random numbers across the variations: the one-way run at a parameter's high
    value equals a single microsimulation of that value with the base draw's patients."""
    thr = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml").with_settings(
        engine="microsim", patients=500)
    ow = one_way(thr, 20_000, ["lnrrNP1", "rrr"])
    draws = base_draws(thr, 1)
    draws.loc[{"parameter": "lnrrNP1"}] = float(ow["high"].sel(parameter="lnrrNP1"))
    single = incremental_net_benefit(_nmb(thr, draws, 20_000), ow.attrs["strategy"]).values[0]
    assert float(ow["inmb_high"].sel(parameter="lnrrNP1")) == single
    shifted = draws.assign_coords(draw=[7])  # another draw index: still draw 0's patients
    again = simulate(thr, shifted, same_patients=True)
    np.testing.assert_array_equal(again["qalys"].values, simulate(thr, draws)["qalys"].values)
    result = CliRunner().invoke(app, ["dsa", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                      "--engine", "microsim", "--patients", "300",
                                      "--params", "lnrrNP1", "--out", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    import xarray as xr

    with xr.open_dataset(tmp_path / "d" / "dsa.nc", engine="h5netcdf") as saved:
        assert saved.attrs["engine"] == "microsim" and saved.attrs["n_patients"] == 300
        assert saved.attrs["currency"] == "GBP" and saved.attrs["scenario"] == "thr_dmhee"


def test_the_default_scenario_leaves_out_only_fixed_parameters_with_their_reasons():
    """Issue 14: every ASSUMPTION of the default scenario has a distribution or a range; the
    parameters the one-way analysis does not vary say why (``fixed:``), and it prints it."""
    from vbhc_model.parameters.ranges import describe_left_out, ranges_and_left_out
    from vbhc_model.scenario import default_scenario_path, load_scenario

    sc = load_scenario(default_scenario_path())
    _, left = ranges_and_left_out(sc)
    assert left, "the default scenario has design constants"
    for name, reason in left.items():
        assert sc.parameters[name].fixed, name
        assert reason == f"fixed: {sc.parameters[name].fixed}"
    assert "no range" not in describe_left_out(left)
    for name, p in sc.parameters.items():  # an ASSUMPTION is uncertain or says why not
        if "ASSUMPTION" in p.source and p.value.is_constant:
            assert (p.distribution or p.range or p.posterior or p.samples
                    or p.fixed), name


def test_fixed_with_a_distribution_is_an_error(tmp_path):
    import yaml

    from vbhc_model.errors import ScenarioError
    from vbhc_model.scenario import default_scenario_path, load_scenario

    data = yaml.safe_load(default_scenario_path().read_text())
    data["parameters"]["effect_dropout"]["fixed"] = "a constant"
    path = tmp_path / "s.yaml"
    fits = default_scenario_path().parent / "fits"
    path.write_text(yaml.safe_dump(data).replace("file: fits/", f"file: {fits}/"))
    with pytest.raises(ScenarioError, match="effect_dropout.*the parameter is not uncertain"):
        load_scenario(path)
