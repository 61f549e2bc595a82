"""Whole-file checks of a scenario: names, references, expressions and parameter order.

These run after the schema has checked each section's shape. Checks that need numbers (rows
summing to one, probabilities in range) run when the model is built, in
:mod:`vbhc_model.model.build`, on the base case for ``vbhc validate``.
"""

from __future__ import annotations

import graphlib
import keyword
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vbhc_model.distributions import DistributionError, check_distribution
from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.readers.patients import PatientTable, PatientTableError, read_patients
from vbhc_model.readers.posterior import PACKAGE_PREFIX, PosteriorError, read_posterior, resolve
from vbhc_model.readers.samples import SamplesError, read_samples
from vbhc_model.readers.uniforms import UniformsError, read_uniforms
from vbhc_model.scenario.expressions import Expression, check_names, non_ascii
from vbhc_model.scenario.names import CYCLE_NAMES, FUNCTION_NAMES, RESERVED_NAMES
from vbhc_model.scenario.schema import (
    COMPLEMENT,
    NAME_PATTERN,
    Payoffs,
    Scenario,
    Settings,
    yearly_shares,
)
from vbhc_model.suggest import did_you_mean


def check_scenario(scenario: Scenario) -> list[Issue]:
    """Every whole-file problem of ``scenario``, in file order."""
    src = scenario.source
    issues: list[Issue] = []

    def add(path: tuple, message: str) -> None:
        issues.append(src.issue(path, message))

    _check_settings(scenario, add)
    _check_states_use(scenario, add)
    _check_names(scenario, add)
    _check_references(scenario, add)
    attributes = attribute_names(scenario)  # once: a patient table's header is a file read
    for path, expr, context in _expressions(scenario):
        _check_expression(scenario, path, expr, context, add, attributes)
    _check_parameter_order(scenario, add)
    for name, param in scenario.parameters.items():
        if param.distribution is None:
            continue
        if not param.value.is_constant:
            add(
                ("parameters", name, "distribution"),
                "a parameter defined by an expression cannot also have a distribution; "
                "give the distribution to the parameters it is computed from",
            )
            continue
        spec = param.distribution.model_dump()
        try:
            check_distribution(spec.pop("type"), spec)
        except DistributionError as exc:
            add(("parameters", name, "distribution"), str(exc))
    _check_joint(scenario, add)
    _check_population(scenario, add)
    _check_steps(scenario, add)
    _check_variants(scenario, add)
    _check_cost_categories(scenario, add)
    _check_plan(scenario, add)
    _check_trackers(scenario, add)
    for path, file, target, explicit in file_references(scenario):
        if not explicit and not _inside(target, scenario):
            add(path, f"{file!r} leads outside the scenario's folder (to {target}) through a "
                      "symbolic link; write the path explicitly (absolute, or with '../') "
                      "if that file is meant")
    _check_posteriors(scenario, add)
    _check_samples(scenario, add)
    for sname, strat in scenario.strategies.items():
        prog = strat.programme
        if prog is not None and prog.duration > scenario.settings.n_cycles:
            add(
                ("strategies", sname, "programme", "duration"),
                f"programme runs {prog.duration} cycles but the model has only "
                f"{scenario.settings.n_cycles}",
            )
        if strat.engagement is not None:
            n_rest = sum(lvl.share is COMPLEMENT for lvl in strat.engagement.values())
            if n_rest > 1:
                add(("strategies", sname, "engagement"), "at most one level may be 'complement'")
    issues.sort(key=lambda i: (i.line or 0))
    return issues


def file_references(scenario: Scenario) -> Iterator[tuple[tuple, str, Path, bool]]:
    """Every file a scenario reads: (key path, the path as written, where it leads, written
    explicitly: absolute, through '..', or a shipped file named ``package:NAME``)."""
    src = scenario.source.file if scenario.source else None
    refs = [(("parameters", n, f, "file"), getattr(p, f).file)
            for n, p in scenario.parameters.items() for f in ("posterior", "samples")
            if getattr(p, f) is not None]
    if scenario.settings.uniforms is not None:
        refs.append((("settings", "uniforms"), scenario.settings.uniforms))
    pop = scenario.population
    if pop is not None and pop.patients is not None:
        refs.append((("population", "patients", "file"), pop.patients.file))
    for path, file in refs:
        written = Path(file)
        yield (path, file, resolve(file, src).resolve(),
               written.is_absolute() or ".." in written.parts or file.startswith(PACKAGE_PREFIX))


def _inside(target: Path, scenario: Scenario) -> bool:
    """Whether ``target`` is in the scenario file's folder (or below it)."""
    if scenario.source is None or not scenario.source.file:
        return True
    return target.is_relative_to(Path(scenario.source.file).resolve().parent)


def outside_notes(scenario: Scenario) -> list[Issue]:
    """A note for each file read from outside the scenario's folder (written explicitly:
    ``vbhc validate`` shows them, so that a scenario reading elsewhere is never silent)."""
    return [scenario.source.issue(path, f"reads {target}, outside the scenario's folder")
            for path, _, target, explicit in file_references(scenario)
            if explicit and not _inside(target, scenario)]


def _by_file(scenario: Scenario, field: str, add: Any) -> dict[Any, list[tuple[str, Any]]]:
    """``{path: [(parameter, reference)]}`` of the parameters whose ``field`` (``posterior``
    or ``samples``) names a file; one defined by an expression is an error instead."""
    by_file: dict[Any, list[tuple[str, Any]]] = {}
    for name, param in scenario.parameters.items():
        ref = getattr(param, field)
        if ref is None:
            continue
        if not param.value.is_constant:
            add(("parameters", name, field),
                f"a parameter defined by an expression cannot also take a {field} file")
            continue
        by_file.setdefault(resolve(ref.file, scenario.source.file), []).append((name, ref))
    return by_file


