"""``vbhc calibrate``: fit uncertain scenario parameters so that the cohort model reproduces
observed targets, by sampling importance resampling over the vectorised engine.

A calibration file names a scenario, the parameters to calibrate with their priors (the
scenario's distribution families), and targets: observed counts of people in some states
after some cycle under some strategy (e.g. responders at 3, 6 and 12 months by arm). The
likelihood of each target is binomial on the model's predicted share.

Method: sampling importance resampling (Rubin 1988; as used for health policy models by
Menzies et al., PharmacoEconomics 2017;35:613-624): draw many parameter sets from the prior,
run the model on all of them at once (one vectorised cohort run per chunk), weight each by its
likelihood, and resample the posterior in proportion to the weights. The gate is the
importance-sampling effective sample size, 1 / sum(w^2). PyMC's gradient-free samplers
(SMC, Metropolis) evaluate the model one parameter set at a time; here the engine evaluates
tens of thousands at once, which is what makes calibration of a cohort model take seconds.
The posterior is written in the same format as ``vbhc fit``'s (a ``posterior`` group with
chain x draw), so scenarios use it with ``posterior: {file, variable}``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

import vbhc_model
from vbhc_model.errors import ScenarioError, VbhcError
from vbhc_model.results import CalibrationResult


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Model):
    strategy: str
    states: list[str] = Field(min_length=1)
    cycle: int = Field(ge=0)
    events: int = Field(ge=0)
    n: int = Field(gt=0)
    source: str = Field(min_length=1)


class CalibrationSettings(_Model):
    prior_draws: int = Field(20_000, ge=100)
    posterior_draws: int = Field(4_000, ge=100)
    seed: int = Field(1, ge=0)
    chunk_size: int = Field(10_000, ge=100)
    min_ess: float = Field(400, ge=1)


class CalibrationFile(_Model):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""
    source: str = Field(min_length=1)
    scenario: str = Field(min_length=1, description="The scenario file, relative to this file.")
    parameters: dict[str, dict[str, Any]] = Field(min_length=1,
                                                  description="name -> prior distribution")
    targets: list[Target] = Field(min_length=1)
    settings: CalibrationSettings = CalibrationSettings()


class CalibrationError(VbhcError):
    """Too few effective samples (exit code 3)."""

    exit_code = 3


def calibration_name(path: str | Path) -> str:
    """The ``name`` of a calibration file (its default results folder is ``results/<name>``)."""
    from vbhc_model.fitting.spec import read_model_file

    return read_model_file(Path(path), CalibrationFile, "calibration file")[0].name


def load_calibration(path: Path):
    from vbhc_model.distributions import DistributionError, make_distribution
    from vbhc_model.fitting.spec import read_model_file
    from vbhc_model.scenario import load_scenario

    spec, src = read_model_file(path, CalibrationFile, "calibration file")
    scenario = load_scenario(path.parent / spec.scenario)
    issues, priors = [], {}
    for name, prior in spec.parameters.items():
        p = scenario.parameters.get(name)
        if p is None or not p.value.is_constant:
            issues.append(src.issue(("parameters", name), f"'{name}' is not a parameter with a "
                                    f"value of its own in {spec.scenario}"))
            continue
        prior = dict(prior)
        try:
            priors[name] = make_distribution(prior.pop("type", None), prior)
        except (DistributionError, TypeError) as exc:
            issues.append(src.issue(("parameters", name), f"prior: {exc}"))
        if priors.get(name, 0) is None:
            issues.append(src.issue(("parameters", name), "a fixed prior cannot be calibrated"))
    for i, t in enumerate(spec.targets):
        if t.strategy not in scenario.strategies:
            issues.append(src.issue(("targets", i, "strategy"), f"no strategy {t.strategy!r} in "
                                    f"the scenario ({', '.join(scenario.strategies)})"))
        for s in t.states:
            if s not in scenario.states:
                issues.append(src.issue(("targets", i, "states"), f"no state {s!r} in the "
                                        f"scenario ({', '.join(scenario.states)})"))
        if t.cycle > scenario.settings.n_cycles:
            issues.append(src.issue(("targets", i, "cycle"), f"cycle {t.cycle} is beyond the "
                                    f"model's {scenario.settings.n_cycles} cycles"))
        if t.events > t.n:
            issues.append(src.issue(("targets", i, "events"), f"events ({t.events}) exceed n "
                                    f"({t.n})"))
    if issues:
        raise ScenarioError(issues)
    return spec, src, scenario, priors


def predicted_shares(scenario, spec: CalibrationFile, values: dict[str, np.ndarray]) -> np.ndarray:
    """The model's share of each target's states after its cycle, ``[draw, target]``."""
    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.simulate import simulate

    n = len(next(iter(values.values())))
    draws = base_draws(scenario, n).copy()
    for name, v in values.items():
        draws.loc[{"parameter": name}] = v
    out = simulate(scenario, draws, trace=True)["trace"]
    return np.column_stack([
        out.sel(strategy=t.strategy, cycle=t.cycle, state=t.states).sum("state").values
        for t in spec.targets])


def calibrate(path: str | Path, *, allow_unconverged: bool = False) -> CalibrationResult:
    """Calibrate: the posterior (in ``vbhc fit``'s format) and its summary (nothing is
    written: :func:`vbhc_model.report.write.write` writes the result).

    Raises
    ------
    ScenarioError
        A bad calibration file (file, line, key path).
    CalibrationError
        Effective sample size below ``settings.min_ess`` (unless ``allow_unconverged``).
    """
    import xarray as xr
    from scipy import stats

    from vbhc_model.parameters.sampling import uniforms

    t0 = time.perf_counter()
    path = Path(path)
    spec, src, scenario, priors = load_calibration(path)
    st = spec.settings
    names = list(priors)
    u = uniforms(st.seed, 0, st.prior_draws, len(names))
    prior = {name: priors[name].ppf(u[:, j]) for j, name in enumerate(names)}
    needed = {t.strategy for t in spec.targets}
    reduced = scenario.with_strategies(needed)
    shares = np.concatenate([
        predicted_shares(reduced, spec, {k: v[a:a + st.chunk_size] for k, v in prior.items()})
        for a in range(0, st.prior_draws, st.chunk_size)])
    k = np.array([t.events for t in spec.targets])
    n = np.array([t.n for t in spec.targets])
    loglik = stats.binom.logpmf(k[None, :], n[None, :], np.clip(shares, 0, 1)).sum(axis=1)
    if not np.isfinite(loglik).any():
        raise CalibrationError(f"{path}: no prior draw can produce the targets (likelihood 0 "
                               "everywhere); widen the priors")
    w = np.exp(loglik - np.nanmax(loglik))
    w = np.where(np.isfinite(w), w, 0.0)
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    rng = np.random.Generator(np.random.Philox(key=st.seed + 1))
    idx = rng.choice(st.prior_draws, size=st.posterior_draws, replace=True, p=w)
    fails = [] if ess >= st.min_ess else [
        f"importance-sampling ESS is {ess:.0f} (< {st.min_ess:g}): the targets are much more "
        "informative than the priors; raise settings.prior_draws or use priors closer to the "
        "targets"]
    if fails and not allow_unconverged:
        raise CalibrationError(f"{path}: the calibration is not reliable, so no posterior was "
                               "written:\n  - " + "\n  - ".join(fails)
                               + "\n(pass --allow-unconverged to write it anyway)")
    post = {name: (("chain", "draw"), prior[name][idx][None, :]) for name in names}
    for j, t in enumerate(spec.targets):
        post[f"target_{j}_share"] = (("chain", "draw"), shares[idx, j][None, :])
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post, coords={"chain": [0], "draw": np.arange(st.posterior_draws)}),
        "prior": xr.Dataset({name: (("chain", "draw"), prior[name][None, :]) for name in names},
                            coords={"chain": [0], "draw": np.arange(st.prior_draws)}),
        "sample_stats": xr.Dataset({"log_likelihood": (("prior_draw",), loglik),
                                    "weight": (("prior_draw",), w)}),
        "observed_data": xr.Dataset({"events": (("target",), k), "n": (("target",), n)}),
    })
    tree.attrs.update({
        "calibration_file": str(path), "calibration_file_sha256": src.sha256,
        "calibration_file_text": src.text, "scenario_sha256": scenario.source.sha256,
        "method": "sampling importance resampling (Rubin 1988; Menzies et al. 2017)",
        "ess": ess, "converged": int(not fails), "gate_failures": "; ".join(fails),
        "vbhc_model_version": vbhc_model.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    })
    rows = []
    for name in names:
        d = prior[name][idx]
        rows.append({"parameter": name, "prior_mean": float(prior[name].mean()),
                     "mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                     **{f"q{q}": float(np.quantile(d, q / 100)) for q in (2.5, 50, 97.5)}})
    for j, t in enumerate(spec.targets):
        d = shares[idx, j]
        rows.append({"parameter": f"target {j}: {t.strategy} {'+'.join(t.states)} at cycle "
                                  f"{t.cycle} (observed {t.events / t.n:.4g})",
                     "prior_mean": float(shares[:, j].mean()), "mean": float(d.mean()),
                     "sd": float(d.std(ddof=1)),
                     **{f"q{q}": float(np.quantile(d, q / 100)) for q in (2.5, 50, 97.5)}})
    import pandas as pd

    summary = pd.DataFrame(rows).set_index("parameter")
    return CalibrationResult(name=spec.name, tree=tree, summary=summary, ess=ess,
                             failures=tuple(fails), seconds=time.perf_counter() - t0)
