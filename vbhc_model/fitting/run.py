"""``vbhc fit``: sample a fit file's model with PyMC, gate on convergence, write the posterior.

The posterior is written as an ArviZ-compatible NetCDF (xarray DataTree: ``posterior``,
``sample_stats``, ``prior``, ``prior_predictive``, ``posterior_predictive``,
``observed_data``) with the fit file's SHA-256, its text (data and priors), the family, the
diagnostics and the package version in the root attrs, into a results directory
(``results/<name>/`` in the working directory by default) with its summary table as CSV and
its figures; never into the package, and never over an earlier result without ``force``. A fit
that fails the gate is not written unless ``allow_unconverged``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np

import vbhc_model
from vbhc_model.errors import VbhcError
from vbhc_model.fitting.families import build
from vbhc_model.fitting.spec import Gate, load_fit_file
from vbhc_model.results import FitResult


class ConvergenceError(VbhcError):
    """The fit failed the convergence gate (exit code 3)."""

    exit_code = 3


def diagnose(idata, variables: list[str], gate: Gate) -> tuple[dict, list[str]]:
    """R-hat, bulk and tail ESS (worst over ``variables``) and divergences; the gate's
    failures as sentences saying what failed and what to try."""
    import arviz as az

    post = idata["posterior"].to_dataset()
    # A variable that is constant in every draw (e.g. a fixed deterministic) has no R-hat or
    # ESS; any other NaN is a failure, reported as such.
    variables = [v for v in variables if float(np.ptp(post[v].values)) > 0]
    # Too few draws make ArviZ divide by zero: the NaN it returns is reported as a failure
    # below, so its RuntimeWarnings would only repeat it on the terminal.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(post, var_names=variables)
        ess_b = az.ess(post, var_names=variables, method="bulk")
        ess_t = az.ess(post, var_names=variables, method="tail")

    def worst(ds, largest: bool):
        vals = {}
        for v in ds.data_vars:
            a = np.asarray(ds[v].values, dtype=float)
            vals[v] = np.nan if np.isnan(a).any() else float(a.max() if largest else a.min())
        bad = [v for v, x in vals.items() if np.isnan(x)]
        if bad:
            return bad[0], np.nan
        name = (max if largest else min)(vals, key=vals.get)
        return name, vals[name]

    r_name, r_max = worst(rhat, True)
    b_name, b_min = worst(ess_b, False)
    t_name, t_min = worst(ess_t, False)
    stats = idata["sample_stats"] if "sample_stats" in idata.children else None
    div = int(np.asarray(stats["diverging"].values).sum()) \
        if stats is not None and "diverging" in stats else 0
    diag = {"max_rhat": r_max, "min_ess_bulk": b_min, "min_ess_tail": t_min,
            "divergences": div}
    fails = []
    if np.isnan(r_max):
        fails.append(f"R-hat of {r_name} could not be computed (it varies within chains but "
                     "gives no finite R-hat); check the model")
    elif not r_max <= gate.max_rhat:
        fails.append(f"R-hat of {r_name} is {r_max:.3f} (> {gate.max_rhat}): the chains "
                     "disagree; run longer (sampling.tune, sampling.draws) or reparameterise")
    if not b_min >= gate.min_ess_bulk:
        fails.append(f"bulk ESS of {b_name} is {b_min:.0f} (< {gate.min_ess_bulk:g}): too few "
                     "effective draws; increase sampling.draws or sampling.chains")
    if not t_min >= gate.min_ess_tail:
        fails.append(f"tail ESS of {t_name} is {t_min:.0f} (< {gate.min_ess_tail:g}): the "
                     "interval ends are unreliable; increase sampling.draws")
    if div > gate.max_divergences:
        fails.append(f"{div} divergent transitions (> {gate.max_divergences}): raise "
                     "sampling.target_accept (e.g. 0.95 or 0.99) or use tighter priors")
    return diag, fails


@contextlib.contextmanager
def logger_level(name: str, level: int):
    """Within the block, the logger ``name`` passes records of ``level`` and above only; its
    level is put back on leaving (PyMC's progress messages, without changing the process's
    logging for good)."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


#: What ``vbhc fit`` can do about a failed gate without editing the fit file.
FIT_ADVICE = ("Without editing the fit file: vbhc fit FIT_FILE --draws N --tune N (--chains N) "
              "samples longer, --target-accept 0.95 (or 0.99) takes smaller steps against "
              "divergences; --allow-unconverged writes it anyway, marked as unconverged")


