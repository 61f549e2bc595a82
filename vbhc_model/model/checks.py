"""Numeric checks of built model inputs: probabilities, rows, shares and payoffs.

Each failure names the strategy, state, cycle and draw, and by how much it is off, at the key
path (and line) of the scenario entry that produced it.
"""

from __future__ import annotations

import numpy as np

from vbhc_model.errors import ScenarioError

#: Rows and shares must sum to one within this absolute tolerance.
SUM_TOLERANCE = 1e-8
#: Probabilities may stray outside [0, 1] by rounding error up to this much.
RANGE_TOLERANCE = 1e-12
#: The largest payoff per person and cycle (a cost, count, hour or utility, in absolute
#: value): a trillion. Far beyond any real value, and low enough that totals over any number
#: of cycles, strategies and WTP values stay finite (a cost of 1e308 overflows to inf).
MAX_PAYOFF = 1e12


def _where(strategy: str, state: str | None, cycle: int | None, draw: int, sub: int,
           tunnel: int | tuple[str, ...]) -> str:
    """Where a value is; ``tunnel`` is the state's number of sub-states, or (with trackers)
    a label of each of its rows."""
    parts = [f"strategy '{strategy}'"]
    if isinstance(tunnel, tuple):
        parts.append(f"state '{state}' ({tunnel[sub]})")
    elif state is not None:
        parts.append(f"state '{state}'" + (f" (time in state {sub + 1})" if tunnel > 1 else ""))
    if cycle is not None:
        parts.append(f"cycle {cycle}")
    parts.append(f"draw {draw}")
    return ", ".join(parts)


def compact(values: np.ndarray) -> np.ndarray:
    """``values`` with its broadcast (stride-0) axes cut to length 1: a value repeated over
    cycles or draws is then computed or checked once."""
    return values[tuple(slice(0, 1) if st == 0 and n > 1 else slice(None)
                        for st, n in zip(values.strides, values.shape))]


def _as3(values) -> np.ndarray:
    """Values as ``[cycle, sub-state, batch]``, broadcast axes cut to length 1."""
    v = np.asarray(values, dtype=float)
    return compact(v.reshape((1,) * (3 - v.ndim) + v.shape))


def _outside(values: np.ndarray, lo: float, hi: float) -> bool:
    """Any value below ``lo``, above ``hi`` or NaN (two reductions, no temporaries)."""
    if values.size == 0:
        return False
    return not (values.min() >= lo and values.max() <= hi)


def _first_bad(mask: np.ndarray, cycles, n_draws: int) -> tuple[int | None, int, int, tuple]:
    """(cycle, sub-state, draw, index) of the first True in a ``[cycle, sub, batch]`` mask:
    the earliest cycle, then the first sub-state, then the first draw."""
    k, i, b = (int(x) for x in np.argwhere(mask)[0])
    cyc = np.atleast_1d(cycles)
    cycle = int(cyc[k] if len(cyc) > 1 and mask.shape[0] > 1 else cyc[0]) if cycles is not None \
        else None
    return cycle, i, b % n_draws, (k, i, b)


def check_probability(values: np.ndarray, *, source, path: tuple, label: str, strategy: str,
                      state: str, cycle, n_draws: int, n_sub: int = 1) -> None:
    """Raise a ScenarioError if any value is NaN or outside [0, 1].

    ``values`` is ``[cycle, sub-state, batch]`` (or broadcastable to it) for the cycles
    ``cycle`` (an int or an array of cycles)."""
    values = _as3(values)
    if _outside(values, -RANGE_TOLERANCE, 1 + RANGE_TOLERANCE):
        bad = ~((values >= -RANGE_TOLERANCE) & (values <= 1 + RANGE_TOLERANCE))
        k, i, d, at = _first_bad(bad, cycle, n_draws)
        v = values[at]
        what = "is not a number" if np.isnan(v) else f"is {v:.6g}, outside [0, 1]"
        where = _where(strategy, state, k, d, i, n_sub)
        raise ScenarioError([source.issue(path, f"probability {label} {what} ({where})", d)])


def check_row_sum(total: np.ndarray, *, has_complement: bool, source, path: tuple,
                  strategy: str, state: str, cycle, n_draws: int, n_sub: int = 1) -> None:
    """Raise if a row's given probabilities exceed 1, or (with no complement) miss 1."""
    total = _as3(total)
    lo = -np.inf if has_complement else 1.0 - SUM_TOLERANCE
    if _outside(total, lo, 1.0 + SUM_TOLERANCE):
        excess = total - 1.0
        bad = ~(excess <= SUM_TOLERANCE) if has_complement else ~(np.abs(excess) <= SUM_TOLERANCE)
        k, i, d, at = _first_bad(bad, cycle, n_draws)
        e = excess[at]
        how = f"over by {e:.6g}" if e > 0 else f"short by {-e:.6g}"
        hint = "" if has_complement else "; use 'complement' for the rest of the row"
        where = _where(strategy, state, k, d, i, n_sub)
        raise ScenarioError(
            [source.issue(path, f"row sums to {total[at]:.10g}, {how}{hint} ({where})", d)]
        )


