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
by the model layer, so they need nothing here. With N -> infinity the results tend to the
cohort's.

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

Speed: the uniforms of a chunk and the per-cycle step (inverse CDF, state counts and flows in
one pass) are numba kernels, :mod:`vbhc_model.engines.microsim_kernel`, imported by
:meth:`MicrosimEngine.run` (never at import, so a cohort run does not import numba) and
compiled once per machine into numba's cache. They compute exactly what the numpy code beside
them computes (``MicrosimEngine(compiled=False)``: numpy's Philox generator and a vectorised
binary search), so results are bit-identical either way; only the speed differs
(docs/benchmarks.md).

Memory: the current state of every patient, ``N x batch`` small integers (the pipeline already
bounds the batch by chunking draws), plus temporaries of ``chunk x batch`` per cycle. The loop
runs cycles outside and patient chunks inside, because an engine may read each cycle's
transition matrix only once (it can be one buffer refilled each cycle).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vbhc_model.engines.accumulate import Accumulator
from vbhc_model.engines.base import EngineInputs, EngineResult, Outputs, PatientStreams

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


def _step_numpy(cum, u, column_of, iters, states, pair_of, counts, flows) -> None:
    """The numpy version of :func:`vbhc_model.engines.microsim_kernel.step` (same arguments,
    same results): all patients of the chunk at once, the binary search of :func:`_choose`."""
    batch, _, n_to = cum.shape
    col = np.arange(batch, dtype=np.int64)
    prev = states.astype(np.int64)
    s = _choose(cum.transpose(1, 2, 0).reshape(-1), prev * (n_to * batch) + col,
                u[column_of].T, n_to)
    if len(pair_of):
        pair = pair_of[prev * n_to + s]
        hit = pair >= 0
        flows += np.bincount((pair * batch + col)[hit],
                             minlength=flows.size).reshape(flows.shape)
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
        """``(fill, step)``: the uniforms of a chunk and the per-cycle step, numba's kernels
        (imported here, so that only a microsimulation ever imports numba; see
        tests/test_startup.py) or numpy's."""
        if not self.compiled:
            return _fill_uniforms, _step_numpy
        from vbhc_model.engines.microsim_kernel import step, uniforms

        def fill(out: np.ndarray, seed: int, draw: int, cycle: int, first: int) -> None:
            u64 = np.uint64
            uniforms(u64(seed & _MASK), u64(seed >> 64), u64(first // 4), u64(cycle),
                     u64(draw), u64(_DOMAIN >> 192), first % 4, out)

        return fill, step

    def run(self, inputs: EngineInputs, outputs: Outputs) -> EngineResult:
        """Simulate ``inputs.patients`` through ``inputs.n_cycles`` cycles and accumulate."""
        streams = inputs.patients
        if streams is None:
            raise ValueError("the microsimulation needs EngineInputs.patients (PatientStreams)")
        start = np.asarray(inputs.start, dtype=float)
        n_states, batch = start.shape
        if streams.draw_index.shape != (batch,):
            raise ValueError(f"PatientStreams.draw_index has shape {streams.draw_index.shape}; "
                             f"the batch is {batch}")
        n, n_cycles = streams.n_patients, inputs.n_cycles
        # one row of uniforms per distinct (draw, first patient); columns share rows
        keys, column_of = np.unique(np.column_stack([streams.draw_index, streams.first_patient]),
                                    axis=0, return_inverse=True)
        column_of = column_of.reshape(-1)
        transition_at = inputs.transition_at()
        tv = inputs.transition_values
        acc = Accumulator(n_states, batch, inputs.values, inputs.terms, inputs.discount,
                          n_cycles=n_cycles, transition_values=tv,
                          transition_discount=inputs.transition_discount,
                          keep_cycles=outputs.per_cycle)
        trace = np.empty((n_cycles + 1, n_states, batch)) if outputs.trace else None
        dtype = np.int16 if n_states < 2**15 else np.int32
        states = np.empty((n, batch), dtype=dtype)
        paths = np.empty((n_cycles + 1, n, batch), dtype=dtype) if outputs.paths else None
        chunks = [(p, min(n, p + self.chunk)) for p in range(0, n, self.chunk)]

        def philox(cycle: int, p0: int, p1: int) -> np.ndarray:  # [key, patient]
            u = np.empty((len(keys), p1 - p0))
            for i, (d, first) in enumerate(keys):
                fill(u[i], streams.seed, int(d), cycle, int(first) + p0)
            return u

        uniforms = (philox if streams.uniforms is None
                    else _supplied(streams.uniforms, keys, n_cycles))

        if tv is not None:
            codes = np.asarray(tv.from_index) * n_states + np.asarray(tv.to_index)
            pairs, pair_index = np.unique(codes, return_inverse=True)
            pair_of = np.full(n_states * n_states, -1, dtype=np.int64)
            pair_of[pairs] = np.arange(len(pairs))
        else:
            pairs, pair_of = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        fill, step = self._kernels()
        iters = max(0, int(np.ceil(np.log2(n_states))))

        # Row 0: each patient's start state, by the inverse CDF of the start distribution
        # (one row of cumulative sums per column, read from state 0).
        cum0 = np.ascontiguousarray(np.cumsum(start, axis=0).T[:, None, :])  # [batch, 1, to]
        counts = np.zeros((n_states, batch), dtype=np.int64)
        no_flows = np.zeros((0, batch), dtype=np.int64)
        for p0, p1 in chunks:
            states[p0:p1] = 0
            step(cum0, uniforms(0, p0, p1), column_of, iters, states[p0:p1],
                 np.empty(0, dtype=np.int64), counts, no_flows)
        acc.slot()[...] = counts / n
        acc.add_row(0)
        if trace is not None:
            trace[0] = acc.latest
        if paths is not None:
            paths[0] = states

        for j in range(1, n_cycles + 1):
            # [batch, from, to]: each column's rows contiguous for the kernel
            cum = np.ascontiguousarray(np.cumsum(transition_at(j), axis=1).transpose(2, 0, 1))
            counts = np.zeros((n_states, batch), dtype=np.int64)
            flows = np.zeros((len(pairs), batch), dtype=np.int64)
            for p0, p1 in chunks:
                step(cum, uniforms(j, p0, p1), column_of, iters, states[p0:p1], pair_of,
                     counts, flows)
            if tv is not None:
                acc.add_flow(j, flows[pair_index] / n)
            out = acc.slot()
            out[...] = counts / n
            acc.add_row(j)
            if trace is not None:
                trace[j] = acc.latest
            if paths is not None:
                paths[j] = states
        result = acc.finish(trace.transpose(2, 0, 1) if trace is not None else None)
        if paths is not None:
            result = dataclasses.replace(result, paths=paths.transpose(2, 0, 1))
        return result
