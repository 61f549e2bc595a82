"""The Markov cohort engine: a trace vectorised over a leading batch axis.

The kernel knows nothing of scenario files: it takes a starting distribution, a function giving
the transition matrices of cycle k, a function giving the per-state values of cycle k, and the
quadrature terms of the within-cycle correction. The batch axis holds draws (and engagement
strata); every cycle is one batched matrix product. This module propagates the trace; the
payoffs are accumulated row by row by :class:`vbhc_model.engines.accumulate.Accumulator`, whose
buffer the trace rows are written into. The full trace is kept only when asked.

Inputs are *batch-last* (``[state, batch]``, ``[from, to, batch]``, ``[state, channel, batch]``):
with the batch axis contiguous, the per-cycle product is a run of long vector operations, about
four times faster than the batch-first layout (measured in docs/benchmarks.md). Outputs are
batch-first, ``[batch, ...]``, as the labelling code wants them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from vbhc_model.engines.accumulate import Accumulator
from vbhc_model.engines.base import EngineInputs, EngineResult, Outputs, TransitionValues
from vbhc_model.engines.corrections import Terms

__all__ = ["CohortEngine", "CohortResult", "TransitionValues", "run_cohort"]

#: The cohort sums only the cells a model can fill when they are at most this share of the
#: matrix (measured: at 0.34, 2.6x faster than the dense product; at 0.69 about equal).
SPARSE_FRACTION = 0.75

#: The cohort engine's result is the engines' common result (the name is kept for callers).
CohortResult = EngineResult


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
    pattern: np.ndarray | None = None,
    keep_rows: tuple[int, ...] = (),
    period_of: np.ndarray | None = None,
) -> EngineResult:
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
    pattern : ndarray of bool, shape (from, to), optional
        The cells that can be non-zero in any cycle. When at most :data:`SPARSE_FRACTION` of
        them can, each cycle's product sums only those (bit-identical to the dense product:
        the same products added in the same order, the skipped ones being exact zeros).
    keep_rows : tuple of int
        Trace rows to keep (``EngineResult.rows``) without keeping the whole trace.
    period_of : ndarray of int, optional
        Each cycle's period: also total the payoffs by period (``EngineResult.by_period``).

    Returns
    -------
    EngineResult

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
    acc = Accumulator(n_states, batch, values_at, terms, discount, n_cycles=n_cycles,
                      transition_values=transition_values,
                      transition_discount=transition_discount, keep_cycles=keep_cycles,
                      period_of=period_of)
    trace = np.empty((n_cycles + 1, n_states, batch)) if keep_trace else None
    tv = transition_values
    product = _product(pattern, n_states, batch)
    acc.slot()[...] = start
    acc.add_row(0)
    rows = {0: start.copy()} if 0 in keep_rows else {}
    if keep_trace:
        trace[0] = acc.latest
    for j in range(1, n_cycles + 1):
        p = transition_at(j)
        if tv is not None and tv.carries(j):
            row = acc.latest
            acc.add_flow(j, row[tv.from_index] * p[tv.from_index, tv.to_index])  # [pair, b]
        out = acc.slot()  # taken first: a full buffer is folded, and `latest` moves
        product(acc.latest, p, out)
        acc.add_row(j)
        if keep_trace:
            trace[j] = acc.latest
        if j in keep_rows:
            rows[j] = acc.latest.copy()
    result = acc.finish(trace.transpose(2, 0, 1) if keep_trace else None)
    return dataclasses.replace(result, rows=rows) if keep_rows else result


def _product(pattern: np.ndarray | None, n_states: int, batch: int
             ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], None]:
    """``out[t, b] = sum_s row[s, b] * p[s, t, b]``: dense, or over the pattern's cells only
    when it leaves at most SPARSE_FRACTION of them (a Python loop of long vector operations:
    the 22 cells of a two-arm stepped strategy's 64 take about 0.4 of the dense time)."""
    if pattern is None or pattern.sum() > SPARSE_FRACTION * n_states * n_states:
        return lambda row, p, out: np.einsum("sb,stb->tb", row, p, out=out)
    sources = [np.flatnonzero(pattern[:, t]).tolist() for t in range(n_states)]
    scratch = np.empty(batch)

    def product(row: np.ndarray, p: np.ndarray, out: np.ndarray) -> None:
        for t, into in enumerate(sources):
            if not into:
                out[t] = 0.0
                continue
            np.multiply(row[into[0]], p[into[0], t], out=out[t])
            for s in into[1:]:
                np.multiply(row[s], p[s, t], out=scratch)
                out[t] += scratch

    return product


class CohortEngine:
    """The Markov cohort engine behind the :class:`vbhc_model.engines.base.Engine` protocol.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.base import EngineInputs, Outputs
    >>> from vbhc_model.engines.corrections import quadrature_terms, discount_factors
    >>> P = np.array([[0.9, 0.1], [0.0, 1.0]])[:, :, None]
    >>> V = np.array([[1.0], [0.0]])[:, :, None]
    >>> terms = quadrature_terms(2, 1.0)
    >>> inputs = EngineInputs(np.array([[1.0], [0.0]]), lambda k: P, lambda k: V, terms,
    ...                       discount_factors(terms.time, np.array([0.0])), n_cycles=2)
    >>> CohortEngine().run(inputs, Outputs(trace=True)).trace.shape
    (1, 3, 2)
    """

    name = "cohort"
    individual = False

    def run(self, inputs: EngineInputs, outputs: Outputs) -> EngineResult:
        """Run :func:`run_cohort` on ``inputs``, keeping the detail ``outputs`` asks for.

        Raises
        ------
        ValueError
            ``inputs.next_row`` is given: trackers need individual patients.
        """
        if inputs.next_row is not None:
            raise ValueError("the cohort engine cannot run trackers (EngineInputs.next_row): "
                             "a cohort has no patients to carry their history")
        return run_cohort(
            inputs.start, inputs.transition_at(), inputs.values, inputs.terms, inputs.discount,
            n_cycles=inputs.n_cycles, transition_values=inputs.transition_values,
            transition_discount=inputs.transition_discount, keep_trace=outputs.trace,
            keep_cycles=outputs.per_cycle, pattern=inputs.pattern, keep_rows=outputs.rows,
            period_of=inputs.period_of if outputs.periods else None,
        )