def _check_posteriors(scenario: Scenario, add: Any) -> None:
    """Posterior files exist and hold the variables named, with a label chosen for each
    dimension besides chain and draw."""
    for path, refs in _by_file(scenario, "posterior", add).items():
        if not path.exists():
            name, ref = refs[0]
            add(("parameters", name, "posterior", "file"),
                f"posterior file {ref.file!r} not found (looked for {path}); "
                + missing_posterior_advice(ref.file, path, scenario))
            continue
        for name, ref in refs:
            try:
                post = read_posterior(path, [(ref.variable, ref.select)])
            except PosteriorError as exc:
                add(("parameters", name, "posterior"), str(exc))
                continue
            _check_domain(name, post.get(ref.variable, ref.select), f"posterior draws of "
                          f"{ref.variable!r} in {ref.file!r}", ("parameters", name, "posterior"),
                          add)


#: The values a parameter's name promises (STYLE: p_ probability, r_/rate_ rate, rr_/hr_/or_
#: relative effects): draws read from a posterior or samples file outside them are refused,
#: not left to be clipped silently by a min()/max() in an expression.
DOMAINS = {"p_": (0.0, 1.0), "r_": (0.0, math.inf), "rate_": (0.0, math.inf),
           "rr_": (0.0, math.inf), "hr_": (0.0, math.inf), "or_": (0.0, math.inf)}


def _check_domain(name: str, values: np.ndarray, what: str, path: tuple, add: Any) -> None:
    """Draws of parameter ``name`` outside the domain its prefix promises (DOMAINS)."""
    prefix = next((p for p in DOMAINS if name.startswith(p)), None)
    if prefix is None or values.size == 0:
        return
    lo, hi = DOMAINS[prefix]
    bad = (values < lo) | (values > hi)
    if bad.any():
        i = int(np.argmax(bad))
        span = f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
        add(path, f"{int(bad.sum()):,} of {values.size:,} {what} are outside {span}, the "
                  f"values a '{prefix}' parameter takes (draw {i}: {values[i]:.6g}); fix the "
                  f"fit or the file, or rename the parameter if its values may be so")


def missing_posterior_advice(file: str, path: Path, scenario: Scenario) -> str:
    """What to do about a posterior file that is not there (``path``, where it was looked
    for): a shipped scenario copied out of its folder (its fits/ stayed behind) is copied
    with ``vbhc init`` or points at the shipped file with ``package:``; any posterior can be
    fitted with ``vbhc fit``."""
    from vbhc_model.readers.posterior import package_file

    name = file[len(PACKAGE_PREFIX):] if file.startswith(PACKAGE_PREFIX) else file
    fit = package_file(str(Path(name).with_suffix(".yaml")))
    refit = (f"fit it: 'vbhc fit {fit if fit.is_file() else 'FIT_FILE'} --out {path}'")
    if file.startswith(PACKAGE_PREFIX):
        return f"{PACKAGE_PREFIX} names a file shipped with vbhc_model; {refit}"
    if not package_file(file).is_file():
        return ("point 'file:' at the posterior (a path relative to this scenario file, or "
                f"{PACKAGE_PREFIX}NAME for a file shipped with vbhc_model), or {refit}")
    stem = Path(scenario.source.file).stem if scenario.source else ""
    shipped = stem if stem and package_file(f"{stem}.yaml").is_file() else "SCENARIO"
    return (f"a shipped scenario copied without the files it uses? Copy it with them: "
            f"'vbhc init NAME --from {shipped}' (vbhc init --help); or write 'file: "
            f"{PACKAGE_PREFIX}{file}' to use the posterior vbhc_model ships; or {refit}")


def _check_samples(scenario: Scenario, add: Any) -> None:
    """Samples files exist, are tables of numbers and hold the columns named; the parameters
    drawn from one file pick its rows the same way."""
    for path, refs in _by_file(scenario, "samples", add).items():
        name, ref = refs[0]
        try:
            table = read_samples(path)
        except SamplesError as exc:
            add(("parameters", name, "samples", "file"), str(exc))
            continue
        for other, oref in refs:
            try:
                values = table.get(oref.column)
            except SamplesError as exc:
                add(("parameters", other, "samples", "column"), str(exc))
            else:
                _check_domain(other, values, f"samples of column {oref.column!r} in "
                              f"{oref.file!r}", ("parameters", other, "samples", "column"), add)
            if oref.pick != ref.pick:
                add(("parameters", other, "samples", "pick"),
                    f"'{other}' and '{name}' take rows of {ref.file!r} together, so they pick "
                    f"them the same way; '{name}' says {ref.pick!r}, '{other}' {oref.pick!r}")


