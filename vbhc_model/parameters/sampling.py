"""Sampling parameter draws for the probabilistic analysis.

Uniform numbers are drawn per draw and turned into parameter values by each distribution's
inverse CDF. With Monte Carlo sampling, draw d's uniforms come from a counter-based Philox
stream keyed by the scenario seed and positioned at d (Salmon et al., SC 2011): a chunk of draws
[a, b) reads exactly the numbers the whole run would, so any chunk size and any number of
workers give bit-identical draws. Latin hypercube and Sobol designs come from
``scipy.stats.qmc``; the Latin hypercube depends on the total number of draws (it stratifies
them), Sobol sequences are positioned with ``fast_forward``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.distributions import make_distribution
from vbhc_model.parameters.draws import free_parameters
from vbhc_model.readers.posterior import draw_indices, read_posterior, resolve
from vbhc_model.readers.samples import read_samples, rows_for
from vbhc_model.scenario.schema import Scenario
from vbhc_model.threads import thread_map

METHODS = ("mc", "lhs", "sobol")


def uniforms(seed: int, start: int, n: int, dim: int, method: str = "mc",
             total: int | None = None) -> np.ndarray:
    """Uniform numbers in (0, 1) for draws ``start .. start + n - 1``, shape ``(n, dim)``.

    Examples
    --------
    >>> whole = uniforms(7, 0, 10, 3)
    >>> parts = np.vstack([uniforms(7, 0, 4, 3), uniforms(7, 4, 6, 3)])
    >>> bool((whole == parts).all())
    True
    """
    if dim == 0:
        return np.empty((n, 0))
    if method == "mc":
        stride = -(-dim // 4) * 4  # Philox yields 4 numbers per counter step
        bitgen = np.random.Philox(key=seed)
        bitgen.advance(start * stride // 4)
        u = np.random.Generator(bitgen).random((n, stride))[:, :dim]
    elif method == "lhs":
        from scipy.stats import qmc

        total = total or start + n
        u = qmc.LatinHypercube(d=dim, seed=np.random.default_rng(seed)).random(total)[start:start + n]
    elif method == "sobol":
        from scipy.stats import qmc

        engine = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed))
        if start:
            engine.fast_forward(start)
        with warnings.catch_warnings():  # a chunk is rarely a power of 2: the CLI notes
            warnings.filterwarnings("ignore", message=".*balance properties",  # the total's
                                    category=UserWarning)
            u = engine.random(n)
    else:
        raise ValueError(f"unknown sampling method {method!r}; expected one of {METHODS}")
    # Keep away from 0 and 1, where inverse CDFs of unbounded families are infinite.
    return np.clip(u, 1e-12, 1 - 1e-12)


def _hashable(value):
    """A specification as nested tuples (a cache key)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", *(_hashable(v) for v in value))
    return value


def _plain(value):
    """The inverse of :func:`_hashable`."""
    if isinstance(value, tuple) and value[:1] == ("list",):
        return [_plain(v) for v in value[1:]]
    if isinstance(value, tuple):
        return {k: _plain(v) for k, v in value}
    return value


@functools.lru_cache(maxsize=1024)
def _frozen(family: str, spec: tuple):
    """``make_distribution``, kept: freezing a scipy.stats distribution takes about 0.7 ms,
    as long as the inverse CDF of 10,000 uniforms for a cheap family."""
    return make_distribution(family, _plain(spec))


