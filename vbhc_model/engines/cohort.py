"""The Markov cohort engine: a trace vectorised over a leading batch axis.

The kernel knows nothing of scenario files: it takes a starting distribution, a function giving
the transition matrices of cycle k, a function giving the per-state values of cycle k, and the
quadrature terms of the within-cycle correction. The batch axis holds draws (and engagement
strata); every cycle is one batched matrix product. Outcomes are accumulated cycle by cycle; the
full trace is kept only when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vbhc_model.engines.corrections import Terms


@dataclass(frozen=True)
class TransitionValues:
    """One-off values on transitions: ``values_at(k)[b, pair, channel]`` for the pairs
    ``(from_index[pair], to_index[pair])``, accrued on the flow of cycle k."""

    from_index: np.ndarray
    to_index: np.ndarray
    values_at: Callable[[int], np.ndarray]


@dataclass(frozen=True)
class CohortResult:
    """Accumulated outcomes, each ``[batch, channel]``, plus optional detail."""

    discounted: np.ndarray
    undiscounted: np.ndarray
    by_cycle: np.ndarray | None = None  # [batch, cycle 0..n, channel], discounted
    by_cycle_undiscounted: np.ndarray | None = None
    trace: np.ndarray | None = None  # [batch, row 0..n, state]


def run_cohort(
    start: np.ndarray,
    transition_at: Callable[[int], np.ndarray],
    values_at: Callable[[int], np.ndarray],
    terms: Terms,
    discount: np.ndarray,
    *,
    n_cycles: int,
    transition_values: TransitionValues | None = None,
    transition_discount: np.ndarray | None = None,
    keep_trace: bool = False,
    keep_cycles: bool = False,
) -> CohortResult:
    """Run a Markov cohort over ``n_cycles`` cycles and accumulate its payoffs.

    Parameters
    ----------
    start : ndarray, shape (batch, state)
        Starting distribution (row 0 of the trace).
    transition_at : callable
        ``transition_at(k)`` -> ``[batch, from, to]`` matrix of cycle k (k = 1..n), rows
        summing to one.
    values_at : callable
        ``values_at(k)`` -> ``[batch, state, channel]`` payoff per cycle in each state for
        cycle k (k = 0..n, as the terms require). Returning the *same array object* for
        successive cycles tells the engine the values have not changed, which lets it
        accumulate discounted state occupancy and apply the values once.
    terms : Terms
        Quadrature terms of the within-cycle correction.
    discount : ndarray, shape (term, channel)
        Discount factor of each term for each channel.
    n_cycles : int
    transition_values : TransitionValues, optional
        One-off payoffs on transitions.
    transition_discount : ndarray, shape (cycle, channel), optional
        Discount factors of cycle k's transitions (row k-1).
    keep_trace, keep_cycles : bool
        Keep the full trace / the per-cycle payoffs.

    Returns
    -------
    CohortResult

    Notes
    -----
    Channels that share a discount rate share one occupancy accumulator: with R distinct
    rates, the per-cycle work is ``batch x state x (R + 1)`` instead of
    ``batch x state x channel``; the values are contracted when they change and at the end.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.corrections import quadrature_terms, discount_factors
    >>> P = np.array([[[0.9, 0.1], [0.0, 1.0]]])
    >>> V = np.array([[[1.0], [0.0]]])
    >>> terms = quadrature_terms(2, 1.0)
    >>> res = run_cohort(np.array([[1.0, 0.0]]), lambda k: P, lambda k: V, terms,
    ...                  discount_factors(terms.time, np.array([0.0])), n_cycles=2)
    >>> res.discounted.round(4).tolist()
    [[1.71]]
    """
    batch, n_states = start.shape
    by_row: dict[int, list[int]] = {}
    for i, r in enumerate(terms.row.tolist()):
        by_row.setdefault(r, []).append(i)
    # Group channels by their discount column; the last group is "undiscounted".
    factors, group_of = np.unique(np.asarray(discount, dtype=float).T, axis=0,
                                  return_inverse=True)
    factors = np.vstack([factors, np.ones(len(terms.row))])  # [group, term]
    n_groups = factors.shape[0]
    groups = [np.flatnonzero(group_of.ravel() == g) for g in range(n_groups - 1)]

    memo: dict[int, np.ndarray] = {}

    def values(k: int) -> np.ndarray:
        # Terms of one trace row use at most cycles j and j + 1: keep the last two.
        if k not in memo:
            if len(memo) >= 2:
                memo.pop(min(memo))
            memo[k] = values_at(k)
        return memo[k]

    row = np.array(start, dtype=float)
    first = values(int(terms.cycle[0]))
    n_channels = first.shape[-1]
    acc = np.zeros((batch, n_channels))
    acc_u = np.zeros((batch, n_channels))
    per_cycle = np.zeros((batch, n_cycles + 1, n_channels)) if keep_cycles else None
    per_cycle_u = np.zeros((batch, n_cycles + 1, n_channels)) if keep_cycles else None
    trace = np.empty((batch, n_cycles + 1, n_states)) if keep_trace else None
    occupancy = np.zeros((n_groups, batch, n_states))  # discounted, weighted occupancy
    current: list = [first]

    def flush() -> None:
        v = current[0]
        for g, channels in enumerate(groups):
            acc[:, channels] += np.einsum("bs,bsc->bc", occupancy[g], v[:, :, channels])
        acc_u[:] += np.einsum("bs,bsc->bc", occupancy[-1], v)
        occupancy[:] = 0.0

    for j in range(n_cycles + 1):
        if j > 0:
            p = transition_at(j)
            if transition_values is not None:
                tv = transition_values
                flow = row[:, tv.from_index] * p[:, tv.from_index, tv.to_index]
                one_off = np.einsum("bp,bpc->bc", flow, tv.values_at(j))
                acc += one_off * transition_discount[j - 1]
                acc_u += one_off
                if keep_cycles:
                    per_cycle[:, j] += one_off * transition_discount[j - 1]
                    per_cycle_u[:, j] += one_off
            row = np.einsum("bs,bst->bt", row, p)
        if keep_trace:
            trace[:, j] = row
        for i in by_row.get(j, ()):
            k = int(terms.cycle[i])
            v = values(k)
            if keep_cycles:
                contrib = terms.weight[i] * np.einsum("bs,bsc->bc", row, v)
                acc += contrib * discount[i]
                acc_u += contrib
                per_cycle[:, k] += contrib * discount[i]
                per_cycle_u[:, k] += contrib
                continue
            if v is not current[0]:
                flush()
                current[0] = v
            occupancy += (terms.weight[i] * factors[:, i])[:, None, None] * row
    if not keep_cycles:
        flush()
    return CohortResult(acc, acc_u, per_cycle, per_cycle_u, trace)
