"""Parameter distributions: scenario specifications -> frozen ``scipy.stats`` distributions.

Each family accepts its natural parameters, a mean with an SD (or SE), or a 95% interval:

============  ==========================================================================
family        accepted forms (keys of the ``distribution:`` mapping besides ``type``)
============  ==========================================================================
beta          ``alpha, beta`` | ``mean, sd`` | ``mean, se`` | ``interval: [low, high]``
gamma         ``shape, scale`` | ``shape, rate`` | ``mean, sd`` | ``mean, se`` | ``interval``
lognormal     ``meanlog, sdlog`` | ``mean, sd`` (natural scale) | ``mean, se`` | ``interval``
normal        ``mean, sd`` | ``mean, se`` | ``interval``
truncnormal   ``mean, sd`` (or ``se``) with ``lower`` and/or ``upper``
uniform       ``low, high``
triangular    ``low, mode, high``
fixed         nothing: the base value
============  ==========================================================================

Method of moments for beta and gamma (Briggs, Claxton & Sculpher 2006, ch. 4); an interval is
matched at its 2.5% and 97.5% quantiles (exactly for normal and lognormal, numerically for beta
and gamma). Impossible combinations raise :class:`DistributionError` with what is wrong.

The checks are arithmetic: :func:`check_distribution` validates a specification without
importing ``scipy.stats`` (a second or so; a base case never samples), except for a beta or
gamma interval, which is fitted numerically. :func:`make_distribution` freezes the
distribution for sampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbhc_model.errors import VbhcError

#: The standard normal's 97.5% quantile, ``float(scipy.stats.norm.ppf(0.975))`` to the last
#: bit (a test pins it), written out so that loading a scenario does not import scipy.stats.
Z975 = 1.959963984540054

FORMS = {
    "beta": "alpha + beta, mean + sd, mean + se, or interval",
    "gamma": "shape + scale, shape + rate, mean + sd, mean + se, or interval",
    "lognormal": "meanlog + sdlog, mean + sd, mean + se, or interval",
    "normal": "mean + sd, mean + se, or interval",
    "truncnormal": "mean + sd (or se) with lower and/or upper",
    "uniform": "low + high",
    "triangular": "low + mode + high",
    "fixed": "no parameters (the base value)",
}


class DistributionError(VbhcError):
    """An impossible or incomplete distribution specification."""


@dataclass(frozen=True)
class Distribution:
    """A checked distribution: a ``scipy.stats`` family name and the arguments that freeze it."""

    name: str
    args: tuple
    scale: float | None = None
    loc: float | None = None

    def freeze(self):
        """The frozen ``scipy.stats`` distribution."""
        from scipy import stats

        kwds = {k: v for k, v in (("loc", self.loc), ("scale", self.scale)) if v is not None}
        return getattr(stats, self.name)(*self.args, **kwds)


def _spread(p: Mapping[str, Any]) -> float:
    sd = p.get("sd", p.get("se"))
    if sd is None or not sd > 0:
        raise DistributionError(f"sd (or se) must be > 0, got {sd!r}")
    return float(sd)


def _interval(p: Mapping[str, Any], positive: bool = False) -> tuple[float, float]:
    iv = p["interval"]
    if not (isinstance(iv, (list, tuple)) and len(iv) == 2):
        raise DistributionError(f"interval must be [low, high], got {iv!r}")
    lo, hi = float(iv[0]), float(iv[1])
    if not lo < hi:
        raise DistributionError(f"interval low must be below high, got [{lo}, {hi}]")
    if positive and lo <= 0:
        raise DistributionError(f"interval must be positive for this family, got [{lo}, {hi}]")
    return lo, hi


def _fit_interval(family, lo: float, hi: float, start: tuple[float, float]):
    """Two positive shape parameters whose 2.5% and 97.5% quantiles are ``lo`` and ``hi``."""

    import numpy as np
    from scipy import optimize  # only interval fits need it; it is slow to import

    def gap(log_params: np.ndarray) -> np.ndarray:
        d = family(*np.exp(log_params))
        return np.array([d.ppf(0.025) - lo, d.ppf(0.975) - hi]) / (hi - lo)

    sol = optimize.least_squares(gap, np.log(start), method="lm")
    if not sol.success or np.max(np.abs(sol.fun)) > 1e-6:
        raise DistributionError(f"no distribution of this family has the 95% interval [{lo}, {hi}]")
    return np.exp(sol.x)


def _beta(p: Mapping[str, Any]):
    if "alpha" in p and "beta" in p:
        a, b = float(p["alpha"]), float(p["beta"])
    elif "mean" in p:
        m, s = float(p["mean"]), _spread(p)
        if not 0 < m < 1:
            raise DistributionError(f"beta mean must be in (0, 1), got {m}")
        limit = math.sqrt(m * (1 - m))
        if s >= limit:
            raise DistributionError(
                f"beta sd {s} is too large for mean {m}: it must be below sqrt(m(1-m)) = {limit:.4g}"
            )
        k = m * (1 - m) / s**2 - 1
        a, b = m * k, (1 - m) * k
    elif "interval" in p:
        lo, hi = _interval(p)
        if not (0 <= lo and hi <= 1):
            raise DistributionError(f"a beta interval must lie in [0, 1], got [{lo}, {hi}]")
        m = (lo + hi) / 2
        from scipy import stats

        a, b = _fit_interval(stats.beta, lo, hi, (m * 20, (1 - m) * 20))
    else:
        return None
    if not (a > 0 and b > 0):
        raise DistributionError(f"beta alpha and beta must be > 0, got {a}, {b}")
    return Distribution("beta", (a, b))


def _gamma(p: Mapping[str, Any]):
    if "shape" in p and ("scale" in p or "rate" in p):
        shape = float(p["shape"])
        scale = float(p["scale"]) if "scale" in p else 1.0 / float(p["rate"])
    elif "mean" in p:
        m, s = float(p["mean"]), _spread(p)
        if not m > 0:
            raise DistributionError(f"gamma mean must be > 0, got {m}")
        shape, scale = (m / s) ** 2, s**2 / m
    elif "interval" in p:
        lo, hi = _interval(p, positive=True)
        m, s = (lo + hi) / 2, (hi - lo) / (2 * Z975)
        from scipy import stats

        shape, scale = _fit_interval(lambda a, sc: stats.gamma(a, scale=sc), lo, hi,
                                     ((m / s) ** 2, s**2 / m))
    else:
        return None
    if not (shape > 0 and scale > 0):
        raise DistributionError(f"gamma shape and scale must be > 0, got {shape}, {scale}")
    return Distribution("gamma", (shape,), scale=scale)


def _lognormal(p: Mapping[str, Any]):
    if "meanlog" in p and "sdlog" in p:
        mu, sigma = float(p["meanlog"]), float(p["sdlog"])
    elif "mean" in p:
        m, s = float(p["mean"]), _spread(p)
        if not m > 0:
            raise DistributionError(f"lognormal mean must be > 0, got {m}")
        sigma = math.sqrt(math.log1p((s / m) ** 2))
        mu = math.log(m) - sigma**2 / 2
    elif "interval" in p:
        lo, hi = _interval(p, positive=True)
        mu, sigma = (math.log(lo) + math.log(hi)) / 2, (math.log(hi) - math.log(lo)) / (2 * Z975)
    else:
        return None
    if not sigma > 0:
        raise DistributionError(f"lognormal sdlog must be > 0, got {sigma}")
    return Distribution("lognorm", (sigma,), scale=math.exp(mu))


def _normal(p: Mapping[str, Any]):
    if "mean" in p:
        return Distribution("norm", (float(p["mean"]), _spread(p)))
    if "interval" in p:
        lo, hi = _interval(p)
        return Distribution("norm", ((lo + hi) / 2, (hi - lo) / (2 * Z975)))
    return None


def _truncnormal(p: Mapping[str, Any]):
    if "mean" not in p or not ("lower" in p or "upper" in p):
        return None
    m, s = float(p["mean"]), _spread(p)
    lower, upper = float(p.get("lower", -math.inf)), float(p.get("upper", math.inf))
    if not lower < upper:
        raise DistributionError(f"truncnormal lower must be below upper, got {lower}, {upper}")
    return Distribution("truncnorm", ((lower - m) / s, (upper - m) / s), loc=m, scale=s)


def _uniform(p: Mapping[str, Any]):
    if "low" not in p or "high" not in p:
        return None
    lo, hi = float(p["low"]), float(p["high"])
    if not lo < hi:
        raise DistributionError(f"uniform low must be below high, got {lo}, {hi}")
    return Distribution("uniform", (lo, hi - lo))


def _triangular(p: Mapping[str, Any]):
    if not {"low", "mode", "high"} <= set(p):
        return None
    lo, mode, hi = float(p["low"]), float(p["mode"]), float(p["high"])
    if not (lo <= mode <= hi and lo < hi):
        raise DistributionError(f"triangular needs low <= mode <= high, low < high; got {lo}, {mode}, {hi}")
    return Distribution("triang", ((mode - lo) / (hi - lo),), loc=lo, scale=hi - lo)


_FAMILIES = {
    "beta": _beta,
    "gamma": _gamma,
    "lognormal": _lognormal,
    "normal": _normal,
    "truncnormal": _truncnormal,
    "uniform": _uniform,
    "triangular": _triangular,
}

_KEYS = {
    "beta": {"alpha", "beta", "mean", "sd", "se", "interval"},
    "gamma": {"shape", "scale", "rate", "mean", "sd", "se", "interval"},
    "lognormal": {"meanlog", "sdlog", "mean", "sd", "se", "interval"},
    "normal": {"mean", "sd", "se", "interval"},
    "truncnormal": {"mean", "sd", "se", "lower", "upper"},
    "uniform": {"low", "high"},
    "triangular": {"low", "mode", "high"},
    "fixed": set(),
}


#: The forms of each family as the sets of keys that give one; ``se`` may stand for ``sd``.
_FORMS = {
    "beta": [{"alpha", "beta"}, {"mean", "sd"}, {"interval"}],
    "gamma": [{"shape", "scale"}, {"shape", "rate"}, {"mean", "sd"}, {"interval"}],
    "lognormal": [{"meanlog", "sdlog"}, {"mean", "sd"}, {"interval"}],
    "normal": [{"mean", "sd"}, {"interval"}],
    "truncnormal": [{"mean", "sd", "lower"}, {"mean", "sd", "upper"},
                    {"mean", "sd", "lower", "upper"}],
    "uniform": [{"low", "high"}],
    "triangular": [{"low", "mode", "high"}],
}


def _one_form(family: str, keys: set[str]) -> None:
    """Refuse keys from two forms at once (``alpha`` with ``mean`` and ``sd``: which one was
    meant?), and ``sd`` with ``se``. Incomplete forms are left to the family's builder."""
    if {"sd", "se"} <= keys:
        raise DistributionError(f"{family} takes sd or se, not both")
    given = {"sd" if k == "se" else k for k in keys}
    if any(given <= form for form in _FORMS[family]):
        return
    used = [form for form in _FORMS[family] if form & given]
    if len(used) > 1 or (used and not given <= used[0]):
        raise DistributionError(
            f"{family} was given {', '.join(sorted(keys))}: that mixes its forms; give exactly "
            f"one of {FORMS[family]}")