def _check_states_use(scenario: Scenario, add: Any) -> None:
    """Payoffs and transitions that cannot mean what they say about their state."""
    states = scenario.states
    blocks = [(("payoffs", st), st, b) for st, b in scenario.payoffs.items()]
    blocks += [(("strategies", sn, "payoffs", st), st, b)
               for sn, strat in scenario.strategies.items() for st, b in strat.payoffs.items()]
    for path, state, block in blocks:
        if state in states and not states[state].alive and block.utility is not None:
            add(path + ("utility",), f"state '{state}' is not alive (alive: false), so it "
                                     "accrues no QALYs; remove its utility")
    rows = [(("transitions", frm, to), frm, e) for frm, row in scenario.transitions.items()
            for to, e in row.items()]
    rows += [(("strategies", sn, "transitions", frm, to), frm, e)
             for sn, strat in scenario.strategies.items()
             for frm, row in strat.transitions.items() for to, e in row.items()]
    rows += [(path + (field, key), path[-1], e) for path, _, block in blocks
             for field in ("costs", "utilisation", "clinician_hours")
             for key, e in getattr(block, field).items()]
    for path, state, expr in rows:
        if (expr is not COMPLEMENT and "time_in_state" in expr.names and state in states
                and states[state].tunnel == 1):
            add(path, f"uses time_in_state, but state '{state}' has no tunnel (it would always "
                      f"be 1); give the state 'tunnel: N'")
    for i, tp in enumerate(scenario.transition_payoffs):
        frm = tp.from_
        if frm in states and states[frm].absorbing and frm != tp.to:
            add(("transition_payoffs", i, "from"),
                f"'{frm}' is absorbing, so the transition {frm} -> {tp.to} never happens")


def _check_settings(scenario: Scenario, add: Any) -> None:
    st = scenario.settings
    method = st.correction_method
    if method == "weights":
        _check_weights(st, add)
    if st.count_start and method != "none":
        add(("settings", "count_start"),
            f"count_start applies only to within_cycle_correction 'none' (got '{method}', "
            "which counts both ends of each cycle)")
    if method == "simpson" and st.n_cycles % 2:
        add(("settings", "n_cycles"), f"Simpson's 1/3 rule needs an even n_cycles, got "
                                      f"{st.n_cycles}")
    if st.discount_timing and method in ("trapezoidal", "simpson", "weights"):
        add(("settings", "discount_timing"),
            "discount_timing applies to 'none' and 'half_cycle'; trapezoidal, Simpson and "
            "weights discount at each trace row's own time")
    if st.uniforms is not None:  # the file, at load (the engine may still be overridden)
        try:
            read_uniforms(resolve(st.uniforms, scenario.source.file), st.n_cycles)
        except UniformsError as exc:
            add(("settings", "uniforms"), str(exc))


def _check_weights(st: Settings, add: Any) -> None:
    """Within-cycle weights: one per trace row 0..n, finite, >= 0, summing to n (a rule that
    integrates a constant payoff exactly: n cycles of it)."""
    path = ("settings", "within_cycle_correction", "weights")
    n = st.n_cycles
    w = st.correction_weights()
    if w.size != n + 1:
        add(path, f"expected {n + 1} weights, one per trace row 0..{n} (n_cycles = {n}), got "
                  f"{w.size}")
        return
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if bad.size:
        add(path, f"weight of row {bad[0]} is {w[bad[0]]:g}: weights must be finite and >= 0")
        return
    total = float(w.sum())
    if not math.isclose(total, n, rel_tol=1e-9, abs_tol=1e-9):
        add(path, f"weights sum to {total:.10g}, not n_cycles = {n}: a rule that counts a "
                  f"constant payoff once per cycle sums to n (scale them by {n / total:.6g}?)"
            if total > 0 else f"weights sum to {total:g}, not n_cycles = {n}")


def _check_joint(scenario: Scenario, add: Any) -> None:
    """Joint distributions and correlations: known free parameters, each drawn once, PD."""
    params = scenario.parameters
    owner: dict[str, str] = {}

    def sampled_free(path: tuple, name: str) -> bool:
        if name not in params:
            add(path, f"unknown parameter '{name}'{did_you_mean(name, params)}")
            return False
        if not params[name].value.is_constant:
            add(path, f"'{name}' is defined by an expression, so it cannot be sampled")
            return False
        return True

    for group, joint in scenario.joint.items():
        for i, name in enumerate(joint.parameters):
            path = ("joint", group, "parameters", i)
            if not sampled_free(path, name):
                continue
            if params[name].distribution is not None:
                add(path, f"'{name}' has its own distribution; remove it or leave it out of "
                          f"'{group}'")
            if params[name].posterior is not None:
                add(path, f"'{name}' takes its draws from a posterior; remove it from "
                          f"'{group}' or drop its posterior")
            if params[name].samples is not None:
                add(path, f"'{name}' takes its draws from a samples file; remove it from "
                          f"'{group}' or drop its samples")
            if name in owner:
                add(path, f"'{name}' is already drawn in joint group '{owner[name]}'")
            owner[name] = group
        if joint.type == "mvnormal":
            cov = joint.covariance_matrix()
            if not np.allclose(cov, cov.T):
                add(("joint", group, "covariance"), "covariance must be symmetric")
            elif np.linalg.eigvalsh(cov).min() <= 0:
                add(("joint", group, "covariance"),
                    f"covariance is not positive definite (smallest eigenvalue "
                    f"{np.linalg.eigvalsh(cov).min():.3g})")
    names: list[str] = []
    for i, corr in enumerate(scenario.correlations):
        for name in corr.parameters:
            path = ("correlations", i, "parameters")
            if not sampled_free(path, name):
                continue
            if name in owner or params[name].distribution is None:
                add(path, f"'{name}' needs its own distribution (not a joint group) to be "
                          "correlated")
            elif name not in names:
                names.append(name)
    if names:
        rho = np.eye(len(names))
        for corr in scenario.correlations:
            if all(n in names for n in corr.parameters):
                a, b = (names.index(n) for n in corr.parameters)
                rho[a, b] = rho[b, a] = corr.rho
        if np.linalg.eigvalsh(rho).min() <= 0:
            add(("correlations",), "the correlations are not consistent: their matrix is not "
                                   "positive definite")


