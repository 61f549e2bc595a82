"""Tests for vbhc_model.analysis.frontier (incremental analysis, dominance, NMB)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vbhc_model.analysis.frontier import (
    FrontierInputError,
    compute_icers,
    net_monetary_benefit,
    optimal_strategy,
)
from vbhc_model.errors import VbhcError


def _row(ds, name):
    r = ds.sel(strategy=name)
    return {k: r[k].item() for k in ds.data_vars}


# --------------------------------------------------------------------------- textbook


def test_hand_built_example_with_strong_and_extended_dominance():
    # Strategy: cost, effect (QALY). Worked by hand:
    #   sort by cost: A(0,0) B(1000,1) C(3000,1.5) D(4000,2.5) E(5000,2) F(8000,3)
    #   E: D is cheaper and more effective -> strongly dominated by D.
    #   ICERs on A,B,C,D,F: B 1000/1 = 1000, C 2000/0.5 = 4000, D 1000/1 = 1000,
    #   F 4000/0.5 = 8000. C's 4000 > D's 1000 -> C extendedly dominated.
    #   Again on A,B,D,F: B 1000, D (4000-1000)/(2.5-1) = 2000, F 8000: increasing.
    names = ["E", "C", "A", "F", "B", "D"]  # deliberately scrambled
    data = {
        "A": (0, 0),
        "B": (1000, 1),
        "C": (3000, 1.5),
        "D": (4000, 2.5),
        "E": (5000, 2),
        "F": (8000, 3),
    }
    ds = compute_icers([data[n][0] for n in names], [data[n][1] for n in names], names)

    assert list(ds.strategy.values) == ["A", "B", "C", "D", "E", "F"]
    assert list(ds.input_index.values) == [2, 4, 1, 5, 0, 3]
    assert list(ds.status.values) == [
        "frontier",
        "frontier",
        "extendedly dominated",
        "frontier",
        "dominated",
        "frontier",
    ]
    assert list(ds.comparator.values) == ["", "A", "", "B", "", "D"]
    assert list(ds.dominated_by.values) == ["", "", "extended: between B and D", "", "D", ""]
    np.testing.assert_allclose(ds.icer.values, [np.nan, 1000.0, np.nan, 2000.0, np.nan, 8000.0])
    np.testing.assert_allclose(ds.inc_cost.values, [np.nan, 1000.0, 2000.0, 3000.0, 1000.0, 4000.0])
    np.testing.assert_allclose(ds.inc_effect.values, [np.nan, 1.0, 0.5, 1.5, -0.5, 0.5])
    np.testing.assert_array_equal(ds.cost.values, [0, 1000, 3000, 4000, 5000, 8000])
    assert "dominance" in ds.attrs["method"]


def test_cascading_extended_dominance():
    # A(0,0) B(10,1) C(20,1.5) D(21,3). ICERs: B 10, C 20, D 1/1.5 = 0.667 -> drop C;
    # then B 10, D 11/2 = 5.5 -> drop B; frontier A, D with ICER 21/3 = 7.
    ds = compute_icers([0, 10, 20, 21], [0, 1, 1.5, 3], ["A", "B", "C", "D"])
    assert list(ds.status.values) == [
        "frontier",
        "extendedly dominated",
        "extendedly dominated",
        "frontier",
    ]
    assert ds.icer.sel(strategy="D").item() == pytest.approx(7.0)
    assert ds.comparator.sel(strategy="D").item() == "A"
    assert ds.dominated_by.sel(strategy="C").item() == "extended: between A and D"
    assert ds.inc_cost.sel(strategy="C").item() == 20.0  # versus A, the cheaper frontier one


def test_collinear_middle_strategy_is_extendedly_dominated():
    ds = compute_icers([0, 1, 2], [0, 1, 2], ["A", "B", "C"])
    assert list(ds.status.values) == ["frontier", "extendedly dominated", "frontier"]
    assert ds.icer.sel(strategy="C").item() == 1.0


# --------------------------------------------------------------------------- edge cases


def test_single_strategy():
    ds = compute_icers([5.0], [1.0], ["only"])
    assert _row(ds, "only")["status"] == "frontier"
    assert math.isnan(_row(ds, "only")["icer"])
    assert math.isnan(_row(ds, "only")["inc_cost"])
    assert _row(ds, "only")["comparator"] == ""
    assert _row(ds, "only")["dominated_by"] == ""


def test_two_strategies():
    ds = compute_icers([100.0, 0.0], [2.0, 0.0], ["new", "old"])
    assert list(ds.strategy.values) == ["old", "new"]
    assert _row(ds, "new") == {
        "cost": 100.0,
        "effect": 2.0,
        "inc_cost": 100.0,
        "inc_effect": 2.0,
        "icer": 50.0,
        "status": "frontier",
        "comparator": "old",
        "dominated_by": "",
    }
    # The more expensive one is less effective: dominated.
    ds = compute_icers([0.0, 100.0], [1.0, 0.5], ["old", "new"])
    assert list(ds.status.values) == ["frontier", "dominated"]
    assert ds.dominated_by.sel(strategy="new").item() == "old"
    assert ds.inc_effect.sel(strategy="new").item() == -0.5


def test_all_effects_equal_cheapest_is_frontier():
    ds = compute_icers([3.0, 1.0, 2.0], [1.0, 1.0, 1.0], ["a", "b", "c"])
    assert list(ds.strategy.values) == ["b", "c", "a"]
    assert list(ds.status.values) == ["frontier", "dominated", "dominated"]
    assert list(ds.dominated_by.values) == ["", "b", "b"]
    assert np.isnan(ds.icer.values).all()


def test_equal_costs_different_effects():
    ds = compute_icers([5.0, 5.0, 0.0], [1.0, 2.0, 0.0], ["lo", "hi", "none"])
    assert list(ds.strategy.values) == ["none", "hi", "lo"]
    assert list(ds.status.values) == ["frontier", "frontier", "dominated"]
    assert ds.dominated_by.sel(strategy="lo").item() == "hi"
    assert ds.icer.sel(strategy="hi").item() == 2.5
    assert ds.inc_cost.sel(strategy="lo").item() == 0.0  # versus "hi"
    assert ds.inc_effect.sel(strategy="lo").item() == -1.0


@pytest.mark.parametrize("names", [["X", "Y"], ["Y", "X"]])
def test_exact_duplicates_keep_first_in_input_order(names):
    ds = compute_icers([0.0, 4.0, 4.0], [0.0, 2.0, 2.0], ["base", *names])
    first, second = names
    assert ds.status.sel(strategy=first).item() == "frontier"
    assert ds.icer.sel(strategy=first).item() == 2.0
    assert ds.status.sel(strategy=second).item() == "dominated"
    assert ds.dominated_by.sel(strategy=second).item() == first
    assert ds.inc_cost.sel(strategy=second).item() == 0.0
    assert ds.inc_effect.sel(strategy=second).item() == 0.0


def test_all_identical():
    ds = compute_icers([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], ["a", "b", "c"])
    assert list(ds.status.values) == ["frontier", "dominated", "dominated"]
    assert list(ds.dominated_by.values) == ["", "a", "a"]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_raises_naming_strategy(bad):
    with pytest.raises(ValueError, match="'B'"):
        compute_icers([0.0, bad, 2.0], [0.0, 1.0, 2.0], ["A", "B", "C"])
    with pytest.raises(ValueError, match="effect of strategy 'C'"):
        compute_icers([0.0, 1.0, 2.0], [0.0, 1.0, bad], ["A", "B", "C"])


def test_length_mismatch_and_other_bad_input():
    with pytest.raises(ValueError, match="mismatch"):
        compute_icers([0.0, 1.0], [0.0, 1.0, 2.0], ["A", "B", "C"])
    with pytest.raises(ValueError, match="mismatch"):
        compute_icers([0.0, 1.0], [0.0, 1.0], ["A"])
    with pytest.raises(ValueError, match="duplicate"):
        compute_icers([0.0, 1.0], [0.0, 1.0], ["A", "A"])
    with pytest.raises(ValueError, match="at least one"):
        compute_icers([], [], [])
    with pytest.raises(ValueError, match="1-D"):
        compute_icers([[0.0, 1.0]], [[0.0, 1.0]], ["A", "B"])
    # It is also a user-input error for the CLI.
    with pytest.raises(VbhcError):
        compute_icers([np.nan], [1.0], ["A"])
    assert issubclass(FrontierInputError, ValueError)


def test_nmb_and_optimal_shapes():
    rng = np.random.default_rng(0)
    c = rng.normal(size=(7, 3, 4))
    e = rng.normal(size=(7, 3, 4))
    wtp = np.array([0.0, 1.0, 10.0])
    nmb = net_monetary_benefit(c, e, wtp)
    assert nmb.shape == (7, 3, 4, 3)
    np.testing.assert_allclose(nmb[..., 2], e * 10.0 - c)
    assert net_monetary_benefit(c, e, 5.0).shape == (7, 3, 4)
    opt = optimal_strategy(c, e, wtp)
    assert opt.shape == (7, 3, 3)
    np.testing.assert_array_equal(opt[..., 1], np.argmax(e - c, axis=-1))
    assert optimal_strategy(c, e, 1.0).shape == (7, 3)
    # Ties go to the first index.
    assert optimal_strategy([1.0, 1.0], [0.0, 0.0], [3.0]).tolist() == [0]
    with pytest.raises(ValueError):
        optimal_strategy([np.nan, 1.0], [0.0, 0.0], 1.0)
    with pytest.raises(ValueError):
        net_monetary_benefit([1.0], [1.0], [[1.0]])


# --------------------------------------------------------------------------- properties
# Integer-valued costs and effects on a 1/8 grid keep all arithmetic exact, so the
# properties test the algorithm rather than floating-point rounding near ties.

_cost = st.integers(-2000, 2000).map(float)
_effect = st.integers(-80, 80).map(lambda i: i / 8)
_sets = st.lists(st.tuples(_cost, _effect), min_size=1, max_size=9)


def _icers(pairs):
    names = [f"s{i}" for i in range(len(pairs))]
    c, e = (np.array(x, dtype=float) for x in zip(*pairs))
    return c, e, names, compute_icers(c, e, names)


@settings(max_examples=300, deadline=None)
@given(_sets)
def test_prop_frontier_monotone(pairs):
    _, _, _, ds = _icers(pairs)
    f = ds.isel(strategy=np.flatnonzero(ds.status.values == "frontier"))
    assert f.sizes["strategy"] >= 1
    assert np.all(np.diff(f.cost.values) > 0)
    assert np.all(np.diff(f.effect.values) > 0)
    icer = f.icer.values[1:]
    assert np.all(icer > 0)
    assert np.all(np.diff(icer) > 0)
    assert math.isnan(f.icer.values[0])
    # Every non-frontier strategy has NaN icer; strong dominators really dominate.
    for row in ds.strategy.values[ds.status.values == "dominated"]:
        d = ds.dominated_by.sel(strategy=row).item()
        assert ds.status.sel(strategy=d).item() != "dominated"
        assert ds.cost.sel(strategy=d) <= ds.cost.sel(strategy=row)
        assert ds.effect.sel(strategy=d) >= ds.effect.sel(strategy=row)
    assert np.isnan(ds.icer.values[ds.status.values != "frontier"]).all()


@settings(max_examples=200, deadline=None)
@given(_sets, st.sampled_from([0.125, 0.5, 2.0, 3.0, 7.0, 1000.0]))
def test_prop_cost_scaling(pairs, k):
    c, e, names, ds = _icers(pairs)
    ds2 = compute_icers(c * k, e, names)
    assert list(ds2.strategy.values) == list(ds.strategy.values)
    assert list(ds2.status.values) == list(ds.status.values)
    assert list(ds2.comparator.values) == list(ds.comparator.values)
    np.testing.assert_allclose(ds2.icer.values, ds.icer.values * k, rtol=1e-12)


@settings(max_examples=200, deadline=None)
@given(_sets, st.data())
def test_prop_adding_dominated_strategy(pairs, data):
    c, e, names, ds = _icers(pairs)
    s = data.draw(st.integers(0, len(pairs) - 1))
    dc = data.draw(st.integers(1, 500))
    de = data.draw(st.integers(1, 40)) / 8
    ds2 = compute_icers(np.append(c, c[s] + dc), np.append(e, e[s] - de), [*names, "new"])
    assert ds2.status.sel(strategy="new").item() == "dominated"
    sub = ds2.sel(strategy=list(ds.strategy.values))
    for var in ds.data_vars:
        if ds[var].dtype.kind == "f":
            np.testing.assert_array_equal(sub[var].values, ds[var].values)
        else:
            assert list(sub[var].values) == list(ds[var].values), var


@settings(max_examples=200, deadline=None)
@given(_sets, st.floats(0, 1e5))
def test_prop_nmb_maximiser_on_frontier(pairs, wtp):
    c, e, _, ds = _icers(pairs)
    nmb = net_monetary_benefit(c, e, wtp)
    on_front = np.zeros(len(c), bool)
    on_front[ds.input_index.values[ds.status.values == "frontier"]] = True
    best = nmb.max()
    tol = 1e-9 * (1 + abs(best))
    assert nmb[on_front].max() >= best - tol
    # The argmax is on the frontier unless it ties with a frontier strategy.
    opt = int(optimal_strategy(c, e, wtp))
    assert on_front[opt] or abs(nmb[opt] - nmb[on_front].max()) <= tol


@settings(max_examples=200, deadline=None)
@given(_sets)
def test_prop_optimal_between_consecutive_icers(pairs):
    c, e, _, ds = _icers(pairs)
    f = ds.isel(strategy=np.flatnonzero(ds.status.values == "frontier"))
    idx = f.input_index.values.astype(int)
    icer = f.icer.values[1:]  # icer[k-1] is where frontier strategy k takes over
    bounds = np.concatenate([[0.0], icer, [2 * (icer[-1] if icer.size else 1.0) + 1]])
    wtp = (bounds[:-1] + bounds[1:]) / 2  # strictly inside each interval
    assume(np.all(wtp > 0))
    np.testing.assert_array_equal(optimal_strategy(c, e, wtp), idx)


def test_a_negligible_gain_is_left_off_the_frontier_and_the_next_is_compared_with_the_cheaper():
    costs, effects = [0, 100, 101, 5200], [0.0, 2.0, 2.0004, 2.5]
    plain = compute_icers(costs, effects, ["A", "B", "C", "D"])
    assert plain.status.values.tolist() == ["frontier"] * 4  # C at an ICER of 2,500
    ds = compute_icers(costs, effects, ["A", "B", "C", "D"], negligible=0.001)
    assert ds.status.values.tolist() == ["frontier", "frontier", "negligible gain", "frontier"]
    assert np.isnan(ds.icer.sel(strategy="C").item())
    assert str(ds.comparator.sel(strategy="D").values) == "B"  # not C
    assert ds.icer.sel(strategy="D").item() == pytest.approx(5100 / 0.5)
    assert str(ds.dominated_by.sel(strategy="C").values).startswith(
        "negligible gain over B: gain 0.0004 below the tolerance 0.001")
    assert ds.inc_effect.sel(strategy="C").item() == pytest.approx(0.0004)


def test_a_gain_whose_interval_straddles_zero_by_far_is_negligible():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.05, 4000)
    draws = np.column_stack([base, base + 0.02 + rng.normal(0, 0.001, 4000),
                             base + 0.0205 + rng.normal(0, 0.02, 4000)])
    ds = compute_icers([0, 100, 3000], draws.mean(axis=0), ["A", "B", "C"],
                       effect_draws=draws)
    assert ds.status.values.tolist() == ["frontier", "frontier", "negligible gain"]
    assert "straddles zero by far" in str(ds.dominated_by.sel(strategy="C").values)
    # a clear gain with a wide interval that excludes zero stays
    draws[:, 2] = base + 0.06 + rng.normal(0, 0.01, 4000)
    ds = compute_icers([0, 100, 3000], draws.mean(axis=0), ["A", "B", "C"], effect_draws=draws)
    assert ds.status.values.tolist() == ["frontier", "frontier", "frontier"]


def test_a_strategy_dominated_by_a_negligible_gain_stays_dominated():
    """Leaving B off the frontier for a noisy gain must not let D, which B dominates on the
    means, onto the frontier (found in review)."""
    rng = np.random.default_rng(0)
    n = 1000
    a = rng.normal(1.0, 0.01, n)
    draws = np.column_stack([a, a + 0.05 + rng.normal(0, 0.3, n), a + 0.04 + rng.normal(0, 0.005, n)])
    ds = compute_icers([0.0, 100.0, 200.0], draws.mean(axis=0), ["A", "B", "D"],
                       effect_draws=draws)
    assert ds.status.values.tolist() == ["frontier", "negligible gain", "dominated"]
    assert str(ds.dominated_by.sel(strategy="D").values) == "B"