def check_shares(shares: np.ndarray, *, source, path: tuple, what: str, strategy: str | None,
                 profile: str | None = None) -> None:
    """Shares (``[draw, item]``) must be in [0, 1] and sum to one in every draw.

    ``strategy`` and ``profile`` (patients with these attribute levels) say where, when the
    shares depend on them."""
    where = ", ".join(x for x in (f"strategy '{strategy}'" if strategy else "",
                                  f"patients with {profile}" if profile else "") if x)
    bad = ~((shares >= -RANGE_TOLERANCE) & (shares <= 1 + RANGE_TOLERANCE))
    if bad.any():
        d, i = (int(x) for x in np.argwhere(bad)[0])
        hint = ("; shares are fractions (0.45 for 45%)" if 1 < shares[d, i] <= 100 else "")
        raise ScenarioError(
            [source.issue(path, f"{what} share is {shares[d, i]:.6g}, outside [0, 1] "
                                f"({where + ', ' if where else ''}draw {d}){hint}", d)]
        )
    total = shares.sum(axis=1)
    off = np.abs(total - 1.0) > SUM_TOLERANCE
    if off.any():
        d = int(np.argmax(off))
        raise ScenarioError(
            [source.issue(path, f"{what} shares sum to {total[d]:.10g}, not 1 "
                                f"({where + ', ' if where else ''}draw {d})"
                                + ("; use 'complement' for the rest"
                                   if what == "engagement" or what.startswith("attribute")
                                   else ""), d)]
        )


def check_payoff(values: np.ndarray, *, kind: str, source, path: tuple, strategy: str,
                 state: str | None, cycle, n_draws: int, n_sub: int = 1) -> None:
    """Costs, counts and hours must be finite and >= 0; utilities finite and <= 1.

    ``values`` is ``[cycle, sub-state, batch]`` or broadcastable to it."""
    values = _as3(values)
    if kind == "utility":
        bad = ~((values <= 1.0 + RANGE_TOLERANCE) & (values >= -MAX_PAYOFF))
        rule = "must be a finite number at most 1"
    elif kind == "qalys":
        bad = ~(np.abs(values) <= MAX_PAYOFF)
        rule = "must be a finite number"
    else:
        bad = ~((values >= 0) & (values <= MAX_PAYOFF))
        rule = "must be a finite number >= 0 (model savings as lower costs elsewhere)"
    if bad.any():
        k, i, d, at = _first_bad(bad, cycle, n_draws)
        where = _where(strategy, state, k, d, i, n_sub)
        v = values[at]
        if np.isfinite(v) and abs(v) > MAX_PAYOFF and (kind != "utility" or v < 0):
            rule = f"the limit is {MAX_PAYOFF:g} per person and cycle (a typo or a unit slip?)"
        what = "is not a number" if np.isnan(v) else f"is {v:.6g}; {rule}"
        raise ScenarioError([source.issue(path, f"{kind} {what} ({where})", d)])


def check_parameters(params: dict[str, np.ndarray], scenario, *, strategy: str,
                     extra: dict | None = None) -> None:
    """Raise a ScenarioError if a parameter's value is not finite in some draw, or depends on
    a part of its expression that is not (``rate_to_prob(n / zero)`` is 1 only because
    ``n / zero`` is inf), at the definition that produced it (the shared one, the
    strategy's or a stepped-care step's), with the draw and where the number comes from.

    ``params`` is :func:`vbhc_model.parameters.draws.resolve_parameters`'s result (each
    parameter after those it uses, so the first one found is the origin)."""
    from vbhc_model.parameters.draws import table_functions
    from vbhc_model.scenario.expressions import explain_nonfinite, nonfinite_draws

    own = scenario.strategies[strategy].parameters
    functions = None
    for name, v in params.items():
        if extra and name in extra:
            expr = extra[name]
            path = next((("strategies", s, "steps", i, "parameters", name)
                         for s, st in scenario.strategies.items()
                         for i, step in enumerate(st.steps) if step.parameters is extra),
                        ("strategies", strategy, "parameters", name))
        elif name in own:
            expr, path = own[name], ("strategies", strategy, "parameters", name)
        else:
            expr, path = scenario.parameters[name].value, ("parameters", name, "value")
        bad = ~np.isfinite(v)
        if not bad.any() and not expr.is_constant:
            functions = table_functions(scenario) if functions is None else functions
            hidden = nonfinite_draws(expr, params, functions)
            bad = bad if hidden is None else np.broadcast_to(hidden, v.shape)
        if not bad.any():
            continue
        d = int(np.argmax(bad))
        env = {n: float(x[d] if x.size > 1 else x[0]) for n, x in params.items()}
        functions = table_functions(scenario) if functions is None else functions
        why = explain_nonfinite(expr, env, functions)
        text = expr.text if isinstance(expr.text, str) else str(expr.text)
        detail = ", ".join(x for x in (why, f"strategy '{strategy}'", f"draw {d}") if x)
        raise ScenarioError([scenario.source.issue(
            path, f"{' '.join(text.split())[:80]} is {v[d]:g} ({detail}); a parameter and "
                  "every part of its expression must be finite numbers", d)])


def check_engagement(values: np.ndarray, *, source, path: tuple, kind: str, strategy: str,
                     n_draws: int) -> None:
    """An engagement level's effect or resource use (``[profile, draw]``) must be finite."""
    bad = ~(np.abs(values) <= MAX_PAYOFF)
    if bad.any():
        p, d = (int(x) for x in np.argwhere(bad)[0])
        v = values[p, d]
        what = "is not a number" if np.isnan(v) else f"is {v:.6g}; must be a finite number"
        raise ScenarioError([source.issue(
            path, f"{kind} {what} (strategy '{strategy}', draw {d % n_draws})", d % n_draws)])
