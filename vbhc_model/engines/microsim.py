"""The microsimulation engine: individual patients moved through the same transition matrices.

For each batch column (a parameter draw, or an engagement stratum of one), ``n_patients``
patients are simulated. Patient i's starting state is drawn from ``start[:, b]`` with one
uniform, and each cycle k its next state is drawn from row ``P_k[s_i, :, b]`` by the inverse
CDF on one uniform (the row is read as cumulative sums and scaled by its total, so a state of
probability zero is never entered, whatever the rounding of the row). The engine then hands
the occupancy rows (patients in each state / N) to the cohort's
:class:`~vbhc_model.engines.accumulate.Accumulator`, so payoffs, the within-cycle correction
and discounting are exactly the cohort's machinery; one-off transition values accrue on the
observed flows (patients moving from -> to / N). Tunnel states arrive expanded into sub-states
by the model layer, so they need nothing here. With trackers (``EngineInputs.next_row``) a
patient's state is a row (state, combination of tracker values): it draws its next state from
that row as above and then looks up its next row, so the rows grow with the combinations,
never with their square. With N -> infinity the results tend to the cohort's.

Random numbers
--------------
Every uniform is a pure function of (seed, global draw index, patient index, cycle): it is the
``patient``-th double of numpy's Philox-4x64 with ``key = seed`` and counter
``patient // 4 + (cycle << 64) + (draw << 128) + (1 << 192)``; one counter step yields four
doubles, so a chunk starting at a patient that is not a multiple of four generates from the
step before and drops the head. The top counter word (1) keeps these streams apart from the
parameter sampling's (:func:`vbhc_model.parameters.sampling.uniforms`, same key, counters
from 0). Consequences:

- *common random numbers*: the strategy is not in the key, so a patient meets the same
  uniforms under every strategy (and in every engagement stratum of its draw), and increments
  carry little Monte Carlo error;
- results are bit-identical whatever the chunk of patients or the chunk of draws: occupancy
  and flows are integer counts, summed exactly, divided by N once per cycle.

A run may instead *replay* supplied uniforms (:attr:`PatientStreams.uniforms`, read by the
pipeline from ``settings.uniforms``): patient i's uniform of cycle k is then ``table[i, k]``
(or ``table[d, i, k]`` for draw d), used by the same inverse-CDF step in place of the Philox
double, so a table of this engine's own streams (:func:`patient_uniforms`) reproduces its run
bit for bit.

Design: what the sample *is* travels with the inputs, how it is computed belongs to the engine.
:class:`PatientStreams` (seed, the global draw index of each batch column, the number of
patients) is an optional field of :class:`~vbhc_model.engines.base.EngineInputs`, filled by
the pipeline from ``settings.seed``, the draws' coordinates and ``settings.patients``; the
cohort ignores it. The patient chunk size changes memory, never results, so it is an argument
of :class:`MicrosimEngine`.

Speed: the uniforms of a chunk (every draw's, in one call) and the per-cycle step (inverse
CDF, state counts and flows) are numba kernels, :mod:`vbhc_model.engines.microsim_kernel`,
imported by :meth:`MicrosimEngine.run_strategies` (never at import, so a cohort run does not
import numba) and compiled once per machine into numba's cache. They compute exactly what the
numpy code beside them computes (``MicrosimEngine(compiled=False)``: numpy's Philox generator
and a vectorised binary search), so results are bit-identical either way; only the speed
differs (docs/benchmarks.md). :meth:`MicrosimEngine.run_strategies` runs several strategies
on the same patients at once and makes each cycle's uniforms once for all of them (common
random numbers: they are the same under every strategy); the pipeline uses it whenever the
strategies would otherwise run one after the other.

Memory: the current state of every patient, ``N x batch`` small integers per strategy (the
pipeline bounds the batch of a PSA by cutting its chunks of draws to the patients,
:func:`vbhc_model.pipeline.chunk.draws_per_chunk`), plus a chunk's uniforms, ``distinct draws
x chunk`` doubles, per cycle. The loop runs cycles outside and patient chunks inside, because
an engine may read each cycle's transition matrix only once (it can be one buffer refilled
each cycle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from vbhc_model.engines.accumulate import Accumulator
from vbhc_model.engines.base import (
    EngineInputs,
    EngineResult,
    Outputs,
    PatientStreams,
    TransitionValues,
)

__all__ = ["DEFAULT_CHUNK", "MicrosimEngine", "PatientStreams", "patient_uniforms"]

#: Patients simulated at once (per batch column) when the engine is not told otherwise.
DEFAULT_CHUNK = 16_384

#: The top Philox counter word of the microsimulation's streams (parameter sampling uses 0).
_DOMAIN = 1 << 192
_MASK = (1 << 64) - 1


def patient_uniforms(seed: int, draw: int, cycle: int, first: int, n: int) -> np.ndarray:
    """Uniforms in [0, 1) of patients ``first .. first + n - 1`` of one draw in one cycle.

    Cycle 0 is the draw of the starting state; cycle k >= 1 the transition of cycle k.

    Examples
    --------
    >>> whole = patient_uniforms(7, 3, 1, 0, 10)
    >>> parts = np.concatenate([patient_uniforms(7, 3, 1, 0, 5), patient_uniforms(7, 3, 1, 5, 5)])
    >>> bool((whole == parts).all())
    True
    >>> bool((patient_uniforms(7, 4, 1, 0, 10) == whole).any())
    False
    """
    head = first % 4
    counter = (first // 4) + (int(cycle) << 64) + (int(draw) << 128) + _DOMAIN
    gen = np.random.Generator(np.random.Philox(key=int(seed), counter=counter))
    return gen.random(n + head)[head:]


def _fill_uniforms(out: np.ndarray, seed: int, draw: int, cycle: int, first: int) -> None:
    """``out[:] = patient_uniforms(seed, draw, cycle, first, len(out))`` without a copy when
    ``first`` is a multiple of four."""
    head = first % 4
    counter = (first // 4) + (int(cycle) << 64) + (int(draw) << 128) + _DOMAIN
    gen = np.random.Generator(np.random.Philox(key=int(seed), counter=counter))
    if head:
        out[:] = gen.random(len(out) + head)[head:]
    else:
        gen.random(out=out)


def _choose(cum: np.ndarray, rows: np.ndarray, u: np.ndarray, n_to: int) -> np.ndarray:
    """Inverse CDF: for each patient, the first state j with ``cum[row, j] > u * total``.

    ``cum`` is ``[from, to, batch]`` flattened; ``rows`` (``[n, batch]``) the flat offset of
    each patient's row (``(from * n_to) * batch + column``). A binary search over the row:
    ceil(log2(n_to)) gathers per cycle.
    """
    batch = u.shape[1]
    target = u * np.take(cum, rows + (n_to - 1) * batch)
    lo = np.zeros(u.shape, dtype=np.int64)
    hi = np.full(u.shape, n_to - 1, dtype=np.int64)
    for _ in range(max(0, int(np.ceil(np.log2(n_to))))):
        mid = (lo + hi) >> 1
        below = np.take(cum, rows + mid * batch) <= target
        lo = np.where(below, mid + 1, lo)
        hi = np.where(below, hi, mid)
    return lo


def _step_numpy(cum, u, column_of, iters, states, pair_of, counts, flows,
                next_row=None) -> None:
    """The numpy version of :func:`vbhc_model.engines.microsim_kernel.step` (same arguments,
    same results): all patients of the chunk at once, the binary search of :func:`_choose`;
    with ``next_row`` that of :func:`~vbhc_model.engines.microsim_kernel.step_next`."""
    batch, _, n_to = cum.shape
    col = np.arange(batch, dtype=np.int64)
    states = states.T  # [patient, batch]
    prev = states.astype(np.int64)
    s = _choose(cum.transpose(1, 2, 0).reshape(-1), prev * (n_to * batch) + col,
                u[column_of].T, n_to)
    if len(pair_of):
        pair = pair_of[prev * n_to + s]
        hit = pair >= 0
        flows += np.bincount((pair * batch + col)[hit],
                             minlength=flows.size).reshape(flows.shape)
    if next_row is not None:  # trackers: the row of the state drawn and the next combination
        s = next_row[prev * n_to + s]
    states[...] = s
    counts += np.bincount((s * batch + col).ravel(), minlength=counts.size).reshape(counts.shape)


def _supplied(table: np.ndarray, keys: np.ndarray, n_cycles: int):
    """``uniforms(cycle, p0, p1) -> [key, patient]`` read from a supplied table
    (:attr:`PatientStreams.uniforms`) instead of the Philox streams: ``[patient, cycle]`` for
    every draw, or ``[table, patient, cycle]`` with draw d reading table d; a key (draw,
    first patient) reads the patients ``first + p0 .. first + p1 - 1``."""
    if table.shape[-1] != n_cycles + 1:
        raise ValueError(f"supplied uniforms have {table.shape[-1]} cycles; {n_cycles} cycles "
                         f"need {n_cycles + 1} (cycle 0 draws the starting state)")
    draws, firsts = keys[:, 0], keys[:, 1]
    if table.ndim == 3 and int(draws.max()) >= table.shape[0]:
        raise ValueError(f"supplied uniforms hold {table.shape[0]} tables; draw "
                         f"{int(draws.max())} has none")

    def uniforms(cycle: int, p0: int, p1: int) -> np.ndarray:
        if table.ndim == 2:
            return np.stack([table[f + p0:f + p1, cycle] for f in firsts])
        return np.stack([table[d, f + p0:f + p1, cycle] for d, f in zip(draws, firsts)])

    return uniforms


class MicrosimEngine:
    """The microsimulation engine behind the :class:`vbhc_model.engines.base.Engine` protocol.

    Parameters
    ----------
    chunk : int
        Patients simulated at once per batch column; results do not depend on it.
    compiled : bool
        Step the patients with the compiled kernel (numba, imported and, on a machine's first
        run, compiled when the engine first runs) rather than with numpy; the results are
        bit-identical, only the speed differs.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.base import EngineInputs, Outputs
    >>> from vbhc_model.engines.corrections import quadrature_terms, discount_factors
    >>> P = np.array([[0.9, 0.1], [0.0, 1.0]])[:, :, None]
    >>> V = np.array([[1.0], [0.0]])[:, :, None]
    >>> terms = quadrature_terms(2, 1.0)
    >>> inputs = EngineInputs(np.array([[1.0], [0.0]]), lambda k: P, lambda k: V, terms,
    ...                       discount_factors(terms.time, np.array([0.0])), n_cycles=2,
    ...                       patients=PatientStreams(1, np.array([0]), 1000))
    >>> res = MicrosimEngine().run(inputs, Outputs(trace=True))
    >>> res.trace.shape, bool(abs(res.discounted[0, 0] - 1.71) < 0.05)
    ((1, 3, 2), True)
    >>> same = MicrosimEngine(chunk=300, compiled=False).run(inputs, Outputs(trace=True))
    >>> bool((same.trace == res.trace).all() and (same.discounted == res.discounted).all())
    True
    """

    name = "microsim"
    #: It needs :class:`~vbhc_model.engines.base.PatientStreams` in its inputs.
    individual = True

    def __init__(self, chunk: int = DEFAULT_CHUNK, compiled: bool = True):
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        self.chunk = int(chunk)
        self.compiled = bool(compiled)

    def _kernels(self):
        """``(fill, step, step_next)``: the uniforms of a chunk (``fill(out, seed, draws,
        cycle, firsts)``: ``out[i]`` the patients ``firsts[i] ..`` of draw ``draws[i]``), the
        per-cycle step and the step with trackers (``next_row`` last), numba's kernels
        (imported here, so that only a microsimulation ever imports numba; see
        tests/test_startup.py) or numpy's."""
        if not self.compiled:
            def fill_numpy(out: np.ndarray, seed: int, draws: np.ndarray, cycle: int,
                           firsts: np.ndarray) -> None:
                for row, d, first in zip(out, draws, firsts):
                    _fill_uniforms(row, seed, int(d), cycle, int(first))

            return fill_numpy, _step_numpy, _step_numpy
        from vbhc_model.engines.microsim_kernel import draw_uniforms, step, step_next

        def fill(out: np.ndarray, seed: int, draws: np.ndarray, cycle: int,
                 firsts: np.ndarray) -> None:
            u64 = np.uint64
            draw_uniforms(u64(seed & _MASK), u64(seed >> 64), firsts, u64(cycle),
                          draws.astype(u64), u64(_DOMAIN >> 192), out)

        def tracked(cum, u, column_of, iters, states, pair_of, counts, flows, next_row):
            step_next(cum, u, column_of, iters, states, pair_of, next_row, counts, flows)

        return fill, step, tracked

    def run(self, inputs: EngineInputs, outputs: Outputs) -> EngineResult:
        """Simulate ``inputs.patients`` through ``inputs.n_cycles`` cycles and accumulate."""
        return self.run_strategies([inputs], outputs)[0]

    def run_strategies(self, strategies: Sequence[EngineInputs],
                       outputs: Outputs) -> list[EngineResult]:
        """Run several strategies on the same patients, each cycle's uniforms made once.

        With common random numbers a patient meets the same uniforms under every strategy;
        run one by one (:meth:`run`), each strategy would make them again, which is about a
        third of the work. Here each chunk's uniforms of a cycle are made once and every
        strategy steps its patients on them. The results are, bit for bit, those of
        :meth:`run` on each strategy.

        Parameters
        ----------
        strategies : sequence of EngineInputs
            The strategies' inputs; their patients (:class:`PatientStreams`) must have the
            same seed and number of patients, and the runs the same number of cycles (the
            draws and the batch may differ).
        outputs : Outputs

        Returns
        -------
        list of EngineResult
            One per strategy, in order.
        """
        if not strategies:
            return []
        n = strategies[0].patients.n_patients if strategies[0].patients is not None else 1
        bounds = _block_bounds(n, outputs.mcse) if outputs.mcse else np.array([0, n])
        # chunks of at most self.chunk patients, cut at the block bounds too (the counts are
        # integers summed exactly, so results do not depend on the cuts)
        cuts = np.union1d(np.arange(0, n, self.chunk), bounds)
        chunks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
        block_of = np.searchsorted(bounds, [a for a, _ in chunks], side="right") - 1
        runs = [_Strategy(inputs, outputs, chunks, bounds if outputs.mcse else None)
                for inputs in strategies]
        first = runs[0].streams
        seed, n, n_cycles, table = first.seed, runs[0].n, runs[0].n_cycles, first.uniforms
        if any((r.streams.seed, r.n, r.n_cycles) != (seed, n, n_cycles)
               or r.streams.uniforms is not table for r in runs):
            raise ValueError("strategies run together need the same seed, number of patients, "
                             "number of cycles and supplied uniforms")
        # One row of uniforms per distinct (draw, first patient) of all strategies' columns;
        # columns (engagement strata, strategies) share rows.
        keys, rows = np.unique(np.concatenate([
            np.column_stack([r.streams.draw_index, r.streams.first_patient]) for r in runs]),
            axis=0, return_inverse=True)
        for r, column_of in zip(runs, np.split(rows.reshape(-1),
                                               np.cumsum([r.batch for r in runs])[:-1])):
            r.column_of = column_of
        fill, step, step_next = self._kernels()
        if table is not None:
            supplied = _supplied(table, keys, n_cycles)
        # Row 0 draws each patient's start state; row j >= 1 the transition of cycle j.
        for j in range(n_cycles + 1):
            for r in runs:
                r.begin(j)
            for c, (p0, p1) in enumerate(chunks):
                if table is None:
                    u = np.empty((len(keys), p1 - p0))  # [key, patient]
                    fill(u, seed, keys[:, 0], j, keys[:, 1] + p0)
                else:
                    u = supplied(j, p0, p1)
                k = block_of[c]
                for r in runs:
                    if r.next is None:
                        step(r.cum, u, r.column_of, r.iters, r.states[c], r.pair_of,
                             r.counts[k], r.flows[k])
                    else:
                        step_next(r.cum, u, r.column_of, r.iters, r.states[c], r.pair_of,
                                  r.counts[k], r.flows[k], r.next)
            for r in runs:
                r.end(j)
        return [r.finish() for r in runs]