def fit(path: str | Path, *, allow_unconverged: bool = False,
        draws: int | None = None, tune: int | None = None, chains: int | None = None,
        seed: int | None = None, cores: int | None = None, figures: bool = True,
        extra_rows: list[dict] | None = None, extra_attrs: dict | None = None,
        target_accept: float | None = None) -> FitResult:
    """Fit a fit file's model: the posterior, its summary and its diagnostics (nothing is
    written: :func:`vbhc_model.report.write.write` writes the result).

    ``extra_rows`` are appended to the fit file's data (``vbhc update``); ``extra_attrs`` are
    added to the posterior's attributes; ``figures`` says whether the report draws them.
    ``draws``, ``tune``, ``chains``, ``seed`` and ``target_accept`` override the fit file's
    ``sampling``.

    Raises
    ------
    ScenarioError
        A bad fit file or data (file, line, key path).
    ConvergenceError
        The gate failed and ``allow_unconverged`` is false.
    """
    t0 = time.perf_counter()
    path = Path(path)
    spec, source, rows = load_fit_file(path)
    rows = rows + list(extra_rows or [])
    s = spec.sampling
    draws, tune = draws or s.draws, s.tune if tune is None else tune
    chains, seed = chains or s.chains, s.seed if seed is None else seed

    import pymc as pm

    model, data, outputs = build(spec, rows, source, path.parent)
    with model, warnings.catch_warnings(), logger_level("pymc", logging.ERROR):
        warnings.simplefilter("ignore")
        idata = pm.sample(draws=draws, tune=tune, chains=chains,
                          cores=cores or min(chains, os.cpu_count() or 1), random_seed=seed,
                          target_accept=target_accept or s.target_accept, progressbar=False,
                          compute_convergence_checks=False)
        prior = pm.sample_prior_predictive(draws=500, random_seed=seed)
        for group in ("prior", "prior_predictive"):
            if group in prior.children:
                idata[group] = prior[group]
        pm.sample_posterior_predictive(idata, random_seed=seed, extend_inferencedata=True,
                                       progressbar=False)
    if data:  # the data as fitted (after pooling), beside the observed vector
        import xarray as xr

        idata["constant_data"] = xr.Dataset(
            {k: ("row", np.asarray(v)) for k, v in data.items()})
    free = [v.name for v in model.free_RVs]
    diag, fails = diagnose(idata, list(dict.fromkeys(free + outputs)), spec.gate)
    summary = _summary(idata, outputs)
    seconds = time.perf_counter() - t0
    if fails and not allow_unconverged:
        raise ConvergenceError(
            f"{path}: the fit did not converge, so no posterior was written:\n  - "
            + "\n  - ".join(fails)
            + "\n" + FIT_ADVICE)
    idata.attrs.update({
        "fit_file": str(path), "fit_file_sha256": source.sha256, "fit_file_text": source.text,
        "family": spec.family, "name": spec.name, "source": spec.source,
        "outputs": ",".join(outputs), "converged": int(not fails),
        "gate_failures": "; ".join(fails),
        **{k: float(v) for k, v in diag.items()},
        "draws": draws, "tune": tune, "chains": chains, "seed": seed,
        **{f"gate_{k}": float(v) for k, v in spec.gate.model_dump().items()},
        "vbhc_model_version": vbhc_model.__version__, "pymc_version": pm.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **_csv_attrs(spec, path),
        **(extra_attrs or {}),
    })
    return FitResult(name=spec.name, idata=idata, summary=summary, diagnostics=diag,
                     failures=tuple(fails), seconds=seconds, outputs=tuple(outputs),
                     figures=figures)


def _csv_attrs(spec, path: Path) -> dict:
    """A CSV data file's path, SHA-256 and text, so the posterior records all its data."""
    import hashlib

    if not spec.csv:
        return {}
    raw = (path.parent / spec.csv).read_bytes()
    return {"data_csv": spec.csv, "data_csv_sha256": hashlib.sha256(raw).hexdigest(),
            "data_csv_text": raw.decode("utf-8", errors="replace")}


def _summary(idata, outputs: list[str]):
    import arviz as az

    with warnings.catch_warnings():  # as in diagnose: NaN diagnostics are reported, not warned
        warnings.simplefilter("ignore", RuntimeWarning)
        table = az.summary(idata, var_names=outputs, ci_prob=0.95, ci_kind="eti",
                           round_to="none")
    post = idata["posterior"].to_dataset()
    medians = {}
    for v in outputs:  # the median too: published estimates are compared with it
        da = post[v]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            medians[v] = float(da.median())
    table.insert(1, "median", [medians.get(str(i), np.nan) for i in table.index])
    return table
