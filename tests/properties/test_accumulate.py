"""The accumulator against a plain loop over quadrature terms, and fed rows the way a
microsimulation would feed them (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbhc_model.engines.accumulate import Accumulator
from vbhc_model.engines.base import EngineInputs, Outputs, TransitionValues
from vbhc_model.engines.cohort import CohortEngine, run_cohort
from vbhc_model.engines.corrections import discount_factors, quadrature_terms, transition_times


def loop_accumulate(rows, V, terms, disc):
    """sum over terms i of weight_i x discount_i x (row[row_i] . V[cycle_i]), per batch and
    channel: the definition, one term at a time. rows [j, s, b], V [k, s, c, b]."""
    n_channels, batch = V.shape[2], V.shape[3]
    acc = np.zeros((batch, n_channels))
    acc_u = np.zeros((batch, n_channels))
    for i in range(len(terms.row)):
        for b in range(batch):
            for c in range(n_channels):
                x = terms.weight[i] * sum(rows[terms.row[i], s, b] * V[terms.cycle[i], s, c, b]
                                          for s in range(rows.shape[1]))
                acc[b, c] += x * disc[i, c]
                acc_u[b, c] += x
    return acc, acc_u


@st.composite
def cases(draw):
    n_states = draw(st.integers(1, 4))
    n = draw(st.integers(1, 5)) * 2
    n_channels = draw(st.integers(1, 3))
    method = draw(st.sampled_from(["none", "half_cycle", "trapezoidal", "simpson"]))
    count_start = draw(st.booleans()) if method == "none" else False
    rates = draw(st.lists(st.sampled_from([0.0, 0.015, 0.035]), min_size=n_channels,
                          max_size=n_channels))
    return (n_states, n, n_channels, method, count_start, rates, draw(st.integers(1, 3)),
            draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**32 - 1)))


@settings(max_examples=100, deadline=None)
@given(cases())
def test_accumulator_matches_a_loop_over_terms(case):
    n_states, n, n_channels, method, count_start, rates, batch, constant, keep, seed = case
    rng = np.random.default_rng(seed)
    rows = rng.uniform(0, 1, (n + 1, n_states, batch))  # any occupancy, e.g. a patient mean
    V = rng.uniform(-1, 5, (n + 1, n_states, n_channels, batch))
    if constant:
        V[:] = V[0]
    terms = quadrature_terms(n, 0.5, method, count_start)
    disc = discount_factors(terms.time, np.asarray(rates))
    same = V[0]
    acc = Accumulator(n_states, batch, (lambda k: same) if constant else (lambda k: V[k]),
                      terms, disc, n_cycles=n, keep_cycles=keep)
    for j in range(n + 1):
        acc.add_row(j, rows[j])
    res = acc.finish()
    expected, expected_u = loop_accumulate(rows, V, terms, disc)
    np.testing.assert_allclose(res.discounted, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.undiscounted, expected_u, rtol=1e-12, atol=1e-12)
    if keep:  # the per-cycle payoffs add up to the totals
        np.testing.assert_allclose(res.by_cycle.sum(axis=1), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(res.by_cycle_undiscounted.sum(axis=1), expected_u,
                                   rtol=1e-12, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(cases())
def test_rows_fed_in_give_the_cohorts_numbers_bit_for_bit(case):
    # A microsimulation feeds its occupancy rows; fed the cohort's own trace, the totals are
    # exactly the cohort engine's (the same fold, row by row in cycle order).
    n_states, n, n_channels, method, count_start, rates, batch, constant, keep, seed = case
    n_states = max(n_states, 2)
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(n_states), size=batch).T.copy()
    P = np.ascontiguousarray(rng.dirichlet(np.ones(n_states), size=(n + 1, batch, n_states))
                             .transpose(0, 2, 3, 1))
    V = np.ascontiguousarray(rng.uniform(-1, 5, (n + 1, n_states, n_channels, batch)))
    same = V[0]
    values_at = (lambda k: same) if constant else (lambda k: V[k])
    tv = TransitionValues(np.array([0]), np.array([1]), lambda k: np.ones((1, n_channels, batch)))
    terms = quadrature_terms(n, 1.0, method, count_start)
    disc = discount_factors(terms.time, np.asarray(rates))
    tdisc = discount_factors(transition_times(n, 1.0, method, None, count_start),
                             np.asarray(rates))
    cohort = run_cohort(start, lambda k: P[k], values_at, terms, disc, n_cycles=n,
                        transition_values=tv, transition_discount=tdisc, keep_trace=True,
                        keep_cycles=keep)
    trace = cohort.trace.transpose(1, 2, 0)  # [row, state, batch]
    acc = Accumulator(n_states, batch, values_at, terms, disc, n_cycles=n,
                      transition_values=tv, transition_discount=tdisc, keep_cycles=keep)
    acc.add_row(0, trace[0])
    for j in range(1, n + 1):
        acc.add_flow(j, trace[j - 1][[0]] * P[j][0, 1])
        acc.add_row(j, trace[j])
    fed = acc.finish()
    np.testing.assert_array_equal(fed.discounted, cohort.discounted)
    np.testing.assert_array_equal(fed.undiscounted, cohort.undiscounted)
    if keep:
        np.testing.assert_array_equal(fed.by_cycle, cohort.by_cycle)


def test_rows_must_come_in_order():
    terms = quadrature_terms(2, 1.0)
    acc = Accumulator(1, 1, lambda k: np.ones((1, 1, 1)), terms,
                      discount_factors(terms.time, np.zeros(1)), n_cycles=2)
    acc.add_row(0, np.ones((1, 1)))
    with pytest.raises(ValueError, match="got row 2, expected 1"):
        acc.add_row(2, np.ones((1, 1)))


def _two_state(n: int = 4):
    P = np.array([[0.9, 0.1], [0.0, 1.0]])[:, :, None]
    V = np.array([[1.0], [0.0]])[:, :, None]
    terms = quadrature_terms(n, 1.0, "half_cycle")
    return P, V, terms, discount_factors(terms.time, np.array([0.035]))


def test_transitions_as_a_one_pass_iterator_or_a_function_agree():
    P, V, terms, disc = _two_state()
    start = np.array([[1.0], [0.0]])
    as_function = EngineInputs(start, lambda k: P, lambda k: V, terms, disc, n_cycles=4)
    as_iterator = EngineInputs(start, iter([P] * 4), lambda k: V, terms, disc, n_cycles=4)
    a = CohortEngine().run(as_function, Outputs(trace=True))
    b = CohortEngine().run(as_iterator, Outputs(trace=True))
    np.testing.assert_array_equal(a.discounted, b.discounted)
    np.testing.assert_array_equal(a.trace, b.trace)
    assert a.by_cycle is None


def test_a_short_iterator_is_an_error():
    P, V, terms, disc = _two_state()
    short = EngineInputs(np.array([[1.0], [0.0]]), iter([P] * 3), lambda k: V, terms, disc,
                         n_cycles=4)
    with pytest.raises(ValueError, match="ended before cycle 4 of 4"):
        CohortEngine().run(short, Outputs())