def _block_bounds(n: int, blocks: int) -> np.ndarray:
    """Bounds of the MCSE blocks of ``n`` patients: ``min(blocks, n)`` contiguous blocks as
    equal as can be (the same for every strategy and column)."""
    k = min(blocks, n)
    return np.round(np.arange(k + 1) * n / k).astype(np.int64)


def _tiled(values_at, k: int):
    """``values_at`` repeated ``k`` times along the batch (block-major), keeping the "same
    array object means unchanged" signal of :class:`Accumulator`."""
    last: list = [None, None]

    def at(j: int) -> np.ndarray:
        v = values_at(j)
        if v is not last[0]:
            last[0], last[1] = v, np.tile(v, (1,) * (v.ndim - 1) + (k,))
        return last[1]

    return at


class _Strategy:
    """One strategy of a run: its patients' states, its cycle's cumulative rows, its counts
    and flows, and its accumulator."""

    def __init__(self, inputs: EngineInputs, outputs: Outputs, chunks: list[tuple[int, int]],
                 bounds: np.ndarray | None):
        streams = inputs.patients
        if streams is None:
            raise ValueError("the microsimulation needs EngineInputs.patients (PatientStreams)")
        self.start = np.asarray(inputs.start, dtype=float)
        n_states, batch = self.start.shape
        if streams.draw_index.shape != (batch,):
            raise ValueError(f"PatientStreams.draw_index has shape {streams.draw_index.shape}; "
                             f"the batch is {batch}")
        self.streams, self.n, self.n_cycles = streams, streams.n_patients, inputs.n_cycles
        self.n_states, self.batch = n_states, batch
        self.transition_at = inputs.transition_at()
        tv = self.tv = inputs.transition_values
        self.acc = Accumulator(n_states, batch, inputs.values, inputs.terms, inputs.discount,
                               n_cycles=self.n_cycles, transition_values=tv,
                               transition_discount=inputs.transition_discount,
                               keep_cycles=outputs.per_cycle,
                               period_of=inputs.period_of if outputs.periods else None)
        self.trace = np.empty((self.n_cycles + 1, n_states, batch)) if outputs.trace else None
        dtype = np.int16 if n_states < 2**15 else np.int32
        # Trackers: the states are rows (state, combination); a move draws one of n_to
        # states and looks the next row up.
        self.next_row = (None if inputs.next_row is None
                         else np.ascontiguousarray(inputs.next_row, dtype=np.int64))
        self.n_to = n_states if self.next_row is None else self.next_row.shape[1]
        self.next_flat = None if self.next_row is None else self.next_row.reshape(-1)
        self.next = None
        # Each chunk's patients' states, [batch, patient] (a column's contiguous for the kernel)
        self.chunks = chunks
        self.states = [np.empty((batch, p1 - p0), dtype=dtype) for p0, p1 in self.chunks]
        self.paths = (np.empty((self.n_cycles + 1, self.n, batch), dtype=dtype)
                      if outputs.paths else None)
        if tv is not None:
            codes = np.asarray(tv.from_index) * n_states + np.asarray(tv.to_index)
            pairs, self.pair_index = np.unique(codes, return_inverse=True)
            if self.next_row is None:
                self.flow_pairs = np.full(n_states * n_states, -1, dtype=np.int64)
                self.flow_pairs[pairs] = np.arange(len(pairs))
            else:  # by (row, state drawn): its (row, next row) among the pairs
                moves = (np.arange(n_states)[:, None] * n_states + self.next_row).reshape(-1)
                at = np.minimum(np.searchsorted(pairs, moves), len(pairs) - 1)
                self.flow_pairs = np.where(pairs[at] == moves, at, -1).astype(np.int64)
        else:
            pairs, self.flow_pairs = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        self.n_pairs = len(pairs)
        self.iters_start = max(0, int(np.ceil(np.log2(n_states))))
        self.iters_move = max(0, int(np.ceil(np.log2(self.n_to))))
        self.iters = self.iters_start
        self.column_of = np.zeros(batch, dtype=np.int64)
        # Counts and flows are kept per block of patients (one block without Outputs.mcse);
        # the blocks' totals are accumulated side by side, block-major on a wider batch.
        self.n_blocks = 1 if bounds is None else len(bounds) - 1
        self.block_acc = None
        if bounds is not None:
            k = self.n_blocks
            self.block_sizes = np.diff(bounds)
            self.block_acc = Accumulator(
                n_states, k * batch, _tiled(inputs.values, k), inputs.terms, inputs.discount,
                n_cycles=self.n_cycles,
                transition_values=None if tv is None else TransitionValues(
                    tv.from_index, tv.to_index, _tiled(tv.values_at, k), tv.cycles),
                transition_discount=inputs.transition_discount)

    def begin(self, j: int) -> None:
        """Set up row j: the cumulative rows to draw from, counts and flows at zero."""
        self.counts = np.zeros((self.n_blocks, self.n_states, self.batch), dtype=np.int64)
        if j == 0:
            # each patient's start state, by the inverse CDF of the start distribution (one
            # row of cumulative sums per column, read from state 0)
            for states in self.states:
                states[...] = 0
            self.cum = np.ascontiguousarray(np.cumsum(self.start, axis=0).T[:, None, :])
            self.pair_of = np.empty(0, dtype=np.int64)
            self.flows = np.zeros((self.n_blocks, 0, self.batch), dtype=np.int64)
            self.iters, self.next = self.iters_start, None
        else:
            # [batch, from, to]: each column's rows contiguous for the kernel
            self.cum = np.ascontiguousarray(
                np.cumsum(self.transition_at(j), axis=1).transpose(2, 0, 1))
            self.pair_of = self.flow_pairs
            self.flows = np.zeros((self.n_blocks, self.n_pairs, self.batch), dtype=np.int64)
            self.iters, self.next = self.iters_move, self.next_flat

    def end(self, j: int) -> None:
        """Hand row j (and cycle j's flows) to the accumulator."""
        acc = self.acc
        flows, counts = self.flows.sum(axis=0), self.counts.sum(axis=0)  # integers: exact
        if j > 0 and self.tv is not None and self.tv.carries(j):
            acc.add_flow(j, flows[self.pair_index] / self.n)
        acc.slot()[...] = counts / self.n
        acc.add_row(j)
        if self.block_acc is not None:
            size = self.block_sizes[:, None, None]
            if j > 0 and self.tv is not None and self.tv.carries(j):
                per = self.flows[:, self.pair_index] / size  # [block, pair, batch]
                self.block_acc.add_flow(j, per.transpose(1, 0, 2).reshape(len(per[0]), -1))
            row = (self.counts / size).transpose(1, 0, 2).reshape(self.n_states, -1)
            self.block_acc.add_row(j, row)
        if self.trace is not None:
            self.trace[j] = acc.latest
        if self.paths is not None:
            for (p0, p1), states in zip(self.chunks, self.states):
                self.paths[j, p0:p1] = states.T

    def finish(self) -> EngineResult:
        result = self.acc.finish(self.trace.transpose(2, 0, 1) if self.trace is not None
                                 else None)
        if self.paths is not None:
            result = dataclasses.replace(result, paths=self.paths.transpose(2, 0, 1))
        if self.block_acc is not None:
            b = self.block_acc.finish()
            k, batch = self.n_blocks, self.batch
            result = dataclasses.replace(result, blocks=(
                b.discounted.reshape(k, batch, -1), b.undiscounted.reshape(k, batch, -1),
                self.block_sizes))
        return result
