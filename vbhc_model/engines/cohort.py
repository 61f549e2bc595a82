"""The Markov cohort engine: a trace vectorised over a leading batch axis.

The kernel knows nothing of scenario files: it takes a starting distribution, a function giving
the transition matrices of cycle k, a function giving the per-state values of cycle k, and the
quadrature terms of the within-cycle correction. The batch axis holds draws (and engagement
strata); every cycle is one batched matrix product. Outcomes are accumulated cycle by cycle; the
full trace is kept only when asked.

Inputs are *batch-last* (``[state, batch]``, ``[from, to, batch]``, ``[state, channel, batch]``):
with the batch axis contiguous, the per-cycle product is a run of long vector operations, about
four times faster than the batch-first layout (measured in docs/benchmarks.md). Outputs are
batch-first, ``[batch, ...]``, as the labelling code wants them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vbhc_model.engines.corrections import Terms

#: Trace rows buffered before they are folded into the occupancy: 2**21 values, 16 MB.
BUFFER_ELEMENTS = 2**21


@dataclass(frozen=True)
class TransitionValues:
    """One-off values on transitions: ``values_at(k)[pair, channel, b]`` for the pairs
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
    start : ndarray, shape (state, batch)
        Starting distribution (row 0 of the trace).
    transition_at : callable
        ``transition_at(k)`` -> ``[from, to, batch]`` matrices of cycle k (k = 1..n), rows
        summing to one. The engine reads the array before asking for the next cycle, so it
        may be one buffer refilled each cycle.
    values_at : callable
        ``values_at(k)`` -> ``[state, channel, batch]`` payoff per cycle in each state for
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
    >>> P = np.array([[0.9, 0.1], [0.0, 1.0]])[:, :, None]  # [from, to, batch]
    >>> V = np.array([[1.0], [0.0]])[:, :, None]  # [state, channel, batch]
    >>> terms = quadrature_terms(2, 1.0)
    >>> res = run_cohort(np.array([[1.0], [0.0]]), lambda k: P, lambda k: V, terms,
    ...                  discount_factors(terms.time, np.array([0.0])), n_cycles=2)
    >>> res.discounted.round(4).tolist()
    [[1.71]]
    """
    n_states, batch = start.shape
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

    first = values(int(terms.cycle[0]))
    n_channels = first.shape[1]
    acc = np.zeros((n_channels, batch))
    acc_u = np.zeros((n_channels, batch))
    per_cycle = np.zeros((n_cycles + 1, n_channels, batch)) if keep_cycles else None
    per_cycle_u = np.zeros((n_cycles + 1, n_channels, batch)) if keep_cycles else None
    trace = np.empty((n_cycles + 1, n_states, batch)) if keep_trace else None
    occupancy = np.zeros((n_groups, n_states, batch))  # discounted, weighted occupancy
    current: list = [first]
    single = len(groups) == 1 and len(groups[0]) == n_channels  # one discount rate
    # Trace rows are written into a buffer of R rows with their weight x discount per group
    # (the terms of one row summed first); a full buffer (or a change of values) is folded
    # into the occupancy, one multiply and add per row for all groups at once.
    R = max(2, min(n_cycles + 1, BUFFER_ELEMENTS // max(1, n_states * batch)))
    rows = np.empty((R, n_states, batch))
    coefs = np.zeros((n_groups, R))
    rows[0] = start
    used = 1
    scratch = np.empty((n_groups, n_states * batch))

    def fold() -> None:
        nonlocal used
        # Row by row, in cycle order, one rounding per multiply and add: each draw's sum is
        # then the same whatever the chunk size (a BLAS product rounds the edge columns of
        # its blocks differently, and a buffer sized by the batch would regroup the sum).
        flat = occupancy.reshape(n_groups, -1)
        for r in np.flatnonzero(coefs[:, :used].any(axis=0)):
            np.multiply(coefs[:, r, None], rows[r].reshape(1, -1), out=scratch)
            flat += scratch
        coefs[:] = 0.0
        if used > 1:
            rows[0] = rows[used - 1]  # keep the newest row: the next cycle starts from it
        used = 1

    def flush() -> None:
        v = current[0]
        if single:
            acc[:] += np.einsum("sb,scb->cb", occupancy[0], v)
        else:
            for g, channels in enumerate(groups):
                acc[channels] += np.einsum("sb,scb->cb", occupancy[g], v[:, channels])
        acc_u[:] += np.einsum("sb,scb->cb", occupancy[-1], v)
        occupancy[:] = 0.0

    for j in range(n_cycles + 1):
        if j > 0:
            p = transition_at(j)
            row = rows[used - 1]
            if transition_values is not None:
                tv = transition_values
                flow = row[tv.from_index] * p[tv.from_index, tv.to_index]  # [pair, batch]
                one_off = np.einsum("pb,pcb->cb", flow, tv.values_at(j))
                acc += one_off * transition_discount[j - 1][:, None]
                acc_u += one_off
                if keep_cycles:
                    per_cycle[j] += one_off * transition_discount[j - 1][:, None]
                    per_cycle_u[j] += one_off
            if used == R:
                fold()
            np.einsum("sb,stb->tb", rows[used - 1], p, out=rows[used])
            used += 1
        row = rows[used - 1]
        if keep_trace:
            trace[j] = row
        for i in by_row.get(j, ()):
            k = int(terms.cycle[i])
            v = values(k)
            if keep_cycles:
                contrib = terms.weight[i] * np.einsum("sb,scb->cb", row, v)
                acc += contrib * discount[i][:, None]
                acc_u += contrib
                per_cycle[k] += contrib * discount[i][:, None]
                per_cycle_u[k] += contrib
                continue
            if v is not current[0]:
                fold()
                flush()
                current[0] = v
                row = rows[used - 1]
            coefs[:, used - 1] += terms.weight[i] * factors[:, i]
    if not keep_cycles:
        fold()
        flush()
    return CohortResult(
        acc.T, acc_u.T,
        per_cycle.transpose(2, 0, 1) if keep_cycles else None,
        per_cycle_u.transpose(2, 0, 1) if keep_cycles else None,
        trace.transpose(2, 0, 1) if keep_trace else None,
    )