#: At most this many combinations of attribute levels (strata of every strategy).
MAX_PROFILES = 4096


#: A subgroup column of a patient table may hold at most this many distinct values.
MAX_SUBGROUP_LEVELS = 20


def patient_table(scenario: Scenario) -> PatientTable | None:
    """The scenario's patient table, read (None without one).

    Raises
    ------
    PatientTableError
        See :func:`vbhc_model.readers.patients.read_patients`.
    """
    pop = scenario.population
    if pop is None or pop.patients is None:
        return None
    t = pop.patients
    return read_patients(resolve(t.file, scenario.source.file if scenario.source else None),
                         t.weight, t.columns)


def profile_count(scenario: Scenario) -> int:
    """The attribute profiles every strategy runs as strata: every combination of levels, or
    every row of the patient table (1 without a population)."""
    pop = scenario.population
    if pop is None:
        return 1
    if pop.patients is not None:
        return len(patient_table(scenario).weights)
    return math.prod(len(a.levels) for a in pop.attributes.values())


def attribute_names(scenario: Scenario) -> set[str] | None:
    """The patient attributes expressions may use: the declared attributes, or the columns of
    the patient table (its header, even if a cell is bad: that is reported on its own); None
    when the table cannot be read at all, so that names are not reported as unknown for that."""
    pop = scenario.population
    if pop is None:
        return set()
    if pop.patients is None:
        return set(pop.attributes)
    t = pop.patients
    if t.columns is not None:
        return set(t.columns)
    try:
        header = read_samples(resolve(t.file, scenario.source.file if scenario.source else None))
    except SamplesError:
        return None
    return set(header.columns) - {t.weight}


def _check_new_name(name: str, path: tuple, what: str, taken: dict, add: Any) -> None:
    """A name a section adds to expressions (an attribute, a tracker): valid, not reserved,
    not a function, and not also one of the ``taken`` sections' names."""
    if not NAME_PATTERN.match(name):
        add(path, f"'{name}' is not a valid name: use letters, digits and '_', starting "
                  f"with a letter{_lookalike(name)}")
    elif keyword.iskeyword(name) or keyword.issoftkeyword(name):
        add(path, f"'{name}' is a reserved word; choose another name")
    elif name in RESERVED_NAMES:
        add(path, f"'{name}' is reserved by the engine; choose another name")
    elif name in FUNCTION_NAMES:
        add(path, f"'{name}' is a built-in function; choose another name")
    for section, names in taken.items():
        if name in names:
            add(path, f"'{name}' is both {what} and one of the {section}; an expression "
                      "could not tell which is meant")


def _check_population(scenario: Scenario, add: Any) -> None:
    """Attribute names free and valid, one 'complement' per attribute, subgroups known, a
    bounded number of combinations (or of table rows)."""
    pop = scenario.population
    if pop is None:
        return
    taken = {"parameters": scenario.parameters, "tables": scenario.tables}
    n_profiles = 1
    named = [(name, ("population", "attributes", name)) for name in pop.attributes]
    table = None
    if pop.patients is not None:
        try:
            table = patient_table(scenario)
        except PatientTableError as exc:
            add(("population", "patients", "file"), str(exc))
            return
        n_profiles = len(table.weights)
        named = [(name, ("population", "patients", "columns" if pop.patients.columns
                         else "file")) for name in table.attributes]
    for name, path in named:
        _check_new_name(name, path, "an attribute", taken, add)
    for name, attr in pop.attributes.items():
        path = ("population", "attributes", name)
        n_rest = sum(lvl.share is COMPLEMENT for lvl in attr.levels.values())
        if n_rest > 1:
            add(path + ("levels",), "at most one level may be 'complement'")
        n_profiles *= len(attr.levels)
    if n_profiles > MAX_PROFILES:
        if table is not None:
            add(("population", "patients", "file"),
                f"{n_profiles} rows (the strata every strategy runs); at most {MAX_PROFILES}: "
                "group the patients into types with a weight column")
        else:
            add(("population", "attributes"),
                f"{n_profiles} combinations of attribute levels (the strata every strategy "
                f"runs); at most {MAX_PROFILES}: merge levels or drop an attribute")
    known = list(table.attributes) if table is not None else list(pop.attributes)
    seen = set()
    for i, name in enumerate(pop.subgroups):
        if name not in known:
            where = ("attribute columns of the patient table" if table is not None
                     else "attributes declared under population.attributes")
            listed = f" ({', '.join(known)})" if known else ""
            hint = did_you_mean(name, known)
            if table is not None and pop.patients.columns is not None:
                hint = f"; add '{name}' to population.patients.columns if it is a column"
            add(("population", "subgroups", i),
                f"unknown attribute '{name}'{hint}; subgroups name {where}{listed}")
        elif name in seen:
            add(("population", "subgroups", i), f"'{name}' is listed twice")
        elif table is not None:
            n = len(np.unique(table.values[:, known.index(name)]))
            if n > MAX_SUBGROUP_LEVELS:
                add(("population", "subgroups", i),
                    f"column '{name}' has {n} distinct values; a subgroup column may have at "
                    f"most {MAX_SUBGROUP_LEVELS} (group the values in a column of its own)")
        seen.add(name)


