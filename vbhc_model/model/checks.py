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


def _where(strategy: str, state: str | None, cycle: int | None, draw: int, sub: int, tunnel: int) -> str:
    parts = [f"strategy '{strategy}'"]
    if state is not None:
        parts.append(f"state '{state}'" + (f" (time in state {sub + 1})" if tunnel > 1 else ""))
    if cycle is not None:
        parts.append(f"cycle {cycle}")
    parts.append(f"draw {draw}")
    return ", ".join(parts)


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    """(draw, sub-state) of the first True in a [batch, sub] mask."""
    b, i = np.argwhere(mask)[0]
    return int(b), int(i)


def check_probability(values: np.ndarray, *, source, path: tuple, label: str, strategy: str,
                      state: str, cycle: int, n_draws: int) -> None:
    """Raise a ScenarioError if any value is NaN or outside [0, 1]."""
    bad = ~((values >= -RANGE_TOLERANCE) & (values <= 1 + RANGE_TOLERANCE))
    if bad.any():
        b, i = _first_bad(bad)
        v = values[b, i]
        what = "is not a number" if np.isnan(v) else f"is {v:.6g}, outside [0, 1]"
        where = _where(strategy, state, cycle, b % n_draws, i, values.shape[1])
        raise ScenarioError([source.issue(path, f"probability {label} {what} ({where})")])


def check_row_sum(total: np.ndarray, *, has_complement: bool, source, path: tuple,
                  strategy: str, state: str, cycle: int, n_draws: int) -> None:
    """Raise if a row's given probabilities exceed 1, or (with no complement) miss 1."""
    excess = total - 1.0
    bad = excess > SUM_TOLERANCE if has_complement else np.abs(excess) > SUM_TOLERANCE
    if bad.any():
        b, i = _first_bad(bad)
        e = excess[b, i]
        how = f"over by {e:.6g}" if e > 0 else f"short by {-e:.6g}"
        hint = "" if has_complement else "; use 'complement' for the rest of the row"
        where = _where(strategy, state, cycle, b % n_draws, i, total.shape[1])
        raise ScenarioError(
            [source.issue(path, f"row sums to {total[b, i]:.10g}, {how}{hint} ({where})")]
        )


def check_shares(shares: np.ndarray, *, source, path: tuple, what: str, strategy: str) -> None:
    """Shares (``[draw, item]``) must be in [0, 1] and sum to one in every draw."""
    bad = ~((shares >= -RANGE_TOLERANCE) & (shares <= 1 + RANGE_TOLERANCE))
    if bad.any():
        d, i = _first_bad(bad)
        raise ScenarioError(
            [source.issue(path, f"{what} share is {shares[d, i]:.6g}, outside [0, 1] "
                                f"(strategy '{strategy}', draw {d})")]
        )
    total = shares.sum(axis=1)
    off = np.abs(total - 1.0) > SUM_TOLERANCE
    if off.any():
        d = int(np.argmax(off))
        raise ScenarioError(
            [source.issue(path, f"{what} shares sum to {total[d]:.10g}, not 1 "
                                f"(strategy '{strategy}', draw {d})"
                                + ("; use 'complement' for the rest" if what == "engagement"
                                   else ""))]
        )


def check_payoff(values: np.ndarray, *, kind: str, source, path: tuple, strategy: str,
                 state: str | None, cycle: int, n_draws: int) -> None:
    """Costs, counts and hours must be finite and >= 0; utilities finite and <= 1."""
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
        b, i = _first_bad(bad)
        where = _where(strategy, state, cycle, b % n_draws, i, values.shape[1])
        what = "is not a number" if np.isnan(values[b, i]) else f"is {values[b, i]:.6g}; {rule}"
        raise ScenarioError([source.issue(path, f"{kind} {what} ({where})")])
