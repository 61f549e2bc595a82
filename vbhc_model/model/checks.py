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
        bad = ~(values <= 1.0 + RANGE_TOLERANCE)
        rule = "must be at most 1"
    elif kind == "qalys":
        bad = ~np.isfinite(values)
        rule = "must be a finite number"
    else:
        bad = ~((values >= 0) & np.isfinite(values))
        rule = "must be a finite number >= 0 (model savings as lower costs elsewhere)"
    if bad.any():
        k, i, d, at = _first_bad(bad, cycle, n_draws)
        where = _where(strategy, state, k, d, i, n_sub)
        what = "is not a number" if np.isnan(values[at]) else f"is {values[at]:.6g}; {rule}"
        raise ScenarioError([source.issue(path, f"{kind} {what} ({where})", d)])
