"""Tests for vbhc_model.model.powers: power rows kept between evaluations, same values."""

from __future__ import annotations

import numpy as np

from vbhc_model.model.powers import MIN_ROW, PowerMemo
from vbhc_model.scenario.expressions import parse_expression, power

RNG = np.random.default_rng(20261201)


def test_power_rows_kept_between_evaluations_give_the_same_values():
    # A Weibull hazard: (cycle - 1) ** g - cycle ** g over a block of cycles and many draws;
    # with a memo the second power reuses the first's rows.
    e = parse_expression("(cycle - 1) ** g - cycle ** g")
    cycle = np.arange(1.0, 41.0)[:, None, None]
    g = np.concatenate([[0.0, 1.0, 2.0], RNG.uniform(0.3, 3.0, 500)])
    plain = e.evaluate({"cycle": cycle, "g": g})
    memo = PowerMemo()
    kept = e.evaluate({"cycle": cycle, "g": g}, power=memo)
    assert plain.shape == kept.shape == (40, 1, 503)
    np.testing.assert_array_equal(kept, plain)
    (_, rows), = memo._rows.values()
    bases = np.array(list(rows), dtype=np.int64).view(np.float64)  # keyed by bit pattern
    assert sorted(bases) == list(np.arange(0.0, 41.0))  # 41 rows for 80 powers
    assert memo.n_rows == 41
    # 0 ** 0 is 1 and 0 ** g is 0, as with pow; the memo is reused by a later block.
    np.testing.assert_array_equal(kept[0, 0, :3], [1.0 - 1.0, 0.0 - 1.0, 0.0 - 1.0])
    later = e.evaluate({"cycle": cycle + 40, "g": g}, power=memo)
    np.testing.assert_array_equal(later, e.evaluate({"cycle": cycle + 40, "g": g}))
    assert memo.n_rows == 81
    # Each power agrees with pow to a few units in the last place.
    p = parse_expression("cycle ** g")
    np.testing.assert_allclose(p.evaluate({"cycle": cycle, "g": g}, power=PowerMemo()),
                               cycle**g, rtol=1e-13)


def test_the_memo_gives_the_languages_values_exactly():
    # Whatever the shapes: kept rows, the exp-log rule without rows, or pow.
    cycle = np.arange(1.0, 31.0)[:, None, None]
    special = np.resize([0.0, -0.0, 1.0, np.inf, np.nan, 2.5, -2.0, 0.3], 30)[:, None, None]
    g = RNG.uniform(0.3, 3.0, 600)
    g[:4] = [0.0, -1.0, np.inf, np.nan]
    cases = [(cycle, g), (special, g), (cycle - 4, g), (cycle, g[:10]),
             (RNG.uniform(0.5, 2.0, (1, 30)), RNG.uniform(0.5, 2.0, 30)), (2.0, g), (cycle, 1.5)]
    for a, b in cases:
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(PowerMemo()(a, b), power(a, b))


def test_power_memo_is_not_used_when_base_and_exponent_share_an_axis():
    e = parse_expression("a ** b")
    a = RNG.uniform(0.5, 2.0, (1, 30))
    b = RNG.uniform(0.5, 2.0, 30)
    memo = PowerMemo()
    np.testing.assert_allclose(e.evaluate({"a": a, "b": b}, power=memo), a**b, rtol=1e-14)
    assert memo.n_rows == 0


def test_power_memo_is_not_used_for_short_rows():
    # A row as short as a handful of draws is cheaper to compute than to look up.
    e = parse_expression("cycle ** g")
    cycle = np.arange(1.0, 41.0)[:, None, None]
    g = RNG.uniform(0.3, 3.0, MIN_ROW - 1)
    memo = PowerMemo()
    np.testing.assert_allclose(e.evaluate({"cycle": cycle, "g": g}, power=memo),
                               cycle**g, rtol=1e-13)
    assert memo.n_rows == 0


def test_a_new_exponent_array_gets_its_own_rows():
    # Exponents are told apart by identity: an equal but distinct array is not looked up in
    # the first one's rows (its values could differ without the memo knowing).
    cycle = np.arange(1.0, 6.0)[:, None]
    g1 = RNG.uniform(0.3, 3.0, 300)
    g2 = g1 * 2.0
    memo = PowerMemo()
    np.testing.assert_array_equal(memo(cycle, g1), power(cycle, g1))
    np.testing.assert_array_equal(memo(cycle, g2), power(cycle, g2))
    assert memo.n_rows == 10


def test_a_caller_rule_is_used_by_every_unfolded_power():
    calls = []

    def spy(a, b):
        calls.append((np.shape(a), np.shape(b)))
        return power(a, b)

    e = parse_expression("x ** 2 + 2 ** 3 + (x + 1) ** y")
    out = e.evaluate({"x": np.array([1.0, 2.0]), "y": 0.5}, power=spy)
    np.testing.assert_allclose(out, np.array([1.0, 4.0]) + 8.0 + np.sqrt([2.0, 3.0]))
    assert len(calls) == 2  # 2 ** 3 was folded at parse time