def _check_plan(scenario: Scenario, add: Any) -> None:
    """A plan's uptake names strategies, gives one share per year when it gives a list, at
    most one 'complement' a mix, and each year's shares sum to 1 (the others at most 1 beside a
    complement); its roles are the scenario's."""
    plan = scenario.plan
    if plan is None:
        return
    mixes = [("current", plan.uptake.current, ("plan", "uptake", "current")),
             ("new", plan.uptake.new, ("plan", "uptake", "new"))]
    mixes += [(k, v, ("plan", "uptake", "alternatives", k))
              for k, v in plan.uptake.alternatives.items()]
    for mix, shares, path in mixes:
        if mix in ("current", "new") and path[-2] == "alternatives":
            add(path, f"'{mix}' names a mix already; give the alternative another name")
        ok = True
        for name, v in shares.items():
            if name not in scenario.strategies:
                add(path + (name,), f"unknown strategy '{name}'"
                                    f"{did_you_mean(name, scenario.strategies)}")
                ok = False
            elif isinstance(v, list) and len(v) != plan.years:
                add(path + (name,), f"{len(v)} shares for a plan of {plan.years} years: give "
                                    "one number, one per year, or a ramp")
                ok = False
        rest = [name for name, v in shares.items() if isinstance(v, str)]
        if len(rest) > 1:
            add(path + (rest[1],), f"'complement' is given to {rest[0]} and {rest[1]}: one "
                                   "strategy of a mix takes the rest")
            ok = False
        if not ok:
            continue
        by_year = yearly_shares(shares, plan.years)
        for y in range(plan.years):
            if rest:
                others = sum(float(v[y]) for k, v in by_year.items() if k != rest[0])
                if others > 1.0 + 1e-9:
                    add(path + (rest[0],), f"the other shares of year {y + 1} sum to "
                                           f"{others:.6g}: nothing is left for 'complement'")
                    break
                continue
            total = sum(float(v[y]) for v in by_year.values())
            if abs(total - 1.0) > 1e-9:
                add(path, f"the shares of year {y + 1} sum to {total:.6g}, not 1")
                break
    for role, r in plan.roles.items():
        path = ("plan", "roles", role)
        if role not in scenario.roles:
            add(path, f"unknown role '{role}'{did_you_mean(role, scenario.roles)}")
        if isinstance(r.fte_available, list) and len(r.fte_available) != plan.years:
            add(path + ("fte_available",), f"{len(r.fte_available)} values for a plan of "
                                            f"{plan.years} years: give one, or one per year")
    if plan.waiting is not None and plan.waiting.dropout > 0:
        first = next(iter(scenario.strategies))
        if scenario.strategies[first].programme is not None:
            add(("plan", "waiting", "dropout"),
                f"those who give up waiting get the scenario's first strategy, '{first}', "
                "which is a programme: list usual care (the comparator) first")
    for i, state in enumerate(plan.responders):
        if state not in scenario.states:
            add(("plan", "responders", i), f"unknown state '{state}'"
                                           f"{did_you_mean(state, scenario.states)}")
    if plan.completion is not None:
        levels = {lv for st in scenario.strategies.values() for lv in (st.engagement or {})}
        for key in ("completed", "not_started"):
            for i, level in enumerate(getattr(plan.completion, key)):
                if level not in levels:
                    add(("plan", "completion", key, i),
                        f"'{level}' is no strategy's engagement level"
                        f"{did_you_mean(level, sorted(levels))}")


def _check_cost_categories(scenario: Scenario, add: Any) -> None:
    """A declared cost category is one the scenario's costs use."""
    used = set()
    for _, block in _payoff_blocks(scenario):
        used |= set(block.costs)
    used |= {item.category for item in [*scenario.services.values(), *scenario.roles.values()]
             if item.category}
    for name in scenario.cost_categories:
        if name not in used:
            add(("cost_categories", name),
                f"no cost uses category '{name}'{did_you_mean(name, used)}")


def _check_variants(scenario: Scenario, add: Any) -> None:
    """A variant sets parameters the scenario defines, none drawn jointly with others (a
    group's draws would lose a member), and its expressions name known parameters."""
    grouped = {p for g in scenario.joint.values() for p in g.parameters}
    grouped |= {p for c in scenario.correlations for p in c.parameters}
    for vname, variant in scenario.variants.items():
        if not variant.parameters and not variant.settings and not variant.plan:
            add(("variants", vname), "a variant sets parameters, settings or plan keys; this "
                                     "one sets none")
        if variant.plan and scenario.plan is None:
            add(("variants", vname, "plan"), "the scenario has no plan: section to change")
        for key, value in variant.settings.items():
            path = ("variants", vname, "settings", key)
            if key not in Settings.model_fields:
                add(path, f"unknown setting '{key}'{did_you_mean(key, Settings.model_fields)}")
                continue
            try:
                scenario.with_settings(**{key: value})
            except ScenarioError as exc:
                add(path, "; ".join(i.message for i in exc.issues))
        if {"n_cycles", "within_cycle_correction"} & set(variant.settings):
            try:  # weights given row by row must still fit the variant's n_cycles
                changed = scenario.with_settings(**variant.settings).settings
            except (ScenarioError, KeyError):
                changed = None  # reported above
            if changed is not None and changed.correction_method == "weights":
                _check_weights(changed, lambda p, m, v=vname: add(
                    ("variants", v, "settings") + p[1:], m))
        for pname, expr in variant.parameters.items():
            path = ("variants", vname, "parameters", pname)
            if pname not in scenario.parameters:
                add(path, f"unknown parameter '{pname}'"
                          f"{did_you_mean(pname, scenario.parameters)}: a variant may only set "
                          "parameters defined under 'parameters'")
            elif pname in grouped:
                add(path, f"'{pname}' is drawn jointly with other parameters (joint: or "
                          "correlations:); a variant cannot set one member of a group")
            for name in sorted(expr.names - set(scenario.parameters)):
                add(path, f"unknown name '{name}'{did_you_mean(name, scenario.parameters)} "
                          "(a variant's value may use parameters only)")
        if all(p in scenario.parameters for p in variant.parameters) and all(
                k in Settings.model_fields for k in variant.settings):
            try:
                parameter_order(scenario.with_variant(vname))
            except ScenarioError:
                pass  # its settings are reported above
            except graphlib.CycleError as exc:
                add(("variants", vname, "parameters"),
                    "circular definition in this variant: " + " -> ".join(exc.args[1]))