def check_distribution(family: str, params: Mapping[str, Any]) -> Distribution | None:
    """Check a scenario specification and return what freezes it (None for fixed), without
    importing ``scipy.stats`` unless a beta or gamma interval must be fitted.

    Parameters
    ----------
    family : str
        One of the families in the module docstring.
    params : mapping
        The specification's keys other than ``type``.

    Raises
    ------
    DistributionError
        Unknown family or keys, an incomplete form, or impossible values.

    Examples
    --------
    >>> check_distribution("gamma", {"mean": 5294, "se": 1487}).name
    'gamma'
    >>> check_distribution("fixed", {}) is None
    True
    """
    if family not in _KEYS:
        raise DistributionError(f"unknown distribution '{family}'; expected one of {', '.join(_KEYS)}")
    unknown = set(params) - _KEYS[family]
    if unknown:
        raise DistributionError(
            f"{family} does not take {', '.join(sorted(unknown))}; give {FORMS[family]}"
        )
    if family == "fixed":
        return None
    _one_form(family, set(params))
    for key, value in params.items():
        if key != "interval" and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value)):
            raise DistributionError(f"{family} {key} must be a finite number, got {value!r}")
    try:
        dist = _FAMILIES[family](params)
    except OverflowError:  # e.g. a gamma's shape mean**2 / se**2 with a mean of 1e308
        given = ", ".join(f"{k} {v:g}" for k, v in params.items() if k != "interval")
        raise DistributionError(f"{family} with {given}: the numbers are too large to compute "
                                f"its parameters (they overflow); check the units") from None
    if dist is None:
        raise DistributionError(f"{family} needs {FORMS[family]}; got {', '.join(params) or 'nothing'}")
    return dist


def make_distribution(family: str, params: Mapping[str, Any]):
    """A frozen ``scipy.stats`` distribution from a scenario specification (None for fixed).

    Parameters
    ----------
    family : str
        One of the families in the module docstring.
    params : mapping
        The specification's keys other than ``type``.

    Raises
    ------
    DistributionError
        Unknown family or keys, an incomplete form, or impossible values
        (:func:`check_distribution`).

    Examples
    --------
    >>> d = make_distribution("beta", {"mean": 0.85, "se": 0.03})
    >>> round(float(d.mean()), 6), round(float(d.std()), 6)
    (0.85, 0.03)
    >>> make_distribution("gamma", {"mean": 5294, "se": 1487}).args[0] == (5294 / 1487) ** 2
    True
    """
    dist = check_distribution(family, params)
    return None if dist is None else dist.freeze()
