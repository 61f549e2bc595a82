"""Value-based prices (issue 15): at its price a strategy ties with the best other on net
monetary benefit; over PSA draws, the price at probability p makes it the best in a share p of
the draws."""

from __future__ import annotations

import numpy as np
import pytest

from vbhc_model.analysis.frontier import net_monetary_benefit
from vbhc_model.analysis.price import value_based_price


def _with_price(costs, programme, s, x):
    c = costs.copy()
    c[..., s] += x - programme[..., s]
    return c


def test_at_its_price_a_strategy_ties_with_the_best_other():
    costs = np.array([[1000.0, 1500.0, 2600.0]])
    effects = np.array([[1.00, 1.02, 1.03]])
    programme = np.array([[0.0, 400.0, 1500.0]])
    wtp = [20000, 50000]
    ds = value_based_price(costs, effects, programme, wtp, ["uc", "cbt", "ipp"])
    for s in (1, 2):
        for k, lam in enumerate(wtp):
            x = float(ds["price"].values[s, k])
            nmb = net_monetary_benefit(_with_price(costs, programme, s, x)[0], effects[0],
                                       [lam])[:, 0]
            others = np.delete(nmb, s)
            assert nmb[s] == pytest.approx(others.max(), abs=1e-9)


def test_over_draws_the_price_at_probability_p_is_best_in_a_share_p_of_draws():
    rng = np.random.default_rng(2)
    n = 20_000
    effects = np.column_stack([rng.normal(1.0, 0.02, n), rng.normal(1.01, 0.02, n)])
    costs = np.column_stack([rng.normal(1000, 100, n), rng.normal(1300, 100, n)])
    programme = np.column_stack([np.zeros(n), np.full(n, 300.0)])
    ds = value_based_price(costs, effects, programme, [50000], ["uc", "new"],
                           probabilities=(0.5, 0.8))
    for j, p in enumerate((0.5, 0.8)):
        x = float(ds["price_at_probability"].values[1, 0, j])
        c = _with_price(costs, programme, 1, x)
        nmb = 50000 * effects - c
        assert (nmb[:, 1] >= nmb[:, 0]).mean() == pytest.approx(p, abs=2e-3)
    at_now = (50000 * effects[:, 1] - costs[:, 1] >= 50000 * effects[:, 0] - costs[:, 0]).mean()
    assert float(ds["p_best_at_current"].values[1, 0]) == pytest.approx(at_now)
