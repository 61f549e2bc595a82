"""The vectorised cohort engine against a plain Python loop, on random models (hypothesis).

The loop is written from the definitions (docs/methods.md), not from the engine's quadrature
terms: it walks the trace one person-state at a time and applies each within-cycle correction
and discount convention as the literature states it.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vbhc_model.engines import accumulate
from vbhc_model.engines.cohort import TransitionValues, run_cohort
from vbhc_model.engines.corrections import (
    discount_factors,
    quadrature_terms,
    transition_times,
)


def loop_reference(start, P, V, TV, pairs, n, L, method, count_start, timing, rates):
    """Plain-Python cohort: P[k] (k=1..n) as nested lists, V[k][s][c], TV[k][pair][c]."""
    n_states, n_channels = len(start), len(rates)
    rows = [list(start)]
    for k in range(1, n + 1):
        prev = rows[-1]
        rows.append([sum(prev[i] * P[k][i][j] for i in range(n_states)) for j in range(n_states)])

    def d(c, t):
        return (1 + rates[c]) ** -t

    def f(row, k, c):  # row . values of cycle k, channel c
        return sum(row[s] * V[k][s][c] for s in range(n_states))

    offset = {"start": 1.0, "middle": 0.5, "end": 0.0}
    total = [0.0] * n_channels
    for c in range(n_channels):
        if method in ("trapezoidal", "simpson"):
            g = [f(rows[j], j, c) * d(c, j * L) for j in range(n + 1)]
            if method == "trapezoidal":
                total[c] = sum((g[k - 1] + g[k]) / 2 for k in range(1, n + 1))
            else:
                total[c] = sum((g[k] + 4 * g[k + 1] + g[k + 2]) / 3 for k in range(0, n, 2))
        else:
            tm = timing or ("start" if (count_start or method == "half_cycle") else "end")
            for k in range(1, n + 1):
                t = (k - offset[tm]) * L
                if method == "none":
                    occ = rows[k - 1] if count_start else rows[k]
                else:
                    occ = [(a + b) / 2 for a, b in zip(rows[k - 1], rows[k])]
                total[c] += f(occ, k, c) * d(c, t)
        # one-off values on transitions: the flow of cycle k
        tm = timing or ("start" if count_start or method == "half_cycle" else "end")
        if method in ("trapezoidal", "simpson"):
            tm = "end"
        for k in range(1, n + 1):
            for p, (i, j) in enumerate(pairs):
                flow = rows[k - 1][i] * P[k][i][j]
                total[c] += flow * TV[k][p][c] * d(c, (k - offset[tm]) * L)
    return total, rows


@st.composite
def models(draw):
    n_states = draw(st.integers(2, 4))
    n_cycles = draw(st.integers(1, 6)) * 2  # even, so Simpson applies
    n_channels = draw(st.integers(1, 3))
    method = draw(st.sampled_from(["none", "half_cycle", "trapezoidal", "simpson"]))
    count_start = draw(st.booleans()) if method == "none" else False
    timing = (
        draw(st.sampled_from([None, "start", "middle", "end"]))
        if method in ("none", "half_cycle")
        else None
    )
    seed = draw(st.integers(0, 2**32 - 1))
    L = draw(st.sampled_from([1.0, 1 / 12, 0.25]))
    rates = draw(st.lists(st.sampled_from([0.0, 0.015, 0.035, 0.06]), min_size=n_channels,
                          max_size=n_channels))
    return n_states, n_cycles, n_channels, method, count_start, timing, seed, L, rates


@settings(max_examples=150, deadline=None)
@given(models(), st.integers(1, 3), st.booleans())
def test_engine_matches_loop(model, batch, constant_values):
    n_states, n, n_channels, method, count_start, timing, seed, L, rates = model
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(n_states), size=batch)
    P = rng.dirichlet(np.ones(n_states), size=(n + 1, batch, n_states))  # [k, b, from, to]
    V = rng.uniform(-1, 5, size=(n + 1, batch, n_states, n_channels))
    # The engine takes batch-last arrays: [from, to, batch], [state, channel, batch].
    P_last = np.ascontiguousarray(P.transpose(0, 2, 3, 1))
    if constant_values:
        V[:] = V[0]
    V_last = np.ascontiguousarray(V.transpose(0, 2, 3, 1))
    if constant_values:
        # The same array object every cycle: the engine's occupancy-accumulation path.
        same = V_last[0].copy()
        values_at = lambda k: same  # noqa: E731
    else:
        values_at = lambda k: V_last[k]  # noqa: E731
    pairs = [(0, 1), (n_states - 1, 0)]
    TV = rng.uniform(0, 3, size=(n + 1, batch, len(pairs), n_channels))
    TV_last = np.ascontiguousarray(TV.transpose(0, 2, 3, 1))
    terms = quadrature_terms(n, L, method, count_start, timing)
    rates_arr = np.asarray(rates)
    res = run_cohort(
        start.T.copy(),
        lambda k: P_last[k],
        values_at,
        terms,
        discount_factors(terms.time, rates_arr),
        n_cycles=n,
        transition_values=TransitionValues(
            np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), lambda k: TV_last[k]
        ),
        transition_discount=discount_factors(
            transition_times(n, L, method, timing, count_start), rates_arr
        ),
        keep_trace=True,
    )
    for b in range(batch):
        expected, rows = loop_reference(
            start[b].tolist(), P[:, b].tolist(), V[:, b].tolist(), TV[:, b].tolist(), pairs,
            n, L, method, count_start, timing, rates,
        )
        np.testing.assert_allclose(res.discounted[b], expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.trace[b], rows, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(res.trace[b].sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(models())
def test_zero_discount_gives_undiscounted_totals(model):
    n_states, n, n_channels, method, count_start, timing, seed, L, _ = model
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(n_states), size=2)
    P = rng.dirichlet(np.ones(n_states), size=(2, n_states))
    V = rng.uniform(0, 5, size=(2, n_states, n_channels))
    terms = quadrature_terms(n, L, method, count_start, timing)
    res = run_cohort(start.T.copy(), lambda k: P.transpose(1, 2, 0), lambda k: V.transpose(1, 2, 0),
                     terms,
                     discount_factors(terms.time, np.zeros(n_channels)), n_cycles=n)
    np.testing.assert_allclose(res.discounted, res.undiscounted, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(models(), st.integers(2, 40), st.integers(2, 8), st.booleans())
def test_a_draws_result_does_not_depend_on_its_batch_or_the_buffer(model, width, rows,
                                                                 constant_values):
    # The promise behind "any chunk size gives bit-identical results": each draw's totals
    # are the same whether it is run among 60 draws or among a few of them, and whatever
    # number of trace rows the engine buffers (it sizes its buffer by the batch).
    n_states, n, n_channels, method, count_start, timing, seed, L, rates = model
    rates = (list(rates) + [0.015, 0.035])[:max(2, n_channels)]  # two discount groups
    n_channels = len(rates)
    rng = np.random.default_rng(seed)
    batch = 60
    start = rng.dirichlet(np.ones(n_states), size=batch).T.copy()
    P = np.ascontiguousarray(rng.dirichlet(np.ones(n_states), size=(n + 1, batch, n_states))
                             .transpose(0, 2, 3, 1))
    V = np.ascontiguousarray(rng.uniform(-1, 5, size=(n + 1, n_states, n_channels, batch)))
    if constant_values:
        V[:] = V[0]
    terms = quadrature_terms(n, L, method, count_start, timing)
    disc = discount_factors(terms.time, np.asarray(rates))

    def run(part: slice, buffer: int):
        s = lambda x: np.ascontiguousarray(x[..., part])  # noqa: E731
        Ps, Vs = s(P), s(V)
        same = Vs[0]
        with mock.patch.object(accumulate, "BUFFER_ELEMENTS", buffer):
            return run_cohort(s(start), lambda k: Ps[k],
                              (lambda k: same) if constant_values else (lambda k: Vs[k]),
                              terms, disc, n_cycles=n)

    full = run(slice(None), 2**21)
    lo = seed % (batch - width)
    part = run(slice(lo, lo + width), rows * n_states * width)
    np.testing.assert_array_equal(part.discounted, full.discounted[lo:lo + width])
    np.testing.assert_array_equal(part.undiscounted, full.undiscounted[lo:lo + width])
