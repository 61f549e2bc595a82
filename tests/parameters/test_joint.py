"""Joint distributions and correlations: structure recovered in the draws."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from tests.model.test_build import load
from vbhc_model.errors import ScenarioError
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.scenario import load_scenario

BASE = """
parameters:
  a: {value: 0.3, distribution: {type: beta, mean: 0.3, sd: 0.05}, source: t}
  b: {value: 10, distribution: {type: gamma, mean: 10, sd: 2}, source: t}
  p1: {value: 0.7, source: t}
  p2: {value: 0.2, source: t}
  p3: {value: 0.1, source: t}
joint:
  row:
    type: dirichlet
    parameters: [p1, p2, p3]
    alpha: [70, 20, 10]
    source: t
correlations:
  - {parameters: [a, b], rho: 0.6, source: t}
states:
  well: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {dead: p3 * a, well: complement}
strategies:
  s: {}
"""


def test_dirichlet_rows_sum_to_one_with_expected_means(tmp_path):
    d = sample_draws(load(tmp_path, BASE), 20_000).to_pandas()
    np.testing.assert_allclose((d.p1 + d.p2 + d.p3).values, 1.0, rtol=1e-12)
    assert d.p2.mean() == pytest.approx(0.2, abs=0.002)
    assert d.p2.var() == pytest.approx(0.2 * 0.8 / 101, rel=0.05)


def test_copula_correlation_recovered_and_marginals_kept(tmp_path):
    d = sample_draws(load(tmp_path, BASE), 20_000).to_pandas()
    from scipy import stats

    rho_s = stats.spearmanr(d.a, d.b).statistic
    # Spearman of a Gaussian copula with rho 0.6: (6/pi) asin(0.3)
    assert rho_s == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.02)
    assert d.a.mean() == pytest.approx(0.3, abs=0.002) and d.b.std() == pytest.approx(2, rel=0.03)


def test_mvnormal_covariance_recovered():
    thr = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")
    group = thr.joint["weibull_regression"]
    d = sample_draws(thr, 2**15, method="sobol").sel(parameter=group.parameters).values
    cov = group.covariance_matrix()
    np.testing.assert_allclose(np.cov(d.T), cov, atol=0.05 * np.sqrt(np.outer(np.diag(cov), np.diag(cov))).max())
    corr = np.corrcoef(d.T)
    target = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    np.testing.assert_allclose(corr, target, atol=0.02)


def test_inconsistent_correlations_are_refused(tmp_path):
    worse = BASE.replace(
        "joint:", "  c: {value: 1, distribution: {type: normal, mean: 1, sd: 1}, source: t}\njoint:"
    ).replace(
        "  - {parameters: [a, b], rho: 0.6, source: t}",
        "  - {parameters: [a, b], rho: 0.9, source: t}\n  - {parameters: [b, c], rho: 0.9, source: t}\n"
        "  - {parameters: [a, c], rho: -0.9, source: t}",
    )
    with pytest.raises(ScenarioError, match="correlations: the correlations are not consistent"):
        load(tmp_path, worse)