def sample_draws(scenario: Scenario, n_draws: int, *, seed: int | None = None,
                 method: str = "mc", start: int = 0, total: int | None = None,
                 posteriors: Mapping[Path, Path] | None = None) -> xr.DataArray:
    """Draws of the free parameters: sampled where a distribution is given, else the base value.

    Each sampled parameter takes one uniform number per draw; a joint group takes one per
    member (a multivariate normal as mean + L z with L the lower Cholesky factor of its
    covariance; a Dirichlet as independent gammas normalised to sum to one, Briggs, Claxton &
    Sculpher 2006, ch. 4). Correlations between sampled parameters are imposed on their
    uniforms by a Gaussian copula before the inverse CDFs are applied. Parameters taken from a
    fitted posterior share one uniform per file, which picks the posterior draw (chain x draw,
    each equally likely) for all of them: their joint distribution, correlation included, is
    the posterior's, whatever the number of PSA draws. Parameters taken from a CSV table of
    samples likewise share one row per PSA draw and file (chosen by a uniform, or the draw's
    index with ``pick: in_order``).

    Parameters
    ----------
    scenario : Scenario
    n_draws : int
        Number of draws in this chunk.
    seed : int, optional
        Defaults to the scenario's ``settings.seed``.
    method : {"mc", "lhs", "sobol"}
    start : int
        Index of the chunk's first draw in the whole run.
    total : int, optional
        Draws in the whole run (needed by ``lhs`` when sampling a chunk).
    posteriors : mapping of Path to Path, optional
        Posterior files read in place of those the scenario names, ``{named: read}``
        (``vbhc update`` runs a scenario on an updated posterior this way).

    Returns
    -------
    xarray.DataArray
        Dims ``(draw, parameter)``, draw coordinate ``start .. start + n_draws - 1``.
    """
    seed = scenario.settings.seed if seed is None else seed
    names = free_parameters(scenario)
    col = {n: j for j, n in enumerate(names)}
    values = np.empty((n_draws, len(names)))
    univariate: list[tuple[int, object]] = []
    for j, name in enumerate(names):
        param = scenario.parameters[name]
        values[:, j] = float(param.value.evaluate({}))
        if param.distribution is not None:
            spec = param.distribution.model_dump()
            dist = _frozen(spec.pop("type"), _hashable(spec))
            if dist is not None:
                univariate.append((j, dist))
    n_joint = sum(len(g.parameters) for g in scenario.joint.values())
    by_posterior = _file_groups(scenario, names, "posterior", posteriors)
    tables = _file_groups(scenario, names, "samples")
    u = uniforms(seed, start, n_draws,
                 len(univariate) + n_joint + len(by_posterior) + len(tables), method, total)
    _correlate(scenario, u, [names[j] for j, _ in univariate])
    # Inverse CDFs side by side on threads (scipy.special releases the GIL); same values.
    columns = thread_map(lambda i: univariate[i][1].ppf(u[:, i]), range(len(univariate)),
                         n_draws=n_draws)
    for (j, _), column in zip(univariate, columns):
        values[:, j] = column
    k = len(univariate)
    for group in scenario.joint.values():
        from scipy import stats

        cols = [col[n] for n in group.parameters]
        block = u[:, k:k + len(cols)]
        k += len(cols)
        if group.type == "mvnormal":
            mean = np.asarray(group.mean if group.mean is not None else values[0, cols])
            chol = np.linalg.cholesky(group.covariance_matrix())
            values[:, cols] = mean + _row_product(stats.norm.ppf(block), chol)
        else:
            g = stats.gamma.ppf(block, np.asarray(group.alpha))
            values[:, cols] = g / g.sum(axis=1, keepdims=True)
    # One posterior draw per PSA draw and file, shared by the parameters from that file.
    for (path, members), col_u in zip(by_posterior.items(), u[:, k:].T):
        post = read_posterior(path, [(ref.variable, ref.select) for _, ref in members])
        idx = draw_indices(col_u, post.n)
        for name, ref in members:
            values[:, col[name]] = post.get(ref.variable, ref.select)[idx]
    k += len(by_posterior)
    # One row per PSA draw and samples file, shared by the parameters from that file.
    for (path, members), col_u in zip(tables.items(), u[:, k:].T):
        table = read_samples(path)
        idx = rows_for(members[0][1].pick, col_u, np.arange(start, start + n_draws), table.n,
                       path)
        for name, ref in members:
            values[:, col[name]] = table.get(ref.column)[idx]
    return xr.DataArray(
        values,
        dims=(dims.DRAW, dims.PARAMETER),
        coords={dims.DRAW: np.arange(start, start + n_draws), dims.PARAMETER: names},
        name="parameters",
        attrs={"kind": "sampled", "sampling": method, "seed": seed},
    )


def _row_product(z: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``z @ lower.T`` term by term in a fixed order (one rounding per multiply and add), so
    that each draw's values do not depend on how many draws are sampled together (a BLAS
    product rounds the rows at the edges of its blocks differently)."""
    out = np.zeros((z.shape[0], lower.shape[0]))
    for k in range(lower.shape[1]):
        out += np.multiply.outer(z[:, k], lower[:, k])
    return out


def check_draws(scenario: Scenario, n_draws: int) -> None:
    """Refuse, before any work, more draws than a samples file read in order has rows."""
    for path, members in _file_groups(scenario, free_parameters(scenario), "samples").items():
        if members[0][1].pick == "in_order":
            rows_for("in_order", np.empty(0), np.array([n_draws - 1]), read_samples(path).n,
                     path)


def _file_groups(scenario: Scenario, names: list[str], field: str,
                 substitutes: Mapping[Path, Path] | None = None) -> dict:
    """``{file: [(parameter, reference)]}`` of the parameters whose ``field`` (``posterior``
    or ``samples``) names a file, in order of first use: one group per file. A file named in
    ``substitutes`` is replaced by the file it maps to."""
    instead = {Path(k).resolve(): Path(v).resolve() for k, v in (substitutes or {}).items()}
    groups: dict = {}
    for name in names:
        ref = getattr(scenario.parameters[name], field)
        if ref is not None:
            path = resolve(ref.file, scenario.source.file).resolve()
            path = instead.get(path, path)
            groups.setdefault(path, []).append((name, ref))
    return groups


def _correlate(scenario: Scenario, u: np.ndarray, sampled: list[str]) -> None:
    """Impose the scenario's correlations on the uniforms of ``sampled`` (in place)."""
    if not scenario.correlations:
        return
    from scipy import stats

    involved = sorted({sampled.index(n) for c in scenario.correlations for n in c.parameters})
    rho = np.eye(len(involved))
    for c in scenario.correlations:
        a, b = (involved.index(sampled.index(n)) for n in c.parameters)
        rho[a, b] = rho[b, a] = c.rho
    z = _row_product(stats.norm.ppf(u[:, involved]), np.linalg.cholesky(rho))
    u[:, involved] = np.clip(stats.norm.cdf(z), 1e-12, 1 - 1e-12)
