"""Model families for ``vbhc fit``: each turns validated data rows into a ``pm.Model``.

Every family names its outputs as scalar variables a scenario can use directly
(``posterior: {file: ..., variable: rr_coach}``) and documents its priors (docs/fitting.md).

- ``binomial_arms``: arm-level events/n of one multi-arm trial (rows of the same arm pooled); baseline risk of the reference
  arm (logit scale, default prior Normal(0, 2.5)) and log relative risks (``effect: rr``) or log
  odds ratios (``effect: or``) against it (default prior Normal(0, 1)). Outputs ``p_<arm>`` and
  ``rr_<arm>`` / ``or_<arm>``.
- ``rates``: event counts over exposure (person-time or patients) by group, Poisson or
  negative-binomial; log rate of the reference group (default Normal(0, 2.5)) and log rate
  ratios (default Normal(0, 1)); the negative binomial's dispersion alpha has a HalfNormal(10)
  prior. With an ``outcome`` column, one independent sub-model per outcome. Outputs
  ``rate_[<outcome>_]<group>`` and ``rate_ratio_[<outcome>_]<group>``.
- ``engagement``: counts by category (never started, dropped out, completed); shares with a
  Dirichlet(concentration) prior (default 1 each) and a multinomial likelihood. Outputs
  ``share_<category>``, and with ``options: {not_started: <category>}`` also
  ``share_<category>_if_started``.
- ``nma_binomial``: random-effects network meta-analysis of binomial outcomes (rows
  ``study, treatment, events, n``) on the log-odds scale, so that treatments never compared
  head to head get a relative effect; study baselines Normal(0, 2.5), log ORs against the
  reference treatment Normal(0, 1), between-study SD tau HalfNormal(0.5). Outputs
  ``or_<treatment>`` and ``tau``.
- ``continuous``: summary statistics by arm (mean, sd, n): arm means with Normal(0, 10 x the
  largest sd) priors and normal likelihoods of the observed means (SE = sd / sqrt(n)); outputs
  ``mean_<arm>`` and ``diff_<arm>`` (vs the reference). Or standardised effects (g with n, or n1
  and n2): true effect Normal(0, 1) prior, g ~ Normal(delta, SE(g)) with the usual large-sample
  SE; outputs ``delta_<label>``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.fitting.spec import ORIGIN, FitFile, Prior
from vbhc_model.scenario.loader import Source

DEFAULT_PRIORS = {
    "binomial_arms": {"baseline": Prior(mu=0.0, sigma=2.5), "effect": Prior(mu=0.0, sigma=1.0)},
    "rates": {"baseline": Prior(mu=0.0, sigma=2.5), "effect": Prior(mu=0.0, sigma=1.0),
              "dispersion": Prior(type="halfnormal", sigma=10.0)},
    "engagement": {},
    "continuous": {"effect": Prior(mu=0.0, sigma=1.0)},
    "nma_binomial": {"baseline": Prior(mu=0.0, sigma=2.5), "effect": Prior(mu=0.0, sigma=1.0),
                     "heterogeneity": Prior(type="halfnormal", sigma=0.5)},
}


#: The options each family reads (None: any, passed to a custom model).
OPTIONS = {"binomial_arms": ("reference", "effect"), "nma_binomial": ("reference",),
           "rates": ("reference", "likelihood"), "engagement": ("concentration", "not_started"),
           "continuous": ("reference",), "custom": None}


class _Rows:
    """Checks of data rows with messages that name the row and key."""

    def __init__(self, rows: list[dict[str, Any]], source: Source):
        self.rows, self.source = rows, source

    def fail(self, i: int | None, key: str, message: str):
        origin = self.rows[i].get(ORIGIN) if i is not None else None
        if origin is not None:  # a row from a CSV file: point at its line there
            raise ScenarioError([Issue(origin[0], key, message, origin[1])])
        path = ("data",) if i is None else ("data", i, key) if key else ("data", i)
        raise ScenarioError([self.source.issue(path, message)])

    def text(self, i: int, key: str) -> str:
        v = self.rows[i].get(key)
        if not isinstance(v, str) or not v.isidentifier():
            self.fail(i, key, f"'{key}' must be a name (letters, digits, _), got {v!r}")
        return v

    def number(self, i: int, key: str, *, integer: bool = False, positive: bool = False,
               minimum: float = 0.0) -> float:
        v = self.rows[i].get(key)
        if v is None:
            self.fail(i, key, f"'{key}' is missing")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(i, key, f"'{key}' must be a number, got {v!r}")
        if integer and float(v) != int(v):
            self.fail(i, key, f"'{key}' must be a whole number (a count), got {v}")
        if v < minimum or (positive and v <= 0):
            self.fail(i, key, f"'{key}' must be {'> 0' if positive else f'>= {minimum:g}'}, "
                              f"got {v}")
        return float(v)

    def labels(self, key: str) -> list[str]:
        out = [self.text(i, key) for i in range(len(self.rows))]
        return out


def _prior(spec: FitFile, family: str, name: str) -> Prior:
    default = DEFAULT_PRIORS[family].get(name)
    given = spec.priors.get(name)
    if given is None:
        return default
    kind = given.type or (default.type if default is not None else "normal")
    return Prior(type=kind, mu=given.mu, sigma=given.sigma)


def _normal(pm, name: str, prior: Prior, **kw):
    if prior.type == "halfnormal":
        return pm.HalfNormal(name, sigma=prior.sigma, **kw)
    return pm.Normal(name, mu=prior.mu, sigma=prior.sigma, **kw)


def _reference(spec: FitFile, labels: list[str], source: Source, key: str) -> int:
    ref = spec.options.get("reference", labels[0])
    if ref not in labels:
        raise ScenarioError([source.issue(("options", "reference"),
                                          f"reference {ref!r} is not one of the data's {key}s: "
                                          f"{', '.join(labels)}")])
    return labels.index(ref)


def build(spec: FitFile, rows: list[dict[str, Any]], source: Source, fit_dir=None):
    """The ``pm.Model`` of a fit file and its data as arrays (for the posterior file)."""
    known = {"binomial_arms": _binomial_arms, "rates": _rates, "engagement": _engagement,
             "continuous": _continuous, "custom": _custom, "nma_binomial": _nma_binomial}
    for name, given in spec.priors.items():
        default = DEFAULT_PRIORS.get(spec.family, {}).get(name)
        if default is not None and default.type == "halfnormal" and given.type == "normal":
            raise ScenarioError([source.issue(("priors", name, "type"), f"{name} is a scale "
                                              "(it must be positive): give a halfnormal prior")])
    allowed = OPTIONS[spec.family]
    if allowed is not None:
        for key in spec.options:
            if key not in allowed:
                raise ScenarioError([source.issue(("options", key), f"family {spec.family} has "
                                                  f"no option {key!r}; it has "
                                                  f"{', '.join(allowed) or 'none'}")])
    unknown = set(spec.priors) - set(DEFAULT_PRIORS.get(spec.family, spec.priors))
    if unknown:
        name = sorted(unknown)[0]
        raise ScenarioError([source.issue(("priors", name), f"family {spec.family} has no "
                                          f"prior {name!r}; it has "
                                          f"{', '.join(DEFAULT_PRIORS[spec.family]) or 'none'}")])
    return known[spec.family](spec, _Rows(rows, source), source, fit_dir)


def _binomial_arms(spec, r: _Rows, source, _dir):
    import pymc as pm

    labels = r.labels("arm")
    n_rows = np.array([r.number(i, "n", integer=True, positive=True) for i in range(len(labels))])
    y_rows = np.array([r.number(i, "events", integer=True) for i in range(len(labels))])
    for i in np.flatnonzero(y_rows > n_rows):
        r.fail(int(i), "events", f"events ({y_rows[i]:g}) exceed n ({n_rows[i]:g})")
    # Several rows of one arm (e.g. routine data appended by vbhc update) are pooled.
    arms = list(dict.fromkeys(labels))
    n = np.array([n_rows[[lab == a for lab in labels]].sum() for a in arms])
    y = np.array([y_rows[[lab == a for lab in labels]].sum() for a in arms])
    effect = spec.options.get("effect", "rr")
    if effect not in ("rr", "or"):
        raise ScenarioError([source.issue(("options", "effect"),
                                          f"effect must be 'rr' or 'or', got {effect!r}")])
    ref = _reference(spec, arms, source, "arm")
    others = [i for i in range(len(arms)) if i != ref]
    with pm.Model() as model:
        base = _normal(pm, "logit_p_reference", _prior(spec, "binomial_arms", "baseline"))
        log_eff = [_normal(pm, f"log_{effect}_{arms[i]}", _prior(spec, "binomial_arms", "effect"))
                   for i in others]
        p_ref = pm.math.invlogit(base)
        p = [None] * len(arms)
        p[ref] = p_ref
        for i, le in zip(others, log_eff):
            if effect == "rr":  # log-binomial: p = p_ref RR, kept inside (0, 1)
                p[i] = pm.math.clip(p_ref * pm.math.exp(le), 1e-12, 1 - 1e-12)
            else:
                p[i] = pm.math.invlogit(base + le)
            pm.Deterministic(f"{effect}_{arms[i]}", pm.math.exp(le))
        for i, arm in enumerate(arms):
            pm.Deterministic(f"p_{arm}", p[i])
        pm.Binomial("events", n=n, p=pm.math.stack(p), observed=y)
    data = {"arm": arms, "events": y, "n": n}
    outputs = [f"{effect}_{arms[i]}" for i in others] + [f"p_{a}" for a in arms]
    return model, data, outputs


def _rates(spec, r: _Rows, source, _dir):
    import pymc as pm

    groups = r.labels("group")
    rows = range(len(groups))
    outcomes = [r.text(i, "outcome") for i in rows] if "outcome" in r.rows[0] else [""] * len(groups)
    y = np.array([r.number(i, "events", integer=True) for i in rows])
    t = np.array([r.number(i, "exposure", positive=True) for i in rows])
    names = list(dict.fromkeys(groups))
    ref = _reference(spec, names, source, "group")
    likelihood = spec.options.get("likelihood", "poisson")
    if likelihood not in ("poisson", "negbin"):
        raise ScenarioError([source.issue(("options", "likelihood"), "likelihood must be "
                                          f"'poisson' or 'negbin', got {likelihood!r}")])
    outputs = []
    with pm.Model() as model:
        # One independent sub-model per outcome (e.g. X-rays, ED visits), each with its own
        # reference rate and rate ratios.
        for outcome in dict.fromkeys(outcomes):
            tag = f"{outcome}_" if outcome else ""
            sel = [i for i in rows if outcomes[i] == outcome]
            present = list(dict.fromkeys(groups[i] for i in sel))
            if names[ref] not in present:
                r.fail(sel[0], "group", f"outcome {outcome!r} has no row for the reference "
                                        f"group {names[ref]!r}")
            base = _normal(pm, f"log_rate_{tag}{names[ref]}", _prior(spec, "rates", "baseline"))
            log_rate = {names[ref]: base}
            for g in present:
                if g == names[ref]:
                    continue
                lrr = _normal(pm, f"log_rate_ratio_{tag}{g}", _prior(spec, "rates", "effect"))
                log_rate[g] = base + lrr
                pm.Deterministic(f"rate_ratio_{tag}{g}", pm.math.exp(lrr))
                outputs.append(f"rate_ratio_{tag}{g}")
            for g in present:
                pm.Deterministic(f"rate_{tag}{g}", pm.math.exp(log_rate[g]))
                outputs.append(f"rate_{tag}{g}")
            mu = pm.math.stack([pm.math.exp(log_rate[groups[i]]) * t[i] for i in sel])
            if likelihood == "poisson":
                pm.Poisson(f"events_{tag}".rstrip("_"), mu=mu, observed=y[sel])
            else:
                alpha = _normal(pm, f"dispersion_{tag}".rstrip("_"),
                                _prior(spec, "rates", "dispersion"))
                pm.NegativeBinomial(f"events_{tag}".rstrip("_"), mu=mu, alpha=alpha,
                                    observed=y[sel])
    data = {"group": groups, "events": y, "exposure": t}
    if any(outcomes):
        data["outcome"] = outcomes
    return model, data, outputs


def _engagement(spec, r: _Rows, source, _dir):
    import pymc as pm

    labels = r.labels("category")
    count_rows = np.array([r.number(i, "count", integer=True) for i in range(len(labels))])
    cats = list(dict.fromkeys(labels))  # rows of one category are pooled
    counts = np.array([count_rows[[lab == c for lab in labels]].sum() for c in cats])
    conc = spec.options.get("concentration", 1.0)
    if isinstance(conc, bool) or not isinstance(conc, (int, float)) or not conc > 0:
        raise ScenarioError([source.issue(("options", "concentration"),
                                          f"concentration must be a number > 0, got {conc!r}")])
    outputs = [f"share_{c}" for c in cats]
    start = spec.options.get("not_started")
    if start is not None and start not in cats:
        raise ScenarioError([source.issue(("options", "not_started"),
                                          f"{start!r} is not one of the categories: "
                                          f"{', '.join(cats)}")])
    with pm.Model(coords={"category": cats}) as model:
        shares = pm.Dirichlet("shares", a=np.full(len(cats), float(conc)), dims="category")
        pm.Multinomial("counts", n=int(counts.sum()), p=shares, observed=counts)
        for i, c in enumerate(cats):
            pm.Deterministic(f"share_{c}", shares[i])
        if start is not None:  # shares among those who started, e.g. drop-out if started
            j = cats.index(start)
            for i, c in enumerate(cats):
                if i != j:
                    pm.Deterministic(f"share_{c}_if_started", shares[i] / (1 - shares[j]))
                    outputs.append(f"share_{c}_if_started")
    return model, {"category": cats, "count": counts}, outputs


def _continuous(spec, r: _Rows, source, _dir):
    import pymc as pm

    if "g" in r.rows[0]:
        labels = r.labels("label")
        for i, lab in enumerate(labels):
            if lab in labels[:i]:
                r.fail(i, "label", f"label {lab!r} appears twice; give one row per effect")
        g = np.array([r.number(i, "g", minimum=-math.inf) for i in range(len(labels))])
        n1 = np.array([r.number(i, "n1" if "n1" in r.rows[i] else "n", positive=True)
                       for i in range(len(labels))])
        n2 = np.array([r.rows[i].get("n2") for i in range(len(labels))], dtype=object)
        se = np.empty(len(labels))
        for i in range(len(labels)):
            if n2[i] is None:  # within-group (pre-post) effect
                se[i] = math.sqrt(1 / n1[i] + g[i] ** 2 / (2 * n1[i]))
            else:
                m = r.number(i, "n2", positive=True)
                se[i] = math.sqrt((n1[i] + m) / (n1[i] * m) + g[i] ** 2 / (2 * (n1[i] + m)))
        with pm.Model() as model:
            for i, lab in enumerate(labels):
                d = _normal(pm, f"delta_{lab}", _prior(spec, "continuous", "effect"))
                pm.Normal(f"g_{lab}", mu=d, sigma=se[i], observed=g[i])
        return model, {"label": labels, "g": g, "se": se}, [f"delta_{lab}" for lab in labels]
    arms = r.labels("arm")
    for i, a in enumerate(arms):
        if a in arms[:i]:
            r.fail(i, "arm", f"arm {a!r} appears twice; summary statistics of one arm cannot be "
                             "pooled row by row: give one row per arm")
    mean = np.array([r.number(i, "mean", minimum=-math.inf) for i in range(len(arms))])
    sd = np.array([r.number(i, "sd", positive=True) for i in range(len(arms))])
    n = np.array([r.number(i, "n", positive=True) for i in range(len(arms))])
    ref = _reference(spec, arms, source, "arm")
    scale = 10 * float(sd.max())
    with pm.Model() as model:
        mus = [pm.Normal(f"mean_{a}", mu=0.0, sigma=max(scale, 10 * abs(float(mean[i]))))
               for i, a in enumerate(arms)]
        for i, a in enumerate(arms):
            pm.Normal(f"observed_mean_{a}", mu=mus[i], sigma=sd[i] / math.sqrt(n[i]),
                      observed=mean[i])
            if i != ref:
                pm.Deterministic(f"diff_{a}", mus[i] - mus[ref])
    outputs = [f"diff_{a}" for i, a in enumerate(arms) if i != ref] + [f"mean_{a}" for a in arms]
    return model, {"arm": arms, "mean": mean, "sd": sd, "n": n}, outputs


def deviation_embedding(by_study: dict[str, list[int]], n_rows: int) -> tuple[list[int], np.ndarray]:
    """The rows that are not their study's first arm, and the matrix E (rows x those) with
    E z ~ the arms' random deviations for z ~ N(0, I): within a study, deviations have
    correlation 1/2 (one (I + J)/2 Cholesky block per study), across studies none; a study's
    first arm gets 0.

    Examples
    --------
    >>> rest, e = deviation_embedding({"s1": [0, 1, 4], "s2": [2, 3]}, 5)
    >>> rest, (e @ e.T).round(2)[[1, 1, 4], [4, 3, 4]].tolist()
    ([1, 4, 3], [0.5, 0.0, 1.0])
    """
    rest = [i for idx in by_study.values() for i in idx[1:]]  # in the blocks' (study) order
    chol = np.zeros((len(rest), len(rest)))
    o = 0
    for idx in by_study.values():
        k = len(idx) - 1
        chol[o:o + k, o:o + k] = np.linalg.cholesky((np.eye(k) + np.ones((k, k))) / 2)
        o += k
    embed = np.zeros((n_rows, len(rest)))
    embed[np.array(rest)] = chol
    return rest, embed


def _nma_binomial(spec, r: _Rows, source, _dir):
    """Random-effects network meta-analysis of binomial outcomes on the log-odds scale (Dias
    et al., NICE DSU TSD 2, 2011): study baselines mu_i; the relative effect of arm k against
    the study's first arm, delta_ik ~ Normal(d_tk - d_tb, tau), correlated within multi-arm
    studies (covariance tau^2 / 2); d of the reference treatment = 0. Non-centred."""
    import pymc as pm

    rows = range(len(r.rows))
    studies = [r.text(i, "study") for i in rows]
    treatments = [r.text(i, "treatment") for i in rows]
    n = np.array([r.number(i, "n", integer=True, positive=True) for i in rows])
    y = np.array([r.number(i, "events", integer=True) for i in rows])
    for i in np.flatnonzero(y > n):
        r.fail(int(i), "events", f"events ({y[i]:g}) exceed n ({n[i]:g})")
    names = list(dict.fromkeys(treatments))
    ref = _reference(spec, names, source, "treatment")
    by_study: dict[str, list[int]] = {}
    for i, st in enumerate(studies):
        by_study.setdefault(st, []).append(i)
    for st, idx in by_study.items():
        if len(idx) < 2:
            r.fail(idx[0], "study", f"study {st!r} has one arm; each study needs two or more")
        if len({treatments[i] for i in idx}) < len(idx):
            r.fail(idx[0], "treatment", f"study {st!r} lists a treatment twice")
    _connected(names, by_study, treatments, r)
    others = [t for j, t in enumerate(names) if j != ref]
    # Vectorised: arm i of study s(i) has treatment t(i); b(i) is the treatment of the study's
    # first arm; the deviations of the non-first arms are L z tau with L block-diagonal
    # (one block (I + J) / 2 per multi-arm study, Cholesky-factored).
    study_names = list(by_study)
    s_of = np.array([study_names.index(st) for st in studies])
    t_of = np.array([([names[ref]] + others).index(t) for t in treatments])
    first = {st: idx[0] for st, idx in by_study.items()}
    b_of = np.array([t_of[first[st]] for st in studies])
    rest, embed = deviation_embedding(by_study, len(r.rows))
    with pm.Model() as model:
        d_others = _normal(pm, "log_or", _prior(spec, "nma_binomial", "effect"), shape=len(others))
        d = pm.math.concatenate([np.zeros(1), d_others])
        for j, t in enumerate(others):
            pm.Deterministic(f"or_{t}", pm.math.exp(d_others[j]))
        tau = _normal(pm, "tau", _prior(spec, "nma_binomial", "heterogeneity"))
        mu = _normal(pm, "mu", _prior(spec, "nma_binomial", "baseline"), shape=len(study_names))
        z = pm.Normal("z", 0.0, 1.0, shape=len(rest))
        dev = pm.math.dot(embed, z) * tau  # zero for each study's first arm
        is_rest = np.isin(np.arange(len(r.rows)), rest).astype(float)
        logits = mu[s_of] + is_rest * (d[t_of] - d[b_of]) + dev
        pm.Binomial("events", n=n, p=pm.math.invlogit(logits), observed=y)
    outputs = [f"or_{t}" for t in others] + ["tau"]
    return model, {"study": studies, "treatment": treatments, "events": y, "n": n}, outputs


def _connected(names: list[str], by_study: dict, treatments: list[str], r: _Rows) -> None:
    """Every treatment must be linked to every other through the studies."""
    seen, todo = {names[0]}, [names[0]]
    while todo:
        t = todo.pop()
        for idx in by_study.values():
            arms = {treatments[i] for i in idx}
            if t in arms:
                for u in arms - seen:
                    seen.add(u)
                    todo.append(u)
    missing = [t for t in names if t not in seen]
    if missing:
        r.fail(None, "", f"the network is not connected: {', '.join(missing)} shares no "
                         f"study path with {names[0]}")


def _custom(spec, r: _Rows, source, fit_dir):
    """The user's own model: ``build(data, options) -> pm.Model`` from the Python file named
    by ``model:``. That file is run as it is (trusted code only, like any script you run);
    an exception raised in it is the user's, reported with the last lines of their file."""
    import importlib.util

    if not spec.model:
        raise ScenarioError([source.issue(("model",), "the custom family needs 'model: FILE.py' "
                                          "with a function build(data, options) -> pm.Model")])
    path = (fit_dir / spec.model) if fit_dir is not None else spec.model
    try:
        module_spec = importlib.util.spec_from_file_location("vbhc_custom_fit", path)
        module = importlib.util.module_from_spec(module_spec)
    except (OSError, AttributeError) as exc:
        raise ScenarioError([source.issue(("model",), f"cannot load {path}: {exc}")]) from None
    try:
        module_spec.loader.exec_module(module)
    except FileNotFoundError as exc:
        raise ScenarioError([source.issue(("model",), f"cannot load {path}: {exc}")]) from None
    except Exception as exc:  # noqa: BLE001 - the user's code: any exception is theirs
        raise _user_error(source, path, exc) from None
    if not callable(getattr(module, "build", None)):
        raise ScenarioError([source.issue(("model",), f"{path} has no function build(data, "
                                          "options)")])
    rows = [{k: v for k, v in row.items() if k != ORIGIN} for row in r.rows]
    try:
        model = module.build(rows, dict(spec.options))
    except Exception as exc:  # noqa: BLE001 - the user's code: any exception is theirs
        raise _user_error(source, path, exc) from None
    if not (hasattr(model, "free_RVs") and hasattr(model, "deterministics")):
        raise ScenarioError([source.issue(("model",), f"build() in {path} returned "
                                          f"{type(model).__name__}, not a pm.Model")])
    outputs = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    return model, {}, outputs


def _user_error(source, path, exc: BaseException) -> ScenarioError:
    """An exception raised by the user's model file, as theirs: its type and message and the
    last frames in their file (not a bug of vbhc_model)."""
    import traceback

    from vbhc_model.errors import excerpt

    mine = str(Path(path).resolve())
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename and Path(f.filename).resolve() == Path(mine)]
    if isinstance(exc, SyntaxError) and exc.lineno:
        where = [f"  {path}, line {exc.lineno}"]
    else:
        where = [f"  {path}, line {f.lineno}, in {f.name}: {excerpt((f.line or '').strip())}"
                 for f in frames[-3:]]
    message = (f"error in your model file {path}: {type(exc).__name__}: {excerpt(exc, 300)}"
               + "".join("\n" + w for w in where))
    return ScenarioError([source.issue(("model",), message)])
