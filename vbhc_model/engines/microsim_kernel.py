"""The microsimulation's compiled kernels (numba); imported only by engines/microsim.py.

This is the one module of the package that imports numba (and llvmlite, for one 128-bit
multiply), and :mod:`vbhc_model.engines.microsim` imports it lazily, inside a run, so a
cohort run (and ``import vbhc_model``) never pays numba's import or a compile. The kernels are
compiled with ``cache=True``: the first microsimulation on a machine compiles them (about
1 s) and writes the machine code to numba's cache; later processes load it from there.
Where the cache goes is numba's rule: ``NUMBA_CACHE_DIR`` if set, else ``__pycache__`` next to
this file, else (an installed package whose folder is not writable) a per-user folder
(``~/.cache/numba`` on Linux). Costs in docs/benchmarks.md.

Four kernels, each bit-identical to the numpy code it replaces:

- :func:`uniforms` is numpy's Philox-4x64 (10 rounds, Random123's constants), computed in
  place: the same key, the same counter incremented before each block of four 64-bit words,
  and the same conversion to a double (``(word >> 11) * 2**-53``) as
  ``numpy.random.Generator(numpy.random.Philox(key, counter)).random(n)``, so the streams
  are the ones :func:`vbhc_model.engines.microsim.patient_uniforms` defines. Computed here it
  costs about 2.5 ns per double against numpy's 3.7, and no generator is built per chunk
  (about 11 us each, which a two-level PSA of many small chunks would feel).
- :func:`draw_uniforms` fills a chunk's uniforms of every draw in one call.
- :func:`step` moves patients one cycle by the inverse CDF: the target ``u * cum[s, n - 1]``
  and the comparisons ``cum[s, j] <= target`` are the same IEEE operations as the numpy
  path's (no fastmath), and with more than :data:`FEW_STATES` states the binary search takes
  the same ``iters`` steps; with fewer it counts the comparisons that hold, which on a
  non-decreasing row is the same state (see :func:`step`).
- :func:`step_next` is :func:`step` with trackers: a patient's row is (state, combination
  of tracker values) and its next row is looked up from the state it draws.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_SHIFT = np.uint64(11)
_TO_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53


@intrinsic
def _mulhilo(typingctx, a, b):
    """The high and the low 64 bits of the 128-bit product of two uint64 (one multiply)."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        hi = builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))
        lo = builder.trunc(prod, ir.IntType(64))
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@numba.njit(inline="always")
def _put(out, pos, n, x):  # pragma: no cover (compiled)
    if 0 <= pos < n:
        out[pos] = (x >> _SHIFT) * _TO_DOUBLE


@numba.njit(cache=True, nogil=True, boundscheck=False)
def uniforms(key0, key1, c0, c1, c2, c3, head, out):  # pragma: no cover (compiled)
    """``out[:] = Generator(Philox(key=[key0, key1], counter=[c0, c1, c2, c3])).random(
    head + len(out))[head:]`` (the first six arguments uint64, ``head`` < 4).

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.microsim import patient_uniforms
    >>> out, u64 = np.empty(10), np.uint64
    >>> uniforms(u64(7), u64(0), u64(1), u64(3), u64(2), u64(1), 1, out)  # patients 5..14
    >>> bool((out == patient_uniforms(7, 2, 3, 5, 10)).all())
    True
    """
    n = out.shape[0]
    pos = -np.int64(head)
    while pos < n:
        # numpy increments the 256-bit counter, with carry, before each block of four words
        c0 += _ONE
        if c0 == _ZERO:
            c1 += _ONE
            if c1 == _ZERO:
                c2 += _ONE
                if c2 == _ZERO:
                    c3 += _ONE
        x0, x1, x2, x3 = c0, c1, c2, c3
        k0, k1 = key0, key1
        for r in range(10):
            if r > 0:
                k0 += _W0
                k1 += _W1
            hi0, lo0 = _mulhilo(_M0, x0)
            hi1, lo1 = _mulhilo(_M1, x2)
            x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
        if pos >= 0 and pos + 4 <= n:
            out[pos] = (x0 >> _SHIFT) * _TO_DOUBLE
            out[pos + 1] = (x1 >> _SHIFT) * _TO_DOUBLE
            out[pos + 2] = (x2 >> _SHIFT) * _TO_DOUBLE
            out[pos + 3] = (x3 >> _SHIFT) * _TO_DOUBLE
        else:  # the first block of a chunk that drops a head, or the last, cut short
            _put(out, pos, n, x0)
            _put(out, pos + 1, n, x1)
            _put(out, pos + 2, n, x2)
            _put(out, pos + 3, n, x3)
        pos += 4


