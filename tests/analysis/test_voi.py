"""Value of information: EVPI >= EVPPI >= 0; EVPPI of all parameters approaches EVPI; the GP
metamodel on examples with known answers and beside the spline regression."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.analysis import voi
from vbhc_model.analysis.acceptability import analyse_psa
from vbhc_model.analysis.voi import evppi, evppi_table
from vbhc_model.cli import app
from vbhc_model.errors import VbhcError
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.scenario import load_scenario
from vbhc_model.threads import one_blas_thread

WTP = [2200.0, 20000.0]


@pytest.fixture(scope="module")
def thr_psa():
    return run_psa(load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml"), 5000)


def sampled(psa):
    return [str(p) for p in psa["parameter"].values if psa["parameters"].sel(parameter=p).std() > 0]


def test_evppi_bounds_and_all_parameters_approach_evpi(thr_psa):
    evpi = analyse_psa(thr_psa, WTP)["evpi"].values
    names = sampled(thr_psa)
    table = evppi_table(thr_psa, {"all": names, **{n: [n] for n in names}}, WTP)
    single = table["evppi"].sel(group=names).values
    assert (single >= 0).all()
    assert (single <= evpi[None, :] + 1e-9).all()
    # At the decision-relevant WTP (near the ICER) EVPI is material; all parameters recover it.
    assert table["evppi"].sel(group="all").values[0] == pytest.approx(evpi[0], rel=0.05)
    assert float(table["r2_effect_min"].sel(group="all")) > 0.99


def test_evppi_of_an_irrelevant_parameter_is_near_zero():
    rng = np.random.default_rng(2)
    n = 5000
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), 0.2 + signal])
    full = evppi(costs, effects, signal, [1.0])["evppi"][0]
    none = evppi(costs, effects, noise, [1.0], n_se=50)
    assert none["evppi"][0] < 0.02 * full
    assert none["se"][0] > 0


def test_simulated_evppi_values_match_the_direct_formula():
    # Batches [strategy, draw, sim] of fitted incremental costs/effects -> EVPPI per sim and
    # WTP: mean over draws of max(0, best incremental NB) - max(0, best mean incremental NB).
    rng = np.random.default_rng(3)
    lam = np.array([1.0, 3.0, 10.0])
    batches = [(rng.normal(size=(3, 400, m)), rng.normal(size=(3, 400, m))) for m in (7, 5)]
    got = voi._simulated_values(iter(batches), lam)
    want = []
    for fc, fe in batches:
        inc = fe[..., None] * lam - fc[..., None]  # [strategy, draw, sim, wtp]
        best = np.maximum(inc.max(axis=0), 0).mean(axis=0)
        want.append(best - np.maximum(inc.mean(axis=1).max(axis=0), 0))
    np.testing.assert_allclose(got, np.concatenate(want), rtol=1e-12, atol=1e-12)
    assert got.shape == (12, 3)


def sample_evppi(g: np.ndarray) -> float:
    """EVPPI of a parameter that determines the incremental net benefit g exactly (vs 0)."""
    return float(np.maximum(g, 0).mean() - max(g.mean(), 0.0))


def test_gp_evppi_known_answer():
    # Knowing x tells exactly which strategy is best: EVPPI = E[max(x, 0)] (0.399 for N(0, 1));
    # noise from another parameter (psi) does not change it. Compared with the value for
    # this sample of x, so only the regression's error is left.
    rng = np.random.default_rng(5)
    n = 2000
    x, psi = rng.normal(size=n), rng.normal(size=n)
    costs = np.zeros((n, 2))
    exact = evppi(costs, np.column_stack([np.zeros(n), x]), x, [1.0], method="gp")
    assert exact["evppi"][0] == pytest.approx(sample_evppi(x), abs=1e-3)
    assert sample_evppi(x) == pytest.approx(0.399, abs=0.03)
    noisy = evppi(costs, np.column_stack([np.zeros(n), x + psi]), x, [1.0], method="gp",
                  n_se=50)
    assert noisy["evppi"][0] == pytest.approx(sample_evppi(x), abs=0.04)
    assert 0 < noisy["se"][0] < 0.04
    assert 0.4 < noisy["r2_effect"][0] < 0.6  # x explains half the variance of x + psi


def test_gp_and_gam_agree_on_a_smooth_nonlinear_example():
    rng = np.random.default_rng(6)
    n = 2000
    x = rng.normal(size=n)
    g = 0.5 * np.tanh(2 * x) + 0.3 * x**2 - 0.2  # E[incremental effect | x]
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), g + 0.3 * rng.normal(size=n)])
    gam = evppi(costs, effects, x, [1.0])["evppi"][0]
    gp = evppi(costs, effects, x, [1.0], method="gp")["evppi"][0]
    assert gp == pytest.approx(gam, rel=0.05)
    assert gp == pytest.approx(sample_evppi(g), rel=0.05)


def test_gp_evppi_of_a_group_of_two_interacting_parameters():
    # The incremental effect is x1 * x2: neither parameter alone says which strategy is best
    # (E[x1 x2 | x1] = 0), the two together do: EVPPI = E[max(x1 x2, 0)] = 1/pi.
    rng = np.random.default_rng(7)
    n = 2000
    x = rng.normal(size=(n, 2))
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), x[:, 0] * x[:, 1] + 0.5 * rng.normal(size=n)])
    pair = evppi(costs, effects, x, [1.0], method="gp")["evppi"][0]
    assert pair == pytest.approx(sample_evppi(x[:, 0] * x[:, 1]), abs=0.03)
    for j in range(2):
        assert evppi(costs, effects, x[:, j], [1.0], method="gp")["evppi"][0] < 0.05


def test_gp_with_few_draws_is_the_exact_gp():
    # With no more draws than gp_draws, the fit through inducing draws is the exact GP
    # posterior mean (linear mean, mean coefficients by GLS) for the same hyperparameters.
    rng = np.random.default_rng(8)
    n = 300
    z = rng.normal(size=(n, 2))
    y = np.sin(2 * z[:, 0]) * z[:, 1] + 0.3 * rng.normal(size=n)
    ys = (y - y.mean()) / y.std()
    pool = rng.permutation(n)
    with one_blas_thread():
        lin = np.arange(2)
        inv_len, nugget = voi._gp_hyperparameters(z[pool[:250]], ys[pool[:250]], lin)
        fit = voi._gp_fit(z, y, lin, pool, 250, 0, rng)(slice(0, 1))[:, 0]
    r = voi._kernel(z, z, inv_len)
    a_inv = np.linalg.inv(r + nugget * np.eye(n))
    h = np.column_stack([np.ones(n), z])
    beta = np.linalg.solve(h.T @ a_inv @ h, h.T @ a_inv @ ys)
    exact = h @ beta + r @ a_inv @ (ys - h @ beta)
    np.testing.assert_allclose(fit, y.mean() + y.std() * exact, atol=1e-6)


def test_gp_evppi_bounds_on_the_thr_psa(thr_psa):
    evpi = analyse_psa(thr_psa, WTP)["evpi"].values
    singles = ["cons", "ageC", "lnrrNP1", "u_revision"]
    table = evppi_table(thr_psa, {n: [n] for n in singles}, WTP, method="gp")
    assert table.attrs["method"] == "gp"
    values = table["evppi"].values
    assert (values >= 0).all() and (values <= evpi[None, :] + 1e-9).all()
    # Close to the spline regression's values where they matter.
    gam = evppi_table(thr_psa, {n: [n] for n in singles[:3]}, WTP[:1])
    assert gam.attrs["method"] == "gam"
    np.testing.assert_allclose(values[:3, 0], gam["evppi"].values[:, 0], rtol=0.1)
    # All 12 parameters together recover the EVPI where it is material (fewer inducing draws
    # keep the test fast: in 12 dimensions the pivoted Cholesky keeps all of them).
    full = evppi_table(thr_psa, {"all": sampled(thr_psa)}, WTP, method="gp", gp_draws=400)
    assert full["evppi"].values[0, 0] == pytest.approx(evpi[0], rel=0.02)
    assert full["evppi"].values[0, 1] == pytest.approx(evpi[1], abs=0.05)  # EVPI 0.14 of 23.7


def test_unknown_metamodel_is_refused(thr_psa):
    costs = np.zeros((10, 2))
    with pytest.raises(VbhcError, match="unknown EVPPI method 'bart'.*gam, gp"):
        evppi(costs, costs, np.arange(10.0), [1.0], method="bart")
    with pytest.raises(VbhcError, match="unknown EVPPI method 'GP'"):
        evppi_table(thr_psa, {"cons": ["cons"]}, WTP, method="GP")


def test_cli_voi_on_a_finished_run(tmp_path):
    out = tmp_path / "r"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                               "--draws", "2000", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["voi", str(out), "--group", "cons,ageC,lngamma,lnrrNP1"])
    assert result.exit_code == 0, result.output
    assert "EVPI" in result.output and "cons+ageC+lngamma+lnrrNP1" in result.output
    assert (out / "evppi.nc").exists()
    again = runner.invoke(app, ["voi", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["voi", str(out), "--params", "nope", "--force"])
    assert bad.exit_code == 2 and "unknown parameter 'nope'" in bad.output
    gp = runner.invoke(app, ["voi", str(out), "--params", "lnrrNP1", "--method", "gp", "--force"])
    assert gp.exit_code == 0, gp.output
    with xr.open_dataset(out / "evppi.nc") as table:
        assert table.attrs["method"] == "gp" and list(table["group"].values) == ["lnrrNP1"]
    wrong = runner.invoke(app, ["voi", str(out), "--method", "bart", "--force"])
    assert wrong.exit_code == 2 and "bart" in wrong.output


def test_a_fixed_parameter_is_not_taken_as_varying():
    # The mean of 10,000 copies of 0.1 is not exactly 0.1, so its std is 1.4e-17, not 0.
    params = np.column_stack([np.full(10_000, 0.1), np.linspace(0, 1, 10_000)])
    assert params[:, 0].std() > 0
    np.testing.assert_array_equal(voi.varying(params), [False, True])
    psa = xr.Dataset({"parameters": (("draw", "parameter"), params)},
                     coords={"parameter": ["fixed", "sampled"]})
    assert voi.varying_parameters(psa) == ["sampled"]


def test_gp_evppi_of_collinear_parameters():
    # A Dirichlet row (shares summing to 1) makes the linear mean's columns collinear; the
    # marginal likelihood used to fail at its first evaluation and the start values stood.
    rng = np.random.default_rng(11)
    n = 3000
    shares = rng.dirichlet([4.0, 3.0, 2.0], size=n)
    g = np.sin(14 * shares[:, 0]) - 0.1  # needs a length-scale well below 1 SD
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), g])
    value = evppi(costs, effects, shares, [1.0], method="gp")
    assert value["evppi"][0] == pytest.approx(sample_evppi(g), rel=0.003)  # unfitted: 1.3% low
    assert value["r2_effect"][0] > 0.9999


def test_gp_evppi_of_many_parameters_approaches_the_evpi():
    # 30 parameters: at one SD per length-scale every pair of draws was exp(-30) apart, the
    # likelihood flat and the optimiser stuck at its start (a linear fit: R2 0.87 and an
    # EVPPI far above the EVPI on the default scenario).
    rng = np.random.default_rng(12)
    n, k = 4000, 30
    x = rng.normal(size=(n, k))
    g = np.tanh(x[:, :10].sum(axis=1) / 3.0) - 0.2  # a linear fit gives 0.163 of 0.197
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), g])
    value = evppi(costs, effects, x, [1.0], method="gp")
    assert value["r2_effect"][0] > 0.98
    assert value["evppi"][0] == pytest.approx(sample_evppi(g), rel=0.05)


def test_evppi_table_reports_the_evpi_and_flags_estimates_above_it(thr_psa):
    evpi = analyse_psa(thr_psa, WTP)["evpi"].values
    table = evppi_table(thr_psa, {"cons": ["cons"], "all": voi.varying_parameters(thr_psa)},
                        WTP)
    np.testing.assert_allclose(table["evpi"].values, evpi, rtol=1e-7)  # summed otherwise
    np.testing.assert_array_equal(table["exceeds_evpi"].values,
                                  table["evppi"].values > evpi * (1 + 1e-9))
    from vbhc_model.report.table import format_voi

    flagged = table.copy()
    flagged["exceeds_evpi"][1, 0] = True
    text = format_voi(flagged, analyse_psa(thr_psa, WTP)["evpi"])
    assert "*" in text.splitlines()[-2] and "above the EVPI" in text.splitlines()[-1]
    assert "try --method gp" in text.splitlines()[-1]
    flagged.attrs["method"] = "gp"  # then it does not suggest the method in use
    gp_text = format_voi(flagged, analyse_psa(thr_psa, WTP)["evpi"])
    assert "above the EVPI" in gp_text and "--method gp" not in gp_text
    assert "above the EVPI" not in format_voi(table.assign(
        exceeds_evpi=table["exceeds_evpi"] & False), analyse_psa(thr_psa, WTP)["evpi"])


def test_long_group_labels_are_shortened_in_tables_and_figures():
    from vbhc_model.report.table import short_label

    label = "+".join(f"parameter_{i}" for i in range(32))
    assert short_label("a+b") == "a+b"
    short = short_label(label)
    assert len(short) <= 40 and short.startswith("parameter_0+") and "(32 parameters)" in short


def test_gp_evppi_of_a_parameter_constant_in_the_hyperparameter_subset():
    # A rare event (2 ones in 2,000 draws) is constant in the 250 draws the hyperparameters
    # are fitted on: it must not make the linear mean singular there.
    fails = []
    for s in range(12):
        rng = np.random.default_rng(s)
        n = 2000
        rare = np.zeros(n)
        rare[rng.integers(n, size=2)] = 1.0
        u = rng.normal(size=n)
        effects = np.column_stack([np.zeros(n), u + 0.2 * rare + 0.1 * rng.normal(size=n)])
        for x in (rare, np.column_stack([rare, u])):
            try:
                evppi(np.zeros((n, 2)), effects, x, [1.0], method="gp", seed=s)
            except VbhcError as exc:
                fails.append((s, str(exc)))
    assert not fails


def test_gp_refuses_a_group_larger_than_its_hyperparameter_draws():
    rng = np.random.default_rng(1)
    n, k = 300, 40
    x = rng.normal(size=(n, k))
    effects = np.column_stack([np.zeros(n), x.sum(axis=1)])
    with pytest.raises(VbhcError, match="40 parameters need more than 30 draws"):
        evppi(np.zeros((n, 2)), effects, x, [1.0], method="gp", gp_hyper_draws=30)


def test_voi_of_a_psa_where_no_parameter_varies_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from tests.conftest import SCENARIOS
    from vbhc_model.cli import app

    hiv = SCENARIOS / "reference" / "hiv_chancellor_1997.yaml"
    run = CliRunner().invoke(app, ["run", str(hiv), "--draws", "20", "--out", str(tmp_path / "h")])
    assert run.exit_code == 0, run.output
    result = CliRunner().invoke(app, ["voi", str(tmp_path / "h")])
    assert result.exit_code == 2, result.output
    assert "no parameter varies" in result.output


def test_voi_says_when_single_parameters_explain_little_and_suggests_groups(tmp_path):
    """Issue 11 (FH6): single-parameter EVPPIs of 0.00 against a positive EVPI come with a
    note and a command to paste: the groups the scenario draws together (one per posterior
    file), which then explain a share of the EVPI."""
    out = tmp_path / "r"
    runner = CliRunner()
    assert runner.invoke(app, ["run", "--draws", "400", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["voi", str(out), "--params", "c_xray,overhead,rate_bh"])
    assert result.exit_code == 0, result.output
    assert "Single parameters explain little of the EVPI" in result.output
    assert "posterior fits/resolve.nc: p_resp_3m_uc, rr_resp_coach, rr_resp_paintrainer" in \
        result.output
    command = next(line.strip() for line in result.output.splitlines()
                   if line.strip().startswith("vbhc voi "))
    assert command.startswith(f"vbhc voi {out} --force --group p_resp_3m_uc,rr_resp_coach,"
                              "rr_resp_paintrainer --group ")
    pasted = runner.invoke(app, command.split()[1:])  # the command as printed
    assert pasted.exit_code == 0, pasted.output
    assert "Single parameters explain little" not in pasted.output  # groups asked for
    with xr.open_dataset(out / "evppi.nc") as table:
        resolve = table["evppi"].sel(group="p_resp_3m_uc+rr_resp_coach+rr_resp_paintrainer")
        evpi = table["evpi"].values
        # the RESOLVE posterior together: a quarter or more of the EVPI (singles: 0.00)
        assert (resolve.values > 0.15 * evpi).all() and (resolve.values <= evpi).all()
