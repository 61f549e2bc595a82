"""Trackers against tunnel states on random small models (hypothesis).

A model with a tunnel state whose transitions and payoffs depend on the time spent in it
(random probabilities, tunnel length, horizon and within-cycle correction) is written twice:
with the tunnel, and without it, the time in the state read from a ``time_in_state`` tracker
capped at the tunnel's length. Both describe the same process:

- exactly: the microsimulation of the tracker model moves every patient as the
  microsimulation of the tunnel model does (a row's zeros do not change its cumulative sums),
  so their totals agree to rounding (1e-12): a tracker that saw another time in state than
  the tunnel's sub-state index would fail this at once;
- statistically: the tracker model's microsimulation against the tunnel model's cohort, within
  5 Monte Carlo standard errors (R replications of N patients): a check that the two
  engines agree on these models at all. Five, not three: the random examples (which are not
  the same on every machine) make about 50 comparisons, and at three a t with R - 1 degrees
  of freedom falls outside by chance in about 0.5% of them. The fixed-seed comparison at three
  MCSE is tests/pipeline/test_trackers.py's.
"""

from __future__ import annotations

import numpy as np
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.engines.test_microsim import replicates
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

R, N = 40, 600


def model(tunnel: int, n_cycles: int, method: str, p: list[float], tracker: bool) -> dict:
    """The scenario as a dict: with a tunnel of ``tunnel`` sub-states, or with a tracker."""
    tis = "t_sick" if tracker else "time_in_state"
    doc = {
        "metadata": {"title": "t", "currency": "USD", "perspective": "p", "country": "c"},
        "settings": {"cycle_length": "1 year", "n_cycles": n_cycles,
                     "discount": {"costs": 0.03, "effects": 0.03},
                     "start": {"well": 1}, "wtp": [50000], "within_cycle_correction": method},
        "parameters": {"p_sick": {"value": p[0], "source": "t"},
                       "rr": {"value": 1, "source": "t"},
                       "rr_new": {"value": p[1], "source": "t"}},
        "states": {"well": {}, "sick": {"tunnel": 1 if tracker else tunnel},
                   "dead": {"absorbing": True, "alive": False}},
        "transitions": {
            "well": {"well": "complement", "sick": "p_sick * rr", "dead": 0.01},
            "sick": {"sick": "complement",
                     "well": f"{p[2]} * min({tis}, {tunnel}) / {tunnel}",
                     "dead": f"{p[3]} * (1 + min({tis}, {tunnel}))"}},
        "payoffs": {"well": {"utility": 0.9},
                    "sick": {"utility": f"0.8 - 0.05 * min({tis}, {tunnel})",
                             "costs": {"care": f"1000 / min({tis}, {tunnel})"}}},
        "strategies": {"old": {}, "new": {"parameters": {"rr": "rr_new"}}},
    }
    if tracker:
        doc["trackers"] = {"t_sick": {"kind": "time_in_state", "cap": tunnel}}
        doc["settings"].update(engine="microsim", patients=N)
    return doc


@settings(max_examples=8, deadline=None, derandomize=True)
@given(tunnel=st.integers(2, 5), n_cycles=st.integers(3, 10),
       method=st.sampled_from(["none", "half_cycle", "trapezoidal"]),
       p=st.tuples(st.floats(0.05, 0.4), st.floats(0.3, 1.0), st.floats(0.05, 0.5),
                   st.floats(0.005, 0.08)))
@example(tunnel=2, n_cycles=4, method="none", p=(0.25, 1.0, 0.5, 0.0078125))  # 3.1 MCSE once
def test_a_time_in_state_tracker_equals_the_tunnel(tmp_path_factory, tunnel,
                                                                   n_cycles, method, p):
    folder = tmp_path_factory.mktemp("m")
    paths = {}
    for name, tracker in (("tunnel", False), ("tracker", True)):
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(model(tunnel, n_cycles, method, list(p),
                                                    tracker), sort_keys=False))
    tun = load_scenario(paths["tunnel"])
    trk = load_scenario(paths["tracker"])
    exact = simulate(tun, replicates(tun, 1)).isel(draw=0)
    micro = simulate(trk, replicates(trk, R))
    tunnel_micro = simulate(tun.with_settings(engine="microsim", patients=N), replicates(tun, R))
    for var in ("total_cost", "qalys", "life_years"):
        np.testing.assert_allclose(micro[var].values, tunnel_micro[var].values, rtol=1e-12,
                                   atol=1e-12, err_msg=var)
    for var, per_cycle in (("total_cost", 1000.0), ("qalys", 1.0), ("life_years", 1.0)):
        # With common random numbers an increment can rest on a handful of patients (those
        # who die in one strategy and not in the other): when none of them occurs in any
        # replication the spread is 0, so the tolerance has a floor of one such patient.
        floor = n_cycles * per_cycle / (N * R)
        m = micro[var]
        inc = m.sel(strategy="new") - m.sel(strategy="old")
        e_inc = exact[var].sel(strategy="new") - exact[var].sel(strategy="old")
        for reps, target in ((m, exact[var]), (inc, e_inc)):
            mean = reps.mean("draw")
            mcse = reps.std("draw", ddof=1) / np.sqrt(R)
            gap = np.abs(mean - target)
            assert bool((gap <= 5 * mcse + floor).all()), (var, gap.values, mcse.values)
