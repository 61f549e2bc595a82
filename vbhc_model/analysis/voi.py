"""Value of information: EVPI and EVPPI by regression metamodels.

EVPPI of parameters φ (Strong, Oakley & Brennan, Med Decis Making 2014;34(3):311-326): regress
each strategy's net benefit on φ across the PSA draws; the fitted values g(φ_d) estimate
E[NB | φ_d], and

    EVPPI = mean_d max_s g_s(φ_d) - max_s mean_d g_s(φ_d).

Net benefit is linear in the willingness to pay (NB = λ E - C), so we regress the incremental
costs and effects (against the first strategy) once each and form the fitted net benefit at
every λ from them: all WTP values in one pass. Two metamodels:

- ``gam`` (default): a GAM-like additive spline: a natural cubic regression spline in each
  parameter (knots at quantiles) plus, for groups, the pairwise products of the parameters'
  standardised values; fitted by least squares (numpy.linalg.lstsq). Standard error: the
  regression coefficients simulated from their sampling distribution (Strong et al. 2014,
  section 3.4).
- ``gp``: Gaussian-process regression (Strong et al. 2014; the ``gp`` method of the R
  packages voi and BCEA): a linear mean in the standardised parameters plus a
  squared-exponential covariance with one length-scale per parameter (ARD), a signal variance
  and a nugget (noise). The mean's coefficients and the signal variance are integrated out;
  the length-scales and the nugget maximise the resulting marginal likelihood (L-BFGS-B on
  log scale, analytic gradient) on a random subset of the draws (``gp_hyper_draws``, 250;
  voi takes at most 250 too). The posterior mean given *all* draws is then computed in the
  span of the kernel functions of inducing draws (subset of regressors): a pivoted Cholesky
  factor picks them from a larger subset (``gp_draws``, 1,000) until they predict every
  other one, and the fit is a ridge regression solved with scipy.linalg.cho_factor /
  cho_solve. With no more draws than ``gp_draws`` it agrees with the exact GP (the inducing
  draws predict the others to 1e-10 of the signal variance). Standard error: the regression
  weights drawn from their posterior.

Fit check, both methods: R² of each regression over all draws.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import xarray as xr
from scipy.linalg import LinAlgError, cho_factor, cho_solve, qr, solve_triangular
from scipy.linalg.lapack import dpotri, dpstrf
from scipy.optimize import minimize

from vbhc_model import dims
from vbhc_model.analysis.acceptability import information_value
from vbhc_model.errors import VbhcError
from vbhc_model.threads import one_blas_thread, thread_map

#: EVPPI metamodels: name -> description (recorded in evppi.nc's attributes).
METHODS = {
    "gam": "regression metamodel: additive natural cubic splines + pairwise products "
           "(Strong, Oakley & Brennan 2014)",
    "gp": "Gaussian-process regression: linear mean, squared-exponential ARD covariance, "
          "nugget; hyperparameters by marginal likelihood (Strong, Oakley & Brennan 2014)",
}


def check_method(method: str) -> str:
    """The method name if it is known, else a :class:`VbhcError` naming the choices."""
    if method not in METHODS:
        raise VbhcError(f"unknown EVPPI method {method!r}; choose one of "
                        f"{', '.join(METHODS)} (gam: spline regression, gp: Gaussian process)")
    return method


# --- GAM-like spline regression -----------------------------------------------------------

def _spline_basis(x: np.ndarray, n_knots: int) -> np.ndarray:
    """Natural cubic regression spline basis (truncated power form), without intercept."""
    knots = np.unique(np.quantile(x, np.linspace(0, 1, n_knots)))
    if len(knots) < 3:  # (nearly) constant parameter: a linear term is all there is
        return x[:, None] - x.mean()
    k_last, k_prev = knots[-1], knots[-2]

    def d(k: float) -> np.ndarray:
        return (np.maximum(x - k, 0) ** 3 - np.maximum(x - k_last, 0) ** 3) / (k_last - k)

    cols = [x] + [d(k) - d(k_prev) for k in knots[:-2]]
    basis = np.column_stack(cols)
    return (basis - basis.mean(axis=0)) / (basis.std(axis=0) + 1e-300)


def varying(params: np.ndarray) -> np.ndarray:
    """Which columns of ``params [draw, k]`` take more than one value. (A fixed parameter's
    ``std`` can be a rounding error above 0: the mean of equal numbers need not be exact.)"""
    return (params != params[:1]).any(axis=0)


def varying_parameters(psa: xr.Dataset) -> list[str]:
    """The names of the parameters that vary between the draws of a PSA."""
    values = psa["parameters"].transpose(dims.DRAW, dims.PARAMETER).values
    return [str(p) for p, v in zip(psa[dims.PARAMETER].values, varying(values)) if v]


def design(params: np.ndarray, n_knots: int = 8) -> np.ndarray:
    """Regression design for parameters ``[draw, k]``: intercept, splines, pairwise products.
    Parameters that do not vary are left out."""
    params = params[:, varying(params)]
    n, k = params.shape
    cols = [np.ones((n, 1))]
    cols += [_spline_basis(params[:, j], n_knots) for j in range(k)]
    z = (params - params.mean(axis=0)) / (params.std(axis=0) + 1e-300)
    cols += [(z[:, i] * z[:, j])[:, None] for i in range(k) for j in range(i + 1, k)]
    return np.hstack(cols)


def _r2(y: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """R² of each column of ``y`` (1 where ``y`` is constant)."""
    ss_res = ((y - fitted) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 1.0)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted values and R² of least-squares regressions of each column of ``y`` on ``x``."""
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ coef
    return fitted, _r2(y, fitted)