def _check_steps(scenario: Scenario, add: Any) -> None:
    """Stepped care: each step names another strategy (one without steps of its own), known
    states, and a cycle after which the model still runs; steps at one cycle move different
    states."""
    n_cycles = scenario.settings.n_cycles
    strategies, states = scenario.strategies, scenario.states
    for sname, strat in strategies.items():
        taken: dict[tuple[int, str], int] = {}
        for i, step in enumerate(strat.steps):
            path = ("strategies", sname, "steps", i)
            if not 1 <= step.at_cycle <= n_cycles - 1:
                add(path + ("at_cycle",),
                    f"at_cycle must be between 1 and {n_cycles - 1} (the model has {n_cycles} "
                    f"cycles and the switched patients need at least one), got {step.at_cycle}")
            target = step.switch_to
            if target == sname:
                add(path + ("switch_to",),
                    f"strategy '{sname}' cannot switch to itself; name another strategy")
            elif target not in strategies:
                add(path + ("switch_to",),
                    f"unknown strategy '{target}'{did_you_mean(target, strategies)}")
            elif strategies[target].steps:
                add(path + ("switch_to",),
                    f"strategy '{target}' has steps of its own; chains of switches are not "
                    f"supported: switch to a strategy without steps")
            for pname in step.parameters:
                if pname not in scenario.parameters:
                    add(path + ("parameters", pname),
                        f"unknown parameter '{pname}'"
                        f"{did_you_mean(pname, scenario.parameters)}: a step may only set "
                        "parameters defined under 'parameters'")
            for j, state in enumerate(step.in_states):
                if state not in states:
                    add(path + ("in_states", j),
                        f"unknown state '{state}'{did_you_mean(state, states)}")
                elif states[state].absorbing:
                    add(path + ("in_states", j),
                        f"state '{state}' is absorbing (it keeps everyone); patients in it "
                        "cannot switch")
                elif (step.at_cycle, state) in taken:
                    add(path + ("in_states", j),
                        f"state '{state}' at cycle {step.at_cycle} is already in step "
                        f"{taken[(step.at_cycle, state)]}; each patient switches at most once "
                        "at a cycle")
                else:
                    taken[(step.at_cycle, state)] = i


#: At most this many combinations of tracker values (each a copy of the states for the
#: microsimulation's transitions and payoffs).
MAX_TRACKER_COMBINATIONS = 10_000


def tracker_sizes(scenario: Scenario) -> dict[str, int]:
    """How many values each tracker tells apart: 1..cap (time_in_state), never and 1..cap
    (time_since), 0..cap (count), 0 and 1 (ever)."""
    extra = {"time_in_state": 0, "time_since": 1, "count": 1}
    return {name: (t.cap + extra[t.kind] if t.kind != "ever" else 2)
            for name, t in scenario.trackers.items()}


def _check_trackers(scenario: Scenario, add: Any) -> None:
    """Tracker names free and valid, events naming known states, a bounded number of
    combinations; not (yet) with stepped care."""
    trackers = scenario.trackers
    if not trackers:
        return
    attributes = attribute_names(scenario) or set()
    taken = {"parameters": scenario.parameters, "tables": scenario.tables,
             "patient attributes": attributes}
    for name, tracker in trackers.items():
        path = ("trackers", name)
        _check_new_name(name, path, "a tracker", taken, add)
        if tracker.event is not None:
            for i, state in enumerate(tracker.event.enter):
                if state not in scenario.states:
                    add(path + ("event", "enter", i),
                        f"unknown state '{state}'{did_you_mean(state, scenario.states)}")
    sizes = tracker_sizes(scenario)
    n = int(np.prod(list(sizes.values())))
    if n > MAX_TRACKER_COMBINATIONS:
        parts = " x ".join(f"{k} {v}" for k, v in sizes.items())
        add(("trackers",), f"{n:,} combinations of tracker values ({parts}); at most "
                           f"{MAX_TRACKER_COMBINATIONS:,}: lower a cap (N means N or more)")
    for sname, strat in scenario.strategies.items():
        if strat.steps:
            add(("strategies", sname, "steps"),
                "stepped care in a scenario with trackers is not there yet; drop the steps "
                "or the trackers")


def _lookalike(name: str) -> str:
    """A note on a name's first character outside ASCII (a fullwidth 'ｐ' looks like 'p')."""
    odd = non_ascii(name)
    return f" ({odd})" if odd else ""


