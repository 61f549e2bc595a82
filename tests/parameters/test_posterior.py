"""Parameters whose PSA draws come from a fitted posterior (``posterior: {file, variable}``)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.errors import ScenarioError
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.scenario.loader import scenario_from_text

THR = (SCENARIOS / "reference" / "thr_dmhee.yaml").read_text()
OMR_P = ('omrPTHR: {value: 0.02, distribution: {type: beta, alpha: 2, beta: 98}, source: '
         '"DMHEE Ex 3.5: operative mortality, primary THR; PSA Beta(2, 98) (DMHEE ch. 4 / LSHTM A3)"}')
OMR_R = ('omrRTHR: {value: 0.02, distribution: {type: beta, alpha: 2, beta: 98}, source: '
         '"DMHEE Ex 3.5: operative mortality, revision THR; PSA Beta(2, 98), drawn independently"}')


def write_posterior(path, n_chains=4, n_draws=500, rho=0.8, seed=3):
    """A posterior file as 'vbhc fit' writes it: a 'posterior' group, chain x draw."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=(n_chains, n_draws))
    a = 0.02 + 0.004 * z[..., 0]
    b = 0.03 + 0.006 * z[..., 1]
    arms = np.stack([a, b, 0.5 * (a + b)], axis=-1)
    ds = xr.Dataset(
        {"p_a": (("chain", "draw"), a), "p_b": (("chain", "draw"), b),
         "p_arm": (("chain", "draw", "arm"), arms)},
        coords={"chain": np.arange(n_chains), "draw": np.arange(n_draws),
                "arm": ["usual", "coach", "self"]},
    )
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")
    return ds


def scenario_with(tmp_path, p_ref: str, r_ref: str):
    text = THR.replace(OMR_P, f'omrPTHR: {{value: 0.02, posterior: {p_ref}, source: "test"}}')
    text = text.replace(OMR_R, f'omrRTHR: {{value: 0.03, posterior: {r_ref}, source: "test"}}')
    assert text != THR
    path = tmp_path / "thr_post.yaml"
    path.write_text(text)
    return scenario_from_text(text, str(path)), path


def test_parameters_from_one_posterior_keep_their_correlation(tmp_path):
    post = write_posterior(tmp_path / "fit.nc")
    sc, _ = scenario_with(tmp_path, "{file: fit.nc, variable: p_a}",
                          "{file: fit.nc, variable: p_b}")
    draws = sample_draws(sc, 5_000)  # more PSA draws than the posterior's 2,000
    a = draws.sel(parameter="omrPTHR").values
    b = draws.sel(parameter="omrRTHR").values
    target = np.corrcoef(post["p_a"].values.ravel(), post["p_b"].values.ravel())[0, 1]
    assert abs(np.corrcoef(a, b)[0, 1] - target) < 0.03
    # every PSA draw is one posterior draw: the pair exists in the posterior
    pairs = set(zip(post["p_a"].values.ravel().tolist(), post["p_b"].values.ravel().tolist()))
    assert all((x, y) in pairs for x, y in zip(a[:200].tolist(), b[:200].tolist()))
    assert abs(a.mean() - post["p_a"].mean()) < 0.0005


def test_posterior_draws_do_not_depend_on_chunks(tmp_path):
    write_posterior(tmp_path / "fit.nc")
    sc, _ = scenario_with(tmp_path, "{file: fit.nc, variable: p_a}",
                          "{file: fit.nc, variable: p_arm, select: {arm: coach}}")
    whole = sample_draws(sc, 300).values
    parts = np.vstack([sample_draws(sc, 100, start=0, total=300).values,
                       sample_draws(sc, 200, start=100, total=300).values])
    np.testing.assert_array_equal(whole, parts)



