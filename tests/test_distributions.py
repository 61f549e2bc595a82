"""Each distribution matches its stated mean and SD, or its 95% interval; bad specs are refused."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from vbhc_model.distributions import DistributionError, make_distribution


@pytest.mark.parametrize(
    ("family", "params", "mean", "sd"),
    [
        ("beta", {"mean": 0.85, "se": 0.03}, 0.85, 0.03),
        ("beta", {"mean": 0.3, "sd": 0.03}, 0.3, 0.03),
        ("beta", {"alpha": 2, "beta": 98}, 0.02, math.sqrt(2 * 98 / (100**2 * 101))),
        ("gamma", {"mean": 5294, "se": 1487}, 5294, 1487),
        ("gamma", {"shape": 90, "rate": 143}, 90 / 143, math.sqrt(90) / 143),
        ("gamma", {"shape": 12.7, "scale": 0.007874}, 12.7 * 0.007874, math.sqrt(12.7) * 0.007874),
        ("lognormal", {"mean": 1.5, "sd": 0.2}, 1.5, 0.2),
        ("normal", {"mean": 0.041, "sd": 0.0133}, 0.041, 0.0133),
        ("uniform", {"low": 0.5, "high": 1.0}, 0.75, 0.5 / math.sqrt(12)),
        ("triangular", {"low": 30, "mode": 45, "high": 60}, 45, math.sqrt((900 + 2025 + 3600 - 1350 - 1800 - 2700) / 18)),
    ],
)
def test_moments(family, params, mean, sd):
    d = make_distribution(family, params)
    assert float(d.mean()) == pytest.approx(mean, rel=1e-9)
    assert float(d.std()) == pytest.approx(sd, rel=1e-9)


@pytest.mark.parametrize(
    ("family", "interval"),
    [("beta", [0.18, 0.24]), ("gamma", [2145, 5000]), ("lognormal", [1.30, 1.82]),
     ("normal", [0.015, 0.067])],
)
def test_interval(family, interval):
    d = make_distribution(family, {"interval": interval})
    assert float(d.ppf(0.025)) == pytest.approx(interval[0], rel=1e-6)
    assert float(d.ppf(0.975)) == pytest.approx(interval[1], rel=1e-6)


def test_lognormal_interval_gives_the_evidence_tables_sdlog():
    # RESOLVE RR 1.54 (1.30-1.82): the evidence table's sdlog is 0.0858 (it centres on ln 1.54;
    # the interval form centres on the interval's geometric mean, ln sqrt(1.30 x 1.82)).
    d = make_distribution("lognormal", {"interval": [1.30, 1.82]})
    assert float(d.args[0]) == pytest.approx(0.0858, abs=5e-4)
    assert float(d.median()) == pytest.approx(math.sqrt(1.30 * 1.82), rel=1e-12)


def test_truncnormal_stays_in_bounds():
    d = make_distribution("truncnormal", {"mean": 0.1, "sd": 0.2, "lower": 0})
    assert float(d.ppf(0.0)) == 0 and float(d.ppf(1e-9)) >= 0


def test_fixed_is_none():
    assert make_distribution("fixed", {}) is None


@pytest.mark.parametrize(
    ("family", "params", "message"),
    [
        ("beta", {"mean": 1.2, "sd": 0.1}, r"beta mean must be in \(0, 1\), got 1.2"),
        ("beta", {"mean": 0.5, "sd": 0.6}, r"too large for mean 0.5.*below sqrt\(m\(1-m\)\) = 0.5"),
        ("gamma", {"mean": -3, "sd": 1}, r"gamma mean must be > 0"),
        ("gamma", {"mean": 3}, r"sd \(or se\) must be > 0"),
        ("lognormal", {"sigma": 1}, r"lognormal does not take sigma; give meanlog \+ sdlog"),
        ("uniform", {"low": 2, "high": 1}, r"low must be below high"),
        ("triangular", {"low": 1, "mode": 5, "high": 3}, r"low <= mode <= high"),
        ("normal", {"interval": [3, 1]}, r"interval low must be below high"),
        ("weibull", {}, r"unknown distribution 'weibull'"),
        ("beta", {"alpha": 2}, r"beta needs alpha \+ beta, mean \+ sd"),
        ("lognormal", {"interval": [-1, 2]}, r"interval must be positive"),
    ],
)
def test_impossible_specifications(family, params, message):
    with pytest.raises(DistributionError, match=message):
        make_distribution(family, params)


def test_sampling_by_inverse_cdf_matches_scipy():
    d = make_distribution("beta", {"alpha": 2, "beta": 98})
    u = [0.1, 0.5, 0.9]
    assert list(d.ppf(u)) == list(stats.beta(2, 98).ppf(u))


@pytest.mark.parametrize(("family", "params", "expected"), [
    ("beta", {"alpha": 2, "mean": 0.3, "sd": 0.1}, "mixes its forms"),
    ("gamma", {"shape": 2, "scale": 1, "rate": 1}, "mixes its forms"),
    ("normal", {"mean": 0, "sd": 1, "interval": [-2, 2]}, "mixes its forms"),
    ("beta", {"mean": 0.3, "sd": 0.1, "se": 0.1}, "sd or se, not both"),
])
def test_keys_of_two_forms_are_refused(family, params, expected):
    # A key of another form used to be ignored silently (beta alpha with mean and sd).
    with pytest.raises(DistributionError, match=expected):
        make_distribution(family, params)
