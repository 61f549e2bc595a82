"""Accumulation of payoffs over a trace: quadrature weights x discounting x values, row by row.

Every engine uses it the same way: it feeds the rows of its state occupancy in cycle order
(the cohort's trace rows; a microsimulation's per-draw mean over patients), each transition
flow that carries one-off values, and reads the totals at the end. The quadrature terms and
discount factors come from :mod:`vbhc_model.engines.corrections`, which stays a module of
its own: it *defines* the within-cycle corrections and discounting conventions (which trace
row counts for which cycle, with what weight, at what time; each rule cited), is computed
once per run by the caller, and is read by the reference tests as a specification; this
module only *applies* those terms to rows, in the one order that keeps results bit-identical
across chunk sizes. Keeping the rule apart from its application keeps each readable in one
sitting and lets a new correction be added without touching the fold.

Channels that share a discount rate share one occupancy accumulator: with R distinct rates,
the per-cycle work is ``batch x state x (R + 1)`` instead of ``batch x state x channel``; the
values are contracted when they change (a different array object) and at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vbhc_model.engines.base import EngineInputs, EngineResult, TransitionValues
from vbhc_model.engines.corrections import Terms

#: Trace rows buffered before they are folded into the occupancy: 2**21 values, 16 MB.
BUFFER_ELEMENTS = 2**21


class Accumulator:
    """Folds occupancy rows 0..n, in order, into discounted and undiscounted totals.

    Parameters
    ----------
    n_states, batch : int
        Shape of one occupancy row, ``[state, batch]``.
    values_at : callable
        ``values_at(k)`` -> ``[state, channel, batch]`` payoff per cycle in each state for
        cycle k (k = 0..n, as the terms require). Returning the *same array object* for
        successive cycles says the values have not changed, which lets the accumulator sum
        discounted occupancy and apply the values once. Called once here, for the first
        term's cycle, and then as rows arrive; the last two cycles' arrays are kept.
    terms : Terms
        Quadrature terms of the within-cycle correction.
    discount : ndarray, shape (term, channel)
        Discount factor of each term for each channel.
    n_cycles : int
    transition_values : TransitionValues, optional
        One-off payoffs on transitions (see :meth:`add_flow`).
    transition_discount : ndarray, shape (cycle, channel), optional
        Discount factors of cycle k's transitions (row k-1).
    keep_cycles : bool
        Keep the payoffs of each cycle.
    period_of : ndarray of int, shape (cycle 0..n,), optional
        Also total the undiscounted payoffs by period (a year of the model, for a service
        plan): ``period_of[k]`` is cycle k's period, non-decreasing. At each change of period
        the buffered rows are folded and the undiscounted occupancy contracted with the values
        (the discounted ones keep accumulating), so the periods' totals add up to the
        undiscounted totals (to rounding).

    Notes
    -----
    Usage: write row j into :meth:`slot` (or pass it to :meth:`add_row`), then call
    ``add_row(j)``, for j = 0..n; :attr:`latest` is the last row added. Before row j
    (j >= 1), :meth:`add_flow` takes the flows of cycle j's transitions that carry one-off
    values. :meth:`finish` returns the totals.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.corrections import quadrature_terms, discount_factors
    >>> terms = quadrature_terms(2, 1.0)
    >>> V = np.array([[1.0], [0.0]])[:, :, None]  # [state, channel, batch]
    >>> acc = Accumulator(2, 1, lambda k: V, terms,
    ...                   discount_factors(terms.time, np.array([0.0])), n_cycles=2)
    >>> for j, alive in enumerate([1.0, 0.9, 0.81]):
    ...     acc.add_row(j, np.array([[alive], [1.0 - alive]]))
    >>> acc.finish().discounted.round(4).tolist()
    [[1.71]]
    """

    def __init__(
        self,
        n_states: int,
        batch: int,
        values_at: Callable[[int], np.ndarray],
        terms: Terms,
        discount: np.ndarray,
        *,
        n_cycles: int,
        transition_values: TransitionValues | None = None,
        transition_discount: np.ndarray | None = None,
        keep_cycles: bool = False,
        period_of: np.ndarray | None = None,
    ):
        by_row: dict[int, list[int]] = {}
        for i, r in enumerate(terms.row.tolist()):
            by_row.setdefault(r, []).append(i)
        self._by_row = by_row
        self._terms = terms
        self._discount = discount
        self._values_at = values_at
        self._memo: dict[int, np.ndarray] = {}
        self._transition_values = transition_values
        self._transition_discount = transition_discount
        self._keep_cycles = keep_cycles
        self._next = 0
        # Group channels by their discount column; the last group is "undiscounted".
        factors, group_of = np.unique(np.asarray(discount, dtype=float).T, axis=0,
                                      return_inverse=True)
        self._factors = np.vstack([factors, np.ones(len(terms.row))])  # [group, term]
        n_groups = self._factors.shape[0]
        self._groups = [np.flatnonzero(group_of.ravel() == g) for g in range(n_groups - 1)]

        first = self._values(int(terms.cycle[0]))
        n_channels = first.shape[1]
        self._acc = np.zeros((n_channels, batch))
        self._acc_u = np.zeros((n_channels, batch))
        self._per_cycle = np.zeros((n_cycles + 1, n_channels, batch)) if keep_cycles else None
        self._per_cycle_u = np.zeros((n_cycles + 1, n_channels, batch)) if keep_cycles else None
        self._occupancy = np.zeros((n_groups, n_states, batch))  # discounted, weighted
        self._current = first
        self._single = len(self._groups) == 1 and len(self._groups[0]) == n_channels
        # Rows are written into a buffer of R rows with their weight x discount per group
        # (the terms of one row summed first); a full buffer (or a change of values) is
        # folded into the occupancy, one multiply and add per row for all groups at once.
        self._R = max(2, min(n_cycles + 1, BUFFER_ELEMENTS // max(1, n_states * batch)))
        self._rows = np.empty((self._R, n_states, batch))
        self._coefs = np.zeros((n_groups, self._R))
        self._used = 0
        self._scratch = np.empty((n_groups, n_states * batch))
        self._period_of = None if period_of is None else np.asarray(period_of, dtype=int)
        self._period = 0
        self._marks: list[tuple[int, np.ndarray]] = []  # (period, undiscounted totals then)

    def _values(self, k: int) -> np.ndarray:
        # Terms of one trace row use at most cycles j and j + 1: keep the last two.
        memo = self._memo
        if k not in memo:
            if len(memo) >= 2:
                memo.pop(min(memo))
            memo[k] = self._values_at(k)
        return memo[k]

    @property
    def latest(self) -> np.ndarray:
        """The last row added, ``[state, batch]`` (a view into the buffer)."""
        return self._rows[self._used - 1]

    def slot(self) -> np.ndarray:
        """The buffer row to write the next occupancy row into, ``[state, batch]``.

        A full buffer is folded first; :attr:`latest` stays valid (and holds the same row).
        """
        if self._used == self._R:
            self._fold()
        return self._rows[self._used]

    def add_flow(self, j: int, flow: np.ndarray) -> None:
        """Accrue the one-off values of cycle j's transitions.

        Parameters
        ----------
        j : int
            The cycle (1..n) whose transitions flow; call before ``add_row(j)``.
        flow : ndarray, shape (pair, batch)
            Share of the cohort moving along each pair of ``transition_values`` in cycle j.
        """
        if not self._transition_values.carries(j):
            return  # no values on this cycle's flows
        self._enter_period(j)
        one_off = np.einsum("pb,pcb->cb", flow, self._transition_values.values_at(j))
        disc = self._transition_discount[j - 1][:, None]
        self._acc += one_off * disc
        self._acc_u += one_off
        if self._keep_cycles:
            self._per_cycle[j] += one_off * disc
            self._per_cycle_u[j] += one_off

    def add_row(self, j: int, row: np.ndarray | None = None) -> None:
        """Add occupancy row j (rows come in order 0..n).

        Parameters
        ----------
        j : int
        row : ndarray, shape (state, batch), optional
            The row, copied into the buffer; omit it when it was written into :meth:`slot`.
        """
        if j != self._next:
            raise ValueError(f"occupancy rows come in order: got row {j}, expected {self._next}")
        self._next += 1
        if row is not None:
            self.slot()[...] = row
        self._used += 1
        row = self._rows[self._used - 1]
        terms = self._terms
        for i in self._by_row.get(j, ()):
            k = int(terms.cycle[i])
            self._enter_period(k)
            v = self._values(k)
            if self._keep_cycles:
                contrib = terms.weight[i] * np.einsum("sb,scb->cb", row, v)
                self._acc += contrib * self._discount[i][:, None]
                self._acc_u += contrib
                self._per_cycle[k] += contrib * self._discount[i][:, None]
                self._per_cycle_u[k] += contrib
                continue
            if v is not self._current:
                self._fold()
                self._flush()
                self._current = v
            self._coefs[:, self._used - 1] += terms.weight[i] * self._factors[:, i]

    def _enter_period(self, k: int) -> None:
        """Before a term or flow of cycle k: close the running period if k starts another."""
        if self._period_of is None or self._keep_cycles:
            return
        p = int(self._period_of[k])
        if p != self._period:
            self._fold()
            occupancy = self._occupancy[-1]  # undiscounted: contracted now, the rest later
            self._acc_u += np.einsum("sb,scb->cb", occupancy, self._current)
            occupancy[:] = 0.0
            self._marks.append((self._period, self._acc_u.copy()))
            self._period = p

    def _periods(self) -> np.ndarray:
        """The undiscounted totals of each period, ``[batch, period, channel]``."""
        n = int(self._period_of.max()) + 1
        out = np.zeros((self._acc_u.shape[1], n, self._acc_u.shape[0]))
        last = np.zeros_like(self._acc_u)
        for p, acc_u in self._marks + [(self._period, self._acc_u)]:
            out[:, p] += (acc_u - last).T
            last = acc_u
        return out

    def _fold(self) -> None:
        # Row by row, in cycle order, one rounding per multiply and add: each draw's sum is
        # then the same whatever the chunk size (a BLAS product rounds the edge columns of
        # its blocks differently, and a buffer sized by the batch would regroup the sum).
        used, coefs, rows, scratch = self._used, self._coefs, self._rows, self._scratch
        flat = self._occupancy.reshape(self._occupancy.shape[0], -1)
        for r in np.flatnonzero(coefs[:, :used].any(axis=0)):
            np.multiply(coefs[:, r, None], rows[r].reshape(1, -1), out=scratch)
            flat += scratch
        coefs[:] = 0.0
        if used > 1:
            rows[0] = rows[used - 1]  # keep the newest row: the next cycle starts from it
        self._used = 1

    def _flush(self) -> None:
        v, occupancy, acc = self._current, self._occupancy, self._acc
        if self._single:
            acc[:] += np.einsum("sb,scb->cb", occupancy[0], v)
        else:
            for g, channels in enumerate(self._groups):
                acc[channels] += np.einsum("sb,scb->cb", occupancy[g], v[:, channels])
        self._acc_u[:] += np.einsum("sb,scb->cb", occupancy[-1], v)
        occupancy[:] = 0.0

    def finish(self, trace: np.ndarray | None = None) -> EngineResult:
        """Fold what is left and return the totals (batch-first).

        Parameters
        ----------
        trace : ndarray, shape (batch, row, state), optional
            The engine's trace, passed through into the result.

        Returns
        -------
        EngineResult
        """
        if not self._keep_cycles:
            self._fold()
            self._flush()
        keep = self._keep_cycles
        by_period = None
        if self._period_of is not None:
            if keep:  # the cycles' totals summed by period
                n = int(self._period_of.max()) + 1
                by_period = np.stack([self._per_cycle_u[self._period_of == p].sum(axis=0)
                                      for p in range(n)]).transpose(2, 0, 1)
            else:
                by_period = self._periods()
        return EngineResult(
            self._acc.T, self._acc_u.T,
            self._per_cycle.transpose(2, 0, 1) if keep else None,
            self._per_cycle_u.transpose(2, 0, 1) if keep else None,
            trace, by_period=by_period,
        )


def accumulate_paths(paths: np.ndarray, inputs: EngineInputs) -> tuple[np.ndarray, np.ndarray]:
    """Each patient's discounted and undiscounted totals, from its states in each cycle.

    The :class:`Accumulator`'s sums, patient by patient: the same quadrature terms (each term
    values trace row ``row`` with cycle ``cycle``'s payoffs and ``weight``), discount factors
    and payoff values, and the one-off values of the transitions each patient makes,
    discounted as the flows are. The mean over patients is therefore the engine's total, to
    rounding (the engine sums occupancy, this sums patients). As in the accumulator, each
    patient's weighted, discounted time in each state is summed while the values stay the
    same array, and multiplied by them once.

    Parameters
    ----------
    paths : ndarray of int, shape (batch, row 0..n, patient)
        Each patient's state after each cycle (``EngineResult.paths``).
    inputs : EngineInputs
        The inputs the paths were simulated from; ``values`` (and the transition values) are
        asked for again, in cycle order, so they must not be one-pass.

    Returns
    -------
    discounted, undiscounted : ndarray, shape (batch, patient, channel)

    Examples
    --------
    >>> from vbhc_model.engines.base import EngineInputs
    >>> from vbhc_model.engines.corrections import quadrature_terms, discount_factors
    >>> terms = quadrature_terms(2, 1.0)
    >>> V = np.array([[1.0], [0.0]])[:, :, None]  # [state, channel, batch]
    >>> inputs = EngineInputs(np.array([[1.0], [0.0]]), None, lambda k: V, terms,
    ...                       discount_factors(terms.time, np.array([0.0])), n_cycles=2)
    >>> paths = np.array([[[0, 0], [0, 1], [0, 1]]])  # two patients: one stays, one leaves
    >>> accumulate_paths(paths, inputs)[1][0].tolist()
    [[2.0], [0.0]]
    """
    paths = np.asarray(paths)
    batch, _, n = paths.shape
    n_states = np.shape(inputs.start)[0]
    terms = inputs.terms
    # Channels grouped by their discount column, as in the Accumulator; the last group is
    # "undiscounted". coefs[g, term] = weight x discount factor.
    factors, group_of = np.unique(np.asarray(inputs.discount, dtype=float).T, axis=0,
                                  return_inverse=True)
    group_of = group_of.ravel()
    coefs = np.vstack([factors, np.ones(len(terms.row))]) * terms.weight
    time_in = np.zeros((len(coefs), batch * n * n_states))  # [group, (batch, patient, state)]
    cell = ((np.arange(batch)[:, None] * n + np.arange(n)) * n_states)  # [batch, patient]
    out: list[np.ndarray] = []  # discounted, undiscounted [batch, patient, channel]
    current = None

    def apply_values() -> None:
        if current is None:
            return
        v = np.asarray(current).transpose(2, 0, 1)  # [batch, state, channel]
        if not out:
            out.extend(np.zeros((2, batch, n, v.shape[2])))
        t = time_in.reshape(len(coefs), batch, n, n_states)
        for g in range(len(coefs) - 1):
            channels = np.flatnonzero(group_of == g)
            out[0][:, :, channels] += t[g] @ v[:, :, channels]
        out[1] += t[-1] @ v
        time_in[:] = 0.0

    for k in np.unique(terms.cycle):  # each cycle's values asked for once, in cycle order
        v = inputs.values(int(k))
        if v is not current:
            apply_values()
            current = v
        for i in np.flatnonzero(terms.cycle == k):
            at = (cell + paths[:, terms.row[i]]).ravel()  # one state per patient: no repeats
            time_in[:, at] += coefs[:, i, None]
    apply_values()
    disc, und = out
    tv = inputs.transition_values
    if tv is not None:
        codes = np.asarray(tv.from_index) * n_states + np.asarray(tv.to_index)
        for j in range(1, inputs.n_cycles + 1):
            if not tv.carries(j):
                continue
            values = np.asarray(tv.values_at(j))  # [pair, channel, batch]
            moved = paths[:, j - 1].astype(np.int64) * n_states + paths[:, j]
            for pair, code in enumerate(codes):
                b, p = np.nonzero(moved == code)
                if len(b):
                    one_off = values[pair][:, b].T  # [moved patient, channel]
                    und[b, p] += one_off
                    disc[b, p] += one_off * inputs.transition_discount[j - 1]
    return disc, und
