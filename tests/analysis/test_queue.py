"""The plan's queue (issue 15): Erlang C against closed forms, and the M/M/c mean wait against
a simulated queue."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vbhc_model.analysis.queue import _simulate_mmc, erlang_c, mmc_wait, mmc_wait_array


def test_one_server_is_the_mm1_queue():
    for lam, mu in ((0.2, 1.0), (0.5, 1.0), (0.9, 1.0)):
        w, lq, p = mmc_wait(lam, 1 / mu, 1)
        rho = lam / mu
        assert p == pytest.approx(rho, rel=1e-12)
        assert w == pytest.approx(rho / (mu - lam), rel=1e-12)
        assert lq == pytest.approx(rho**2 / (1 - rho), rel=1e-12)


def test_two_servers_match_the_closed_form():
    # M/M/2: W_q = rho^2 / (mu (1 - rho^2)) with rho = lam / (2 mu)
    for lam, mu in ((0.5, 1.0), (1.5, 1.0), (1.9, 1.0)):
        rho = lam / (2 * mu)
        w, _, _ = mmc_wait(lam, 1 / mu, 2)
        assert w == pytest.approx(rho**2 / (mu * (1 - rho**2)), rel=1e-12)


def test_erlang_c_is_stable_for_many_servers():
    # the recursion stays finite where factorials overflow
    p = erlang_c(400, 380.0)
    assert 0 < p < 1 and math.isfinite(p)


@pytest.mark.parametrize("lam, service, c", [(2.0, 1.0, 3), (8.0, 1.0, 10)])
def test_the_mean_wait_agrees_with_a_simulated_queue(lam, service, c):
    w, _, _ = mmc_wait(lam, service, c)
    simulated = _simulate_mmc(lam, service, c, 200_000, seed=3)
    assert simulated == pytest.approx(w, rel=0.08)


def test_an_overloaded_queue_has_no_steady_state():
    assert mmc_wait(3.0, 1.0, 2) == (math.inf, math.inf, 1.0)
    assert mmc_wait(0.0, 1.0, 2)[0] == 0.0


def test_the_array_form_is_the_scalar_form_elementwise():
    lam = np.array([0.0, 0.5, 1.5, 3.0, 8.0, 2.0])
    service = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.5])
    places = np.array([1, 1, 2, 2, 10.7, 1.0])
    w, p = mmc_wait_array(lam, service, places)
    for i in range(len(lam)):
        ws, _, ps = mmc_wait(lam[i], service[i], places[i])
        assert w[i] == pytest.approx(ws, rel=1e-12) if np.isfinite(ws) else np.isinf(w[i])
        assert p[i] == pytest.approx(ps, rel=1e-12)


def test_a_load_of_exactly_the_servers_is_not_a_steady_state_by_rounding():
    # 600 patients a year holding a place 8.67 weeks: a load of 100 places, a rounding error
    # below it; with 100 places it is over capacity, not a wait of 10^14 weeks (the default
    # plan's PSA met it)
    lam, service = 600 / 52, 2 * 52 / 12
    assert lam * service < 100
    assert mmc_wait(lam, service, 100.4)[0] == math.inf
    w, p = mmc_wait_array(np.array([lam, lam]), service, np.array([100.4, 101.0]))
    assert np.isinf(w[0]) and p[0] == 1.0
    assert w[1] == pytest.approx(mmc_wait(lam, service, 101.0)[0], rel=1e-12) and w[1] < 52