def _gam_simulations(x, dc, de, fit_c, fit_e, n_se: int, seed: int,
                     batch: int = 20) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of fitted incremental costs and effects ``[strategy, draw, sim]`` with the
    regression coefficients drawn from N(beta_hat, sigma^2 (X'X)^-1) (Strong et al. 2014, 3.4)."""
    n, p = x.shape
    xtx_inv = np.linalg.pinv(x.T @ x)
    w, v = np.linalg.eigh(xtx_inv)
    root = v * np.sqrt(np.clip(w, 0, None))  # root @ root.T = (X'X)^-1, robust to rank loss
    dof = max(n - p, 1)
    sig_c = np.sqrt(((dc - fit_c) ** 2).sum(axis=0) / dof)
    sig_e = np.sqrt(((de - fit_e) ** 2).sum(axis=0) / dof)
    rng = np.random.default_rng(seed)
    k = dc.shape[1]
    for start in range(0, n_se, batch):
        m = min(batch, n_se - start)
        # [p, m * k] coefficient perturbations (column sim * k + strategy), as drawn before
        zc = (root @ rng.standard_normal((p, m * k))) * np.tile(sig_c, m)
        ze = (root @ rng.standard_normal((p, m * k))) * np.tile(sig_e, m)
        out_c, out_e = np.empty((k, n, m)), np.empty((k, n, m))
        for j in range(k):
            np.matmul(x, zc[:, j::k], out=out_c[j])
            out_c[j] += fit_c[:, j, None]
            np.matmul(x, ze[:, j::k], out=out_e[j])
            out_e[j] += fit_e[:, j, None]
        yield out_c, out_e


# --- Gaussian-process regression ----------------------------------------------------------

#: Bounds of the log length-scales (standardised parameter units) and of the log nugget
#: (noise variance over signal variance).
_LOG_LENGTH = (np.log(0.05), np.log(10.0))
_LOG_NUGGET = (np.log(1e-6), np.log(1e4))
_ROWS = 5_000  # draws at a time in the GP regression: a [rows, inducing] kernel block
_KEEP = 12_500_000  # design entries (100 MB) kept between the fit and the prediction


def _sq_dists(a: np.ndarray, b: np.ndarray, inv_len: np.ndarray) -> np.ndarray:
    """Squared scaled distances sum_j ((a_ij - b_lj) / len_j)^2, ``[len(a), len(b)]``."""
    out = np.zeros((len(a), len(b)))
    buf = np.empty_like(out)
    for j in range(a.shape[1]):
        np.subtract.outer(a[:, j] * inv_len[j], b[:, j] * inv_len[j], out=buf)
        np.square(buf, out=buf)
        out += buf
    return out


def _kernel(a: np.ndarray, b: np.ndarray, inv_len: np.ndarray) -> np.ndarray:
    """Squared-exponential correlation exp(-d^2 / 2) between the rows of ``a`` and ``b``."""
    d2 = _sq_dists(a, b, inv_len)
    np.multiply(d2, -0.5, out=d2)
    return np.exp(d2, out=d2)


def _neg_log_marginal(theta: np.ndarray, d2: np.ndarray, d2_low: np.ndarray, h: np.ndarray,
                      y: np.ndarray) -> tuple[float, np.ndarray]:
    """Minus the log marginal likelihood of the hyperparameters and its gradient.

    ``theta`` = (log length-scales, log nugget); ``d2[j]`` the squared differences of
    parameter j between the subset's draws, ``d2_low[j]`` its strict lower triangle. The
    linear mean's coefficients (flat prior) and the signal variance (prior 1/s²) are
    integrated out:

        -log p(y | theta) = 1/2 log|A| + 1/2 log|H'A⁻¹H| + (m - q)/2 log(y'Py) + const,

    with A = R + nugget I and P = A⁻¹ - A⁻¹H (H'A⁻¹H)⁻¹ H'A⁻¹; its derivative along dA is
    1/2 tr(P dA) - (m - q)/2 y'P dA P y / y'Py. Matrices are symmetric and LAPACK works on
    their lower triangles, so the sums over them run on the strict lower triangle, doubled.
    """
    k = len(d2)
    m, q = h.shape
    inv_len2 = np.exp(-2 * theta[:k])
    nugget = np.exp(theta[k])
    r = np.tensordot(-0.5 * inv_len2, d2, axes=1)
    np.exp(r, out=r)
    a = r.copy()
    a.flat[:: m + 1] += nugget
    try:
        chol = cho_factor(a, lower=True, overwrite_a=True, check_finite=False)
        ai_h = cho_solve(chol, h, check_finite=False)
        hah = cho_factor(h.T @ ai_h, lower=True, check_finite=False)
    except LinAlgError:
        return 1e30, np.zeros_like(theta)
    ai_y = cho_solve(chol, y, check_finite=False)
    beta = cho_solve(hah, h.T @ ai_y, check_finite=False)
    py = ai_y - ai_h @ beta  # P y
    ypy = float(y @ py)
    if not ypy > 0:
        return 1e30, np.zeros_like(theta)
    nll = (np.log(np.diag(chol[0])).sum() + np.log(np.diag(hah[0])).sum()
           + 0.5 * (m - q) * np.log(ypy))
    ai_h_c = cho_solve(hah, ai_h.T, check_finite=False).T  # A⁻¹H (H'A⁻¹H)⁻¹
    c = (m - q) / ypy
    # W = P - c Py (Py)' = A⁻¹ - [A⁻¹H, Py] [A⁻¹H (H'A⁻¹H)⁻¹, c Py]' (lower triangle valid)
    w, _ = dpotri(chol[0], lower=1, overwrite_c=1)
    trace_p = float(np.diag(w).sum() - np.vdot(ai_h, ai_h_c))
    w -= np.column_stack([ai_h, py]) @ np.column_stack([ai_h_c, c * py]).T
    w *= r
    grad = np.empty_like(theta)
    for j in range(k):  # dA/dlog len_j = R * d2_j / len_j^2; 1/2 tr(.) doubled over the triangle
        grad[j] = inv_len2[j] * np.vdot(w, d2_low[j])
    grad[k] = 0.5 * nugget * (trace_p - c * float(py @ py))
    return float(nll), grad


def _independent_columns(z: np.ndarray) -> np.ndarray:
    """Indices of a largest set of columns of ``z`` independent of each other and of the
    intercept (pivoted QR of the columns centred). Parameters drawn jointly can be collinear
    (a Dirichlet row sums to 1), and a rarely varying one can be constant in the subset of
    draws the hyperparameters are fitted on: the linear mean keeps one column per direction;
    the kernel still sees every parameter."""
    cols = np.flatnonzero(varying(z))  # a constant column is the intercept again
    if cols.size == 0:
        return cols
    r, piv = qr(z[:, cols] - z[:, cols].mean(axis=0), mode="r", pivoting=True,
                check_finite=False)
    # The columns are standardised over all draws, so a column that varies in the subset
    # has a norm of order sqrt(m); what rounding leaves of a dependent one is ~1e-16 of it.
    d = np.abs(np.diag(r))
    rank = int(np.sum(d > 1e-8 * max(float(d[0]), np.sqrt(len(z)))))
    return np.sort(cols[piv[:rank]])


def _gp_hyperparameters(z: np.ndarray, y: np.ndarray,
                        lin: np.ndarray) -> tuple[np.ndarray, float]:
    """Length-scales and nugget maximising the marginal likelihood on draws ``z``, ``y``;
    the linear mean on the columns ``lin`` of ``z``."""
    m, k = z.shape
    d2 = np.stack([np.subtract.outer(z[:, j], z[:, j]) ** 2 for j in range(k)])
    d2_low = np.tril(d2, -1)
    h = np.column_stack([np.ones(m), z[:, lin]])
    # Length-scales start at sqrt(k) standard deviations, so that two draws' scaled squared
    # distance is about 2 whatever the number of parameters: at 1 SD each, 37 parameters put
    # every pair of draws exp(-37) apart, the likelihood is flat in the length-scales and the
    # optimiser stops where it started.
    start = np.concatenate([np.full(k, 0.5 * np.log(k)), [0.0]])
    bounds = [_LOG_LENGTH] * k + [_LOG_NUGGET]
    if h.shape[1] >= m:
        raise VbhcError(f"EVPPI by GP: {k} parameters need more than {m} draws to fit the "
                        "hyperparameters (gp_hyper_draws); use method 'gam' or fewer "
                        "parameters per group")
    resid = y - h @ np.linalg.lstsq(h, y, rcond=None)[0]
    if resid @ resid <= 1e-20 * max(float(y @ y), 1e-300):
        return np.exp(-start[:k]), float(np.exp(start[k]))  # the linear mean explains y
    # The optimum is found to a relative change of 1e-6 in the objective (about 1e-4 in the
    # log likelihood of 250 draws, against an uncertainty of order 1 in the hyperparameters'
    # own estimate); scipy's default (2.2e-9) took twice the evaluations and moved EVPPI in
    # the fourth digit (docs/psa.md).
    res = minimize(_neg_log_marginal, start, args=(d2, d2_low, h, y), jac=True,
                   method="L-BFGS-B", bounds=bounds, options={"maxiter": 200, "ftol": 1e-6})
    if not res.fun < 1e29:  # never evaluated: the start values would be returned unfitted
        raise VbhcError("EVPPI by GP: the marginal likelihood could not be evaluated on "
                        f"{m} draws of {k} parameters (fewer draws than the linear mean's "
                        f"{h.shape[1]} terms, or a degenerate sample); use method 'gam'")
    return np.exp(-res.x[:k]), float(np.exp(res.x[k]))


def _inducing(zp: np.ndarray, inv_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inducing draws among the pool ``zp`` and the Cholesky factor of their correlation.

    Pivoted Cholesky (LAPACK pstrf) of the pool's correlation matrix picks, one at a time, the
    draw whose function value the chosen ones predict worst, and stops when every other pool
    draw's prior variance given them is below 1e-10 of the signal variance: a smooth function
    needs a few dozen draws, a rough one or many parameters up to the whole pool.
    """
    c, piv, rank, _ = dpstrf(_kernel(zp, zp, inv_len), tol=1e-10, lower=1, overwrite_a=1)
    rank = max(int(rank), 1)
    return zp[piv[:rank] - 1], np.tril(c[:rank, :rank])


def _gp_fit(z: np.ndarray, y: np.ndarray, lin: np.ndarray, pool: np.ndarray, n_hyper: int,
            n_sims: int, rng: np.random.Generator) -> Callable[[slice], np.ndarray]:
    """A GP regression of ``y``: ``fitted(cols)`` gives fitted values at every draw,
    ``[draw, col]``; column 0 is the posterior mean, columns 1 to ``n_sims`` are draws from
    the posterior of the fitted values.

    Hyperparameters: exact marginal likelihood on the first ``n_hyper`` draws of ``pool``.
    Fit: the GP restricted to the span of the kernel functions of inducing draws u chosen in
    ``pool`` (subset of regressors; Quiñonero-Candela & Rasmussen, JMLR 2005), given all
    draws. With L L' = R_uu, f = h'beta + phi(x)'w, phi(x) = L⁻¹ r_u(x), w ~ N(0, s² I), so
    the posterior is a ridge regression on X = [H, Phi]: G theta = X'y with
    G = X'X + nugget diag(0, I), and Cov(theta) = s² nugget G⁻¹ (s² nugget, the noise
    variance, estimated from the residuals).
    """
    n = len(y)
    shift, scale = float(y.mean()), float(y.std())
    if not scale > 0 or z.shape[1] == 0:  # nothing to explain, or nothing to explain it
        return lambda cols: np.full((n, len(range(*cols.indices(1 + n_sims)))), shift)
    ys = (y - shift) / scale
    inv_len, nugget = _gp_hyperparameters(z[pool[:n_hyper]], ys[pool[:n_hyper]], lin)
    zu, chol_u = _inducing(z[pool], inv_len)
    q, r = len(lin) + 1, len(zu)

    def design_rows(rows: slice) -> np.ndarray:
        phi = solve_triangular(chol_u, _kernel(z[rows], zu, inv_len).T, lower=True,
                               check_finite=False).T
        return np.hstack([np.ones((rows.stop - rows.start, 1)), z[rows][:, lin], phi])

    blocks = [slice(s, min(s + _ROWS, n)) for s in range(0, n, _ROWS)]
    keep = n * (q + r) <= _KEEP
    xtx = np.zeros((q + r, q + r))
    xty = np.zeros(q + r)
    kept = []
    for rows in blocks:
        x = design_rows(rows)
        xtx += x.T @ x
        xty += x.T @ ys[rows]
        if keep:
            kept.append(x)
    g = xtx.copy()
    g.flat[q * (q + r) + q:: q + r + 1] += nugget  # the ridge on the kernel weights
    for jitter in (0.0, 1e-10, 1e-8, 1e-6):  # if the columns are numerically collinear
        try:
            g_chol = cho_factor(g + jitter * float(np.mean(np.diag(g))) * np.eye(q + r),
                                lower=True, check_finite=False)
            break
        except LinAlgError:
            continue
    else:
        raise LinAlgError("GP regression: the ridge system is not positive definite")
    theta = cho_solve(g_chol, xty, check_finite=False)
    thetas = theta[:, None]
    if n_sims:
        edf = float(np.trace(cho_solve(g_chol, xtx, check_finite=False)))
        rss = float(ys @ ys - 2 * theta @ xty + theta @ xtx @ theta)
        noise_sd = np.sqrt(max(rss, 0.0) / max(n - edf, 1.0))
        dev = solve_triangular(g_chol[0], rng.standard_normal((q + r, n_sims)), lower=True,
                               trans="T", check_finite=False)  # N(0, G⁻¹)
        thetas = np.column_stack([theta, theta[:, None] + noise_sd * dev])

    def fitted(cols: slice) -> np.ndarray:
        out = np.empty((n, len(range(*cols.indices(thetas.shape[1])))))
        for i, rows in enumerate(blocks):
            out[rows] = (kept[i] if keep else design_rows(rows)) @ thetas[:, cols]
        return shift + scale * out

    return fitted


def _gp(params: np.ndarray, dc: np.ndarray, de: np.ndarray, n_sims: int, seed: int,
        gp_draws: int, gp_hyper_draws: int) -> Callable[[slice], tuple[np.ndarray, np.ndarray]]:
    """GP regressions of every incremental cost and effect column; ``fitted(cols)`` gives
    their fitted values ``[draw, col, strategy]`` (col 0: the posterior mean; 1 to n_sims:
    posterior draws)."""
    n = len(params)
    keep = varying(params)
    z = (params[:, keep] - params[:, keep].mean(axis=0)) / params[:, keep].std(axis=0)
    rng = np.random.default_rng(seed)
    pool = rng.permutation(n)[: min(n, gp_draws)]
    n_hyper = min(len(pool), gp_hyper_draws)
    targets = [dc[:, j] for j in range(dc.shape[1])] + [de[:, j] for j in range(de.shape[1])]
    seeds = rng.spawn(len(targets))
    with one_blas_thread():  # the targets run side by side on threads
        lin = _independent_columns(z[pool[:n_hyper]])  # where the hyperparameters are fitted
        fits = thread_map(lambda i: _gp_fit(z, targets[i], lin, pool, n_hyper, n_sims,
                                            seeds[i]),
                          range(len(targets)), n_draws=n)
    k = dc.shape[1]

    def fitted(cols: slice) -> tuple[np.ndarray, np.ndarray]:
        values = [f(cols) for f in fits]
        return np.stack(values[:k], axis=2), np.stack(values[k:], axis=2)

    return fitted


# --- EVPPI --------------------------------------------------------------------------------

def _simulated_values(batches: Iterator[tuple[np.ndarray, np.ndarray]],
                      lam: np.ndarray) -> np.ndarray:
    """EVPPI of each simulated fit, ``[sim, wtp]``, from batches of fitted incremental costs
    and effects ``[strategy, draw, sim]`` (against the reference strategy, whose incremental
    net benefit is 0).

    Works strategy by strategy on contiguous ``[draw, sim]`` arrays, keeping a running
    maximum, and takes the mean net benefit from the mean costs and effects (it is linear in
    them): no ``[draw, sim, strategy, wtp]`` array and no reduction over a short middle axis
    (3.5x faster with the default scenario's 4 strategies and 100 simulations)."""
    values = []
    for fc, fe in batches:
        mean_c, mean_e = fc.mean(axis=1), fe.mean(axis=1)  # [strategy, sim]
        best = np.empty((fc.shape[2], len(lam)))
        cur, tmp = np.empty(fc.shape[1:]), np.empty(fc.shape[1:])
        for w, lw in enumerate(lam):
            cur[:] = 0.0
            for j in range(fc.shape[0]):
                np.multiply(fe[j], lw, out=tmp)
                tmp -= fc[j]
                np.maximum(cur, tmp, out=cur)
            best[:, w] = cur.mean(axis=0)
        inc_mean = mean_e[:, :, None] * lam - mean_c[:, :, None]  # [strategy, sim, wtp]
        values.append(best - np.maximum(inc_mean.max(axis=0), 0.0))  # [sim, wtp]
    return np.concatenate(values)


def evppi(costs: np.ndarray, effects: np.ndarray, params: np.ndarray,
          wtp: Sequence[float], method: str = "gam", n_knots: int = 8, n_se: int = 0,
          seed: int = 0, gp_draws: int = 1000, gp_hyper_draws: int = 250
          ) -> dict[str, np.ndarray]:
    """EVPPI per person of a parameter (group) at each WTP, with its SE and the fit check.

    Parameters
    ----------
    costs, effects : ndarray, shape (draw, strategy)
    params : ndarray, shape (draw,) or (draw, k)
        The PSA draws of the parameter(s) of interest.
    wtp : sequence of float
    method : {"gam", "gp"}
        Metamodel: additive spline regression (fast; the default) or Gaussian-process
        regression (better with few draws or strongly interacting parameters; slower, some
        0.1 to 0.2 s per regression at 10,000 draws).
    n_knots : int
        Spline knots per parameter (``gam``).
    n_se : int
        Simulations for the standard error (0: no SE). ``gam``: of the regression
        coefficients; ``gp``: of the GP's weights from their posterior (both given the
        hyperparameters and the draws). About 100 gives a stable SE.
    seed : int
        Seeds the SE simulations and the GP's subsets.
    gp_draws, gp_hyper_draws : int
        ``gp``: the random subset of draws the inducing draws are chosen from, and the first
        of them, which set the hyperparameters (their cost grows as its cube).

    Returns
    -------
    dict
        ``evppi`` and ``se`` (per WTP), ``r2_cost`` and ``r2_effect`` (per incremental
        strategy).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=4000)
    >>> costs = np.zeros((4000, 2)); effects = np.column_stack([np.zeros(4000), x])
    >>> # Knowing x tells exactly which strategy is best: EVPPI = EVPI = E[max(x, 0)] = 0.399
    >>> abs(float(evppi(costs, effects, x, [1.0])["evppi"][0]) - 0.399) < 0.02
    True
    >>> abs(float(evppi(costs, effects, x, [1.0], method="gp")["evppi"][0]) - 0.399) < 0.02
    True
    """
    check_method(method)
    with one_blas_thread():  # small matrix products: threads only wait for each other
        return _evppi(costs, effects, params, wtp, method, n_knots, n_se, seed, gp_draws,
                      gp_hyper_draws)


def _evppi(costs: np.ndarray, effects: np.ndarray, params: np.ndarray, wtp: Sequence[float],
           method: str, n_knots: int, n_se: int, seed: int, gp_draws: int,
           gp_hyper_draws: int) -> dict[str, np.ndarray]:
    params = np.asarray(params, dtype=float)
    if params.ndim == 1:
        params = params[:, None]
    if not (np.isfinite(params).all() and np.isfinite(costs).all()
            and np.isfinite(effects).all()):
        raise VbhcError("EVPPI needs finite costs, effects and parameter values in every draw")
    if method == "gp" and len(params) < 20:
        raise VbhcError(f"EVPPI by GP needs at least 20 draws; got {len(params)}")
    lam = np.asarray(list(wtp), dtype=float)
    dc = costs[:, 1:] - costs[:, :1]
    de = effects[:, 1:] - effects[:, :1]
    n = len(params)
    n_sims = n_se if n_se > 1 else 0
    if method == "gam":
        x = design(params, n_knots)
        fit_c, r2_c = _fit(x, dc)
        fit_e, r2_e = _fit(x, de)
        sims = _gam_simulations(x, dc, de, fit_c, fit_e, n_sims, seed) if n_sims else None
    else:
        fitted = _gp(params, dc, de, n_sims, seed, gp_draws, gp_hyper_draws)
        fit_c, fit_e = (v[:, 0] for v in fitted(slice(0, 1)))
        r2_c, r2_e = _r2(dc, fit_c), _r2(de, fit_e)
        sims = (tuple(np.ascontiguousarray(np.moveaxis(v, 2, 0))  # [strategy, draw, sim]
                      for v in fitted(slice(1 + s, 1 + min(s + 20, n_sims))))
                for s in range(0, n_sims, 20)) if n_sims else None
    inc = fit_e[:, :, None] * lam[None, None, :] - fit_c[:, :, None]
    value = information_value(np.concatenate([np.zeros((n, 1, len(lam))), inc], axis=1))
    se = _simulated_values(sims, lam).std(axis=0, ddof=1) if sims is not None else np.nan * lam
    return {"evppi": np.maximum(value, 0.0), "se": se, "r2_cost": r2_c, "r2_effect": r2_e}


def evppi_table(psa: xr.Dataset, groups: dict[str, Sequence[str]], wtp: Sequence[float],
                effect: str = "qalys", method: str = "gam", progress=None,
                **kwargs) -> xr.Dataset:
    """EVPPI of several parameters or groups, ranked, as a Dataset (dims ``group`` x ``wtp``).

    ``progress(done, total)``, if given, is called after each group's estimate.

    ``groups`` maps a label to parameter names in ``psa["parameters"]``; a single parameter
    is a group of one. ``method`` ("gam" or "gp") and ``kwargs`` go to :func:`evppi`; the
    method is recorded in the attributes (``method``, ``method_description``). ``evpi`` is
    the EVPI of the same draws, and ``exceeds_evpi`` flags estimates above it (impossible for
    the true EVPPI: the metamodel's error).
    """
    check_method(method)
    costs = psa["total_cost"].transpose(dims.DRAW, dims.STRATEGY).values
    effects = psa[effect].transpose(dims.DRAW, dims.STRATEGY).values
    known = [str(p) for p in psa[dims.PARAMETER].values]
    for names in groups.values():  # all names checked before any work
        missing = [n for n in names if n not in known]
        if missing:
            raise VbhcError(f"unknown parameter {missing[0]!r} for EVPPI; the PSA has "
                            f"{', '.join(known[:8])}{', ...' if len(known) > 8 else ''}")
    rows = []
    for names in groups.values():
        x = psa["parameters"].sel({dims.PARAMETER: list(names)}).transpose(dims.DRAW, ...).values
        rows.append(evppi(costs, effects, x, wtp, method=method, **kwargs))
        if progress is not None:
            progress(len(rows), len(groups))
    lam = np.asarray(list(wtp), dtype=float)
    # The EVPPI of any parameters cannot exceed the EVPI; an estimate that does shows the
    # metamodel's error (an additive spline regression of many parameters, or a poor fit).
    inc = ((effects[:, 1:] - effects[:, :1])[:, :, None] * lam
           - (costs[:, 1:] - costs[:, :1])[:, :, None])
    evpi_values = information_value(
        np.concatenate([np.zeros((len(costs), 1, len(lam))), inc], axis=1))
    values = np.array([r["evppi"] for r in rows])
    out = xr.Dataset(
        {
            "evppi": (("group", dims.WTP), values),
            "evpi": ((dims.WTP,), evpi_values),
            "exceeds_evpi": (("group", dims.WTP),
                             values > evpi_values + 1e-9 * np.maximum(np.abs(evpi_values), 1)),
            "se": (("group", dims.WTP), np.array([r["se"] for r in rows])),
            "r2_cost_min": (("group",), np.array([r["r2_cost"].min() for r in rows])),
            "r2_effect_min": (("group",), np.array([r["r2_effect"].min() for r in rows])),
            "r2_max": (("group",), np.array([max(r["r2_cost"].max(), r["r2_effect"].max())
                                             for r in rows])),
        },
        coords={"group": list(groups), dims.WTP: lam,
                "members": ("group", [",".join(v) for v in groups.values()])},
        attrs={"method": method, "method_description": METHODS[method], "units": "per person",
               "effect": effect,
               **{k: psa.attrs[k] for k in ("currency", "price_year") if k in psa.attrs}},
    )
    return out