def _check_names(scenario: Scenario, add: Any) -> None:
    groups = {
        "states": scenario.states,
        "strategies": scenario.strategies,
        "parameters": scenario.parameters,
        "tables": scenario.tables,
        "services": scenario.services,
        "roles": scenario.roles,
    }
    for section, items in groups.items():
        for name in items:
            if not NAME_PATTERN.match(name):
                add(
                    (section, name),
                    f"'{name}' is not a valid name: use letters, digits and '_', "
                    f"starting with a letter{_lookalike(name)}",
                )
    for section in ("parameters", "tables"):
        for name in groups[section]:
            if keyword.iskeyword(name) or keyword.issoftkeyword(name):
                add((section, name), f"'{name}' is a reserved word; choose another name")
            elif name in RESERVED_NAMES:
                add((section, name), f"'{name}' is reserved by the engine; choose another name")
            elif name in FUNCTION_NAMES:
                add((section, name), f"'{name}' is a built-in function; choose another name")
    for name in scenario.tables:
        if name in scenario.parameters:
            add(("tables", name), f"'{name}' is both a table and a parameter")


def _payoff_blocks(scenario: Scenario) -> Iterator[tuple[tuple, Payoffs | Any]]:
    for state, block in scenario.payoffs.items():
        yield ("payoffs", state), block
    for i, tp in enumerate(scenario.transition_payoffs):
        yield ("transition_payoffs", i), tp
    for sname, strat in scenario.strategies.items():
        for state, block in strat.payoffs.items():
            yield ("strategies", sname, "payoffs", state), block
        if strat.programme is not None:
            yield ("strategies", sname, "programme", "one_off"), strat.programme.one_off
            yield ("strategies", sname, "programme", "per_cycle"), strat.programme.per_cycle


def _check_references(scenario: Scenario, add: Any) -> None:
    states = scenario.states

    def state_ref(path: tuple, name: str | None) -> None:
        if name is not None and name not in states:
            add(path, f"unknown state '{name}'{did_you_mean(name, states)}")

    def check_rows(path: tuple, rows: dict, shared: dict | None) -> None:
        for frm, row in rows.items():
            state_ref(path + (frm,), frm)
            if frm in states and states[frm].absorbing:
                add(
                    path + (frm,),
                    f"state '{frm}' is absorbing (it keeps everyone); remove its row or its "
                    "'absorbing: true'",
                )
            for to in row:
                state_ref(path + (frm, to), to)
            merged = {**(shared or {}).get(frm, {}), **row}
            if not merged and not (frm in states and states[frm].absorbing):
                add(path + (frm,), f"row '{frm}' is empty: say where '{frm}' goes (e.g. "
                                   f"{{{frm}: complement}}), or mark the state 'absorbing: true'")
            n_rest = sum(v is COMPLEMENT for v in merged.values())
            if n_rest > 1:
                add(path + (frm,), f"row '{frm}' has {n_rest} 'complement' entries; at most one")

    check_rows(("transitions",), scenario.transitions, None)
    for name, state in states.items():
        if not state.absorbing and name not in scenario.transitions:
            add(
                ("states", name),
                f"state '{name}' has no row in transitions; give its row or mark it "
                "'absorbing: true'",
            )
    for state in scenario.settings.start:
        state_ref(("settings", "start", state), state)
    starts = [(("settings", "start"), scenario.settings.start)]
    starts += [(("strategies", s, "start"), st.start) for s, st in scenario.strategies.items()]
    for path, start in starts:
        if start is not None and not start:
            add(path, "names no state: give the share of the cohort starting in each state "
                      "(e.g. {" + next(iter(states), "well") + ": 1})")
    for sname, strat in scenario.strategies.items():
        check_rows(("strategies", sname, "transitions"), strat.transitions, scenario.transitions)
        for state in strat.start or {}:
            state_ref(("strategies", sname, "start", state), state)
        for pname in strat.parameters:
            if pname not in scenario.parameters:
                add(
                    ("strategies", sname, "parameters", pname),
                    f"unknown parameter '{pname}'{did_you_mean(pname, scenario.parameters)}: a "
                    "strategy may only set parameters defined under 'parameters'",
                )
    for path, block in _payoff_blocks(scenario):
        if path[0] == "transition_payoffs":
            state_ref(path + ("from",), block.from_)
            state_ref(path + ("to",), block.to)
        elif path[-2] == "payoffs":
            state_ref(path, path[-1])
        for field, declared, noun, section in (
            ("utilisation", scenario.services, "service", "services"),
            ("clinician_hours", scenario.roles, "role", "roles"),
        ):
            for key in getattr(block, field):
                if key not in declared:
                    add(
                        path + (field, key),
                        f"unknown {noun} '{key}'{did_you_mean(key, declared)}; declare it under "
                        f"'{section}'",
                    )
        for category in block.costs:
            if not NAME_PATTERN.match(category):
                add(path + ("costs", category), f"'{category}' is not a valid cost category name")


def attributes_in_arrays(scenario: Scenario, sname: str) -> set[str]:
    """The names a strategy's model arrays can depend on beyond the parameters: those used by
    its (and the shared) starting shares, transitions, payoffs, transition payoffs,
    programme, and engagement effects and resource use. An attribute outside this set
    changes only the weights of the strategy's strata (its engagement shares), so profiles
    that differ only in such attributes have identical arrays."""
    names: set[str] = set()
    for path, expr, _ in _expressions(scenario):
        if path[0] in ("parameters", "services", "roles", "population"):
            continue
        if path[0] == "strategies" and (path[1] != sname or path[2] == "parameters"
                                        or (path[2] == "engagement" and path[-1] == "share")):
            continue
        names |= expr.names
    return names


