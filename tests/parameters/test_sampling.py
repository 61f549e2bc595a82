"""Sampling: chunk-independent streams, distributions recovered, methods."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from tests.conftest import SCENARIOS
from vbhc_model.parameters.sampling import sample_draws, uniforms
from vbhc_model.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "chronic_pain_us.yaml")


@pytest.mark.parametrize("method", ["mc", "sobol", "lhs"])
def test_chunks_give_identical_draws(scenario, method):
    whole = sample_draws(scenario, 64, method=method)
    parts = xr.concat(
        [sample_draws(scenario, n, method=method, start=s, total=64)
         for s, n in ((0, 16), (16, 9), (25, 39))],
        "draw",
    )
    np.testing.assert_array_equal(whole.values, parts.values)
    np.testing.assert_array_equal(whole["draw"].values, parts["draw"].values)


def test_seed_changes_draws(scenario):
    a = sample_draws(scenario, 5, seed=1)
    b = sample_draws(scenario, 5, seed=2)
    assert not np.array_equal(a.values, b.values)


def test_marginals_match_their_distributions(scenario):
    draws = sample_draws(scenario, 2**14, method="sobol")
    cost = draws.sel(parameter="c_pt_session").values
    assert stats.kstest(cost, stats.gamma(47.44, scale=2.593).cdf).pvalue > 0.01
    wage = draws.sel(parameter="wage_coach").values
    tri = stats.triang((24.93 - 18.66) / (37.11 - 18.66), loc=18.66, scale=37.11 - 18.66)
    assert stats.kstest(wage, tri.cdf).pvalue > 0.01
    assert cost.mean() == pytest.approx(47.44 * 2.593, rel=0.005)


def test_parameters_without_distribution_keep_base_value(scenario):
    draws = sample_draws(scenario, 100)
    assert (draws.sel(parameter="coach_sessions").values == 8).all()  # fixed: a design constant


def test_uniforms_are_open_unit_interval():
    u = uniforms(3, 0, 1000, 7)
    assert u.shape == (1000, 7) and (u > 0).all() and (u < 1).all()


def test_frozen_distributions_are_kept_between_chunks():
    from vbhc_model.parameters import sampling

    spec = {"mean": 0.3, "se": 0.03, "interval": None, "alpha": None}
    assert sampling._plain(sampling._hashable(spec)) == spec
    assert sampling._plain(sampling._hashable({"interval": [1.0, 2.0]})) == {"interval": [1.0, 2.0]}
    a = sampling._frozen("beta", sampling._hashable({"mean": 0.3, "se": 0.03}))
    b = sampling._frozen("beta", sampling._hashable({"se": 0.03, "mean": 0.3}))
    assert a is b and a.mean() == pytest.approx(0.3)


def test_correlated_draws_do_not_depend_on_how_many_are_sampled_together():
    # The THR survival regression is a multivariate normal: its Cholesky product is summed
    # term by term, so one draw sampled alone equals the same draw among 5,001 (a BLAS
    # product rounds the rows at the edges of its blocks differently).
    thr = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")
    whole = sample_draws(thr, 5001)
    for start in range(0, 5001, 50):
        alone = sample_draws(thr, 1, start=start, total=5001)
        np.testing.assert_array_equal(alone.values[0], whole.values[start])
    # and the product is the matrix product, to rounding
    cov = np.array(thr.joint[next(iter(thr.joint))].covariance_matrix())
    z = stats.norm.ppf(np.random.default_rng(3).uniform(size=(50, len(cov))))
    from vbhc_model.parameters.sampling import _row_product
    np.testing.assert_allclose(_row_product(z, np.linalg.cholesky(cov)),
                               z @ np.linalg.cholesky(cov).T, rtol=1e-12, atol=1e-15)