@numba.njit(cache=True, nogil=True, boundscheck=False)
def draw_uniforms(key0, key1, firsts, cycle, draws, domain, out):  # pragma: no cover
    """``out[i] = patient_uniforms(seed, draws[i], cycle, firsts[i], out.shape[1])`` for every
    row i: a chunk's uniforms of all its draws in one call (``key0``, ``key1``, ``cycle``,
    ``domain`` uint64: the seed's words and the counter's top word; ``firsts`` int64 >= 0,
    each row's first patient; ``draws`` uint64).

    A two-level PSA has many draws of few patients; one call per draw from Python cost about
    4 us each, more than the 2.5 us of 1,000 uniforms.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.engines.microsim import patient_uniforms
    >>> out, u64 = np.empty((2, 10)), np.uint64
    >>> draw_uniforms(u64(7), u64(0), np.array([5, 0]), u64(3),
    ...               np.array([2, 9], dtype=u64), u64(1), out)
    >>> bool((out[0] == patient_uniforms(7, 2, 3, 5, 10)).all())
    True
    >>> bool((out[1] == patient_uniforms(7, 9, 3, 0, 10)).all())
    True
    """
    for i in range(draws.shape[0]):
        first = firsts[i]
        uniforms(key0, key1, np.uint64(first // 4), cycle, draws[i], domain, first % 4, out[i])


#: Up to this many states a patient's next state is found by comparing its target with every
#: cumulative value of its row, in a loop whose length is a compile-time constant (one
#: specialised copy per number of states, so it unrolls), and a column's new states are
#: counted by one pass per state; all branch-free, about twice as fast on 4 states as a binary
#: search and a histogram, which more states use.
FEW_STATES = 8


@numba.njit(inline="always")
def _draw(flat, base, u, n_to, iters):  # pragma: no cover (compiled)
    """The state drawn by uniform ``u`` from the cumulative row at ``flat[base:base + n_to]``:
    with ``n_to <= FEW_STATES`` given as a constant, by counting comparisons, else by a binary
    search of ``iters`` steps."""
    last = n_to - 1
    target = u * flat[base + last]
    lo = 0
    if n_to <= FEW_STATES:
        for j in range(last):
            lo += flat[base + j] <= target
    else:
        hi = last
        for _ in range(iters):
            mid = (lo + hi) >> 1
            below = flat[base + mid] <= target
            lo = mid + 1 if below else lo
            hi = hi if below else mid
    return lo


@numba.njit(inline="always")
def _move(flat, ub, sb, off, n_to, iters, pair_of, flows, b):  # pragma: no cover (compiled)
    """Move the patients of column b (states ``sb``, uniforms ``ub``) one cycle
    (:func:`_draw`); count the flows."""
    with_flows = pair_of.shape[0] > 0
    for i in range(sb.shape[0]):
        s = np.int64(sb[i])
        lo = _draw(flat, (off + s) * n_to, ub[i], n_to, iters)
        sb[i] = lo
        if with_flows:
            pair = pair_of[s * n_to + lo]
            if pair >= 0:
                flows[pair, b] += 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def step(cum, u, column_of, iters, states, pair_of, counts, flows):  # pragma: no cover
    """Move every patient of a chunk one cycle, counting states and observed flows.

    Parameters
    ----------
    cum : float64 [batch, from, to]
        Cumulative sums of each transition row (for the start: one row, ``from`` = 1).
    u : float64 [draw, patient]
        The chunk's uniforms of each distinct draw; column b reads row ``column_of[b]``.
    column_of : int64 [batch]
    iters : int
        Steps of the binary search, ``ceil(log2(to))``.
    states : int16 or int32 [batch, patient], C-contiguous
        Each patient's state, read as the row and overwritten with the new state (for the
        start: zeros).
    pair_of : int64 [from * to]
        Index of each (from, to) pair among the flows counted, -1 if not counted; empty to
        count none.
    counts : int64 [to, batch]
        Patients in each new state, added to.
    flows : int64 [pair, batch]
        Patients on each counted pair, added to.

    Notes
    -----
    The new state is the first j with ``cum[s, j] > u * cum[s, to - 1]`` (j < to - 1; else
    ``to - 1``). A row of cumulative sums of probabilities in [0, 1] (what the model layer
    checks, NaN excluded) never decreases, so that j is also the number of j < to - 1 with
    ``cum[s, j] <= target``: with few states the kernel counts them, with more it searches;
    both give the binary search of the numpy path, bit for bit.
    """
    batch = states.shape[0]
    n_from, n_to = cum.shape[1], cum.shape[2]
    flat = cum.ravel()
    # Four sets of counters, patient i adding to set i % 4: consecutive patients in the same
    # state do not wait on one memory cell (the histogram, with many states).
    sets = np.zeros((4, n_to), dtype=np.int64)
    for b in range(batch):  # a column at a time: its uniforms, rows and states contiguous
        ub, sb, off = u[column_of[b]], states[b], b * n_from
        # n_to as a constant in each branch: the comparison loop of _move unrolls
        if n_to == 2:
            _move(flat, ub, sb, off, 2, iters, pair_of, flows, b)
        elif n_to == 3:
            _move(flat, ub, sb, off, 3, iters, pair_of, flows, b)
        elif n_to == 4:
            _move(flat, ub, sb, off, 4, iters, pair_of, flows, b)
        elif n_to == 5:
            _move(flat, ub, sb, off, 5, iters, pair_of, flows, b)
        elif n_to == 6:
            _move(flat, ub, sb, off, 6, iters, pair_of, flows, b)
        elif n_to == 7:
            _move(flat, ub, sb, off, 7, iters, pair_of, flows, b)
        elif n_to == 8:
            _move(flat, ub, sb, off, 8, iters, pair_of, flows, b)
        else:
            _move(flat, ub, sb, off, n_to, iters, pair_of, flows, b)
        if n_to <= FEW_STATES:
            for j in range(n_to):
                c = 0
                for i in range(sb.shape[0]):
                    c += sb[i] == j
                counts[j, b] += c
        else:
            sets[:] = 0
            for i in range(sb.shape[0]):
                sets[i & 3, sb[i]] += 1
            for j in range(n_to):
                counts[j, b] += sets[0, j] + sets[1, j] + sets[2, j] + sets[3, j]


@numba.njit(inline="always")
def _move_next(flat, ub, sb, off, n_to, iters, pair_of, next_row, flows, b):  # pragma: no cover
    """:func:`_move` with trackers: a patient's state is its row (state, combination of
    tracker values); the next state j is drawn from the row as in :func:`_move`, and the
    patient's new row is ``next_row[row * n_to + j]``."""
    with_flows = pair_of.shape[0] > 0
    for i in range(sb.shape[0]):
        s = np.int64(sb[i])
        at = s * n_to + _draw(flat, (off + s) * n_to, ub[i], n_to, iters)
        sb[i] = next_row[at]
        if with_flows:
            pair = pair_of[at]
            if pair >= 0:
                flows[pair, b] += 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def step_next(cum, u, column_of, iters, states, pair_of, next_row, counts, flows):  # pragma: no cover
    """:func:`step` with trackers: ``states`` hold rows (state, combination), ``cum`` is
    ``[batch, row, to]``, ``next_row`` (int64, ``[row * to + j]``) the row after a move to
    state j, ``pair_of`` indexed by ``row * to + j``, and ``counts`` ``[row, batch]``. The
    state drawn is the one :func:`step` draws from the same row (the same comparisons), so a
    tracker changes which row a patient reads, never how it is read."""
    batch = states.shape[0]
    n_from, n_to = cum.shape[1], cum.shape[2]
    flat = cum.ravel()
    for b in range(batch):
        ub, sb, off = u[column_of[b]], states[b], b * n_from
        if n_to == 2:
            _move_next(flat, ub, sb, off, 2, iters, pair_of, next_row, flows, b)
        elif n_to == 3:
            _move_next(flat, ub, sb, off, 3, iters, pair_of, next_row, flows, b)
        elif n_to == 4:
            _move_next(flat, ub, sb, off, 4, iters, pair_of, next_row, flows, b)
        elif n_to == 5:
            _move_next(flat, ub, sb, off, 5, iters, pair_of, next_row, flows, b)
        elif n_to == 6:
            _move_next(flat, ub, sb, off, 6, iters, pair_of, next_row, flows, b)
        elif n_to == 7:
            _move_next(flat, ub, sb, off, 7, iters, pair_of, next_row, flows, b)
        elif n_to == 8:
            _move_next(flat, ub, sb, off, 8, iters, pair_of, next_row, flows, b)
        else:
            _move_next(flat, ub, sb, off, n_to, iters, pair_of, next_row, flows, b)
        # straight into the counts: with many rows (combinations), clearing per-column
        # counters would cost more than the patients
        for i in range(sb.shape[0]):
            counts[sb[i], b] += 1