def test_posteriors_argument_reads_another_file_for_this_call_only(tmp_path):
    write_posterior(tmp_path / "fit.nc")
    other = write_posterior(tmp_path / "other.nc", seed=4)
    sc, _ = scenario_with(tmp_path, "{file: fit.nc, variable: p_a}",
                          "{file: fit.nc, variable: p_b}")
    original = sample_draws(sc, 50)
    swapped = sample_draws(sc, 50, posteriors={tmp_path / "fit.nc": tmp_path / "other.nc"})
    # the same uniforms pick the same posterior draw, now from the other file
    assert set(swapped.sel(parameter="omrPTHR").values) <= set(other["p_a"].values.ravel())
    assert not np.array_equal(swapped.values, original.values)
    np.testing.assert_array_equal(sample_draws(sc, 50).values, original.values)


@pytest.mark.parametrize(("p_ref", "r_ref", "expect"), [
    ("{file: missing.nc, variable: p_a}", "{file: fit.nc, variable: p_b}",
     r"parameters\.omrPTHR\.posterior\.file.*'missing\.nc' not found"),
    ("{file: fit.nc, variable: p_c}", "{file: fit.nc, variable: p_b}",
     r"parameters\.omrPTHR\.posterior.*no variable 'p_c'.*did you mean"),
    ("{file: fit.nc, variable: p_a}", "{file: fit.nc, variable: p_arm}",
     r"parameters\.omrRTHR\.posterior.*dimension\(s\) arm.*select"),
    ("{file: fit.nc, variable: p_a}", "{file: fit.nc, variable: p_arm, select: {arm: ipp}}",
     r"parameters\.omrRTHR\.posterior.*has no 'ipp'.*usual, coach, self"),
])
def test_bad_posterior_references_are_clear_errors(tmp_path, p_ref, r_ref, expect):
    write_posterior(tmp_path / "fit.nc")
    with pytest.raises(ScenarioError, match=expect):
        scenario_with(tmp_path, p_ref, r_ref)


def test_distribution_and_posterior_together_refused(tmp_path):
    write_posterior(tmp_path / "fit.nc")
    text = THR.replace(OMR_P, 'omrPTHR: {value: 0.02, distribution: {type: beta, alpha: 2, '
                       'beta: 98}, posterior: {file: fit.nc, variable: p_a}, source: "t"}')
    with pytest.raises(ScenarioError, match="give one of distribution, posterior and samples, not distribution and posterior"):
        scenario_from_text(text, str(tmp_path / "x.yaml"))


def test_cli_runs_a_psa_from_a_posterior_and_exits_2_without_it(tmp_path):
    write_posterior(tmp_path / "fit.nc")
    _, path = scenario_with(tmp_path, "{file: fit.nc, variable: p_a}",
                            "{file: fit.nc, variable: p_b}")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", str(path), "--draws", "300", "--out", str(out)])
    assert res.exit_code == 0, res.output
    psa = xr.open_dataset(out / "psa.nc")
    assert float(psa["parameters"].sel(parameter="omrPTHR").std()) > 0
    psa.close()
    (tmp_path / "fit.nc").unlink()
    res = CliRunner().invoke(app, ["run", str(path), "--draws", "300", "--out",
                                   str(tmp_path / "out2")])
    assert res.exit_code == 2
    assert "fit.nc" in res.output and "not found" in res.output
    assert not (tmp_path / "out2").exists()


def test_dsa_varies_a_posterior_parameter_over_its_posterior_interval(tmp_path):
    from vbhc_model.parameters.ranges import parameter_ranges

    post = write_posterior(tmp_path / "fit.nc")
    sc, _ = scenario_with(tmp_path, "{file: fit.nc, variable: p_a}",
                          "{file: fit.nc, variable: p_b}")
    lo, hi, basis = parameter_ranges(sc, ["omrPTHR"])["omrPTHR"]
    assert basis == "95% posterior interval"
    np.testing.assert_allclose([lo, hi], np.quantile(post["p_a"].values, [0.025, 0.975]))