def _expressions(scenario: Scenario) -> Iterator[tuple[tuple, Expression, str]]:
    """Every expression with its path and context: 'parameter' (parameters only),
    'patient' (parameters and patient attributes: starting shares, engagement) or 'cycle'
    (also the time names: transitions and payoffs)."""
    for name, p in scenario.parameters.items():
        yield ("parameters", name, "value"), p.value, "parameter"
    for state, e in scenario.settings.start.items():
        yield ("settings", "start", state), e, "patient"
    for name, svc in scenario.services.items():
        if svc.unit_cost is not None:
            yield ("services", name, "unit_cost"), svc.unit_cost, "parameter"
    for name, role in scenario.roles.items():
        if role.hourly_cost is not None:
            yield ("roles", name, "hourly_cost"), role.hourly_cost, "parameter"
    for frm, row in scenario.transitions.items():
        for to, e in row.items():
            if e is not COMPLEMENT:
                yield ("transitions", frm, to), e, "cycle"
    for path, block in _payoff_blocks(scenario):
        for field in ("costs", "utilisation", "clinician_hours"):
            for key, e in getattr(block, field).items():
                yield path + (field, key), e, "cycle"
        for field in ("utility", "qalys"):
            e = getattr(block, field, None)
            if e is not None:
                yield path + (field,), e, "cycle"
    for sname, strat in scenario.strategies.items():
        base = ("strategies", sname)
        for pname, e in strat.parameters.items():
            yield base + ("parameters", pname), e, "parameter"
        for i, step in enumerate(strat.steps):
            for pname, e in step.parameters.items():
                yield base + ("steps", i, "parameters", pname), e, "parameter"
        for state, e in (strat.start or {}).items():
            yield base + ("start", state), e, "patient"
        for frm, row in strat.transitions.items():
            for to, e in row.items():
                if e is not COMPLEMENT:
                    yield base + ("transitions", frm, to), e, "cycle"
        for level, lvl in (strat.engagement or {}).items():
            for field in ("share", "effect", "resource_use"):
                e = getattr(lvl, field)
                if e is not COMPLEMENT:
                    yield base + ("engagement", level, field), e, "patient"
    if scenario.population is not None:
        for name, attr in scenario.population.attributes.items():
            for level, lvl in attr.levels.items():
                if lvl.share is not COMPLEMENT:
                    yield ("population", "attributes", name, "levels", level, "share"), \
                        lvl.share, "parameter"


def _check_expression(scenario: Scenario, path: tuple, expr: Expression, context: str, add: Any,
                      attributes: set[str] | None) -> None:
    """``attributes``: :func:`attribute_names` of the scenario."""
    params = set(scenario.parameters)
    if attributes is None:  # an unreadable patient table (reported): any name may be in it
        attributes = set(expr.names) if context != "parameter" else set()
    trackers = set(scenario.trackers)
    if context == "cycle" and path[2:4] == ("programme", "one_off"):
        context = "one_off"  # at time 0, before any history
    known = params | {"cycle": CYCLE_NAMES | attributes | trackers, "patient": attributes,
                      "parameter": set(),
                      "one_off": CYCLE_NAMES | attributes}[context]
    for name in sorted(expr.names & trackers - known):
        add(path, f"tracker '{name}' cannot be used here: trackers can be used in transitions "
                  "and payoffs, which follow a patient's history; parameters, unit costs, "
                  "starting shares, engagement and a programme's one-off resources come "
                  "before any history")
    for message in check_names(expr, known | trackers, FUNCTION_NAMES | set(scenario.tables)):
        extra = ""
        if context == "parameter" and expr.names & attributes:
            extra = (" (patient attributes can be used in transitions, payoffs, starting shares "
                     "and engagement; parameters, unit costs and attribute shares are the same "
                     "for every patient)")
        elif context != "cycle" and any(n in CYCLE_NAMES for n in expr.names - params):
            extra = (
                " (parameters, starting shares, unit costs and engagement are fixed over time; "
                "use cycle, age or time_in_state in transitions and payoffs)"
            )
        add(path, message + extra)
    if context not in ("cycle", "one_off"):
        for table in sorted(expr.functions & set(scenario.tables)):
            add(path, f"table '{table}' can be used in transitions and payoffs, not here "
                      "(parameters, starting shares, unit costs and engagement are fixed over "
                      "time); write the value it gives instead")
    if "age" in expr.names and scenario.settings.start_age is None:
        add(path, "uses 'age' but settings.start_age is not given")


def _parameter_graph(scenario: Scenario) -> dict[str, set[str]]:
    """Each parameter -> the parameters its value (or a strategy's value of it) uses."""
    params = scenario.parameters
    graph = {name: set(p.value.names) & set(params) for name, p in params.items()}
    for strat in scenario.strategies.values():
        overrides = [strat.parameters] + [step.parameters for step in strat.steps]
        for name, e in (item for o in overrides for item in o.items()):
            if name in graph:
                graph[name] |= set(e.names) & set(params)
    return graph


def _check_parameter_order(scenario: Scenario, add: Any) -> None:
    try:
        parameter_order(scenario)
    except graphlib.CycleError as exc:
        cycle = exc.args[1]
        add(("parameters", cycle[0]), "circular definition: " + " -> ".join(cycle))


def parameter_order(scenario: Scenario) -> list[str]:
    """Parameter names in an order where each comes after those it uses.

    Raises
    ------
    graphlib.CycleError
        When the definitions are circular.
    """
    return list(graphlib.TopologicalSorter(_parameter_graph(scenario)).static_order())
