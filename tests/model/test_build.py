"""Model building: tunnels, engagement strata, programmes, unit costs, invariants."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from vbhc_model.api import run_scenario
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

HEADER = """
metadata: {title: t, currency: USD, price_year: 2025, perspective: payer, country: US}
settings:
  cycle_length: 1 year
  n_cycles: 8
  discount: {costs: 0.03, effects: 0.03}
  start: {well: 1}
  wtp: [50000]
"""


def load(tmp_path, body: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(HEADER) + textwrap.dedent(body))
    return load_scenario(path)


TUNNEL = """
parameters:
  p_sick: {value: 0.2, source: test}
states:
  well: {}
  sick: {tunnel: 3}
  dead: {absorbing: true, alive: false}
transitions:
  well: {sick: p_sick, well: complement}
  sick: {dead: 0.1 * time_in_state, well: 0.05, sick: complement}
payoffs:
  well: {utility: 0.9}
  sick: {utility: 0.6, costs: {care: 100 * time_in_state}}
strategies:
  a: {}
"""

EXPANDED = """
parameters:
  p_sick: {value: 0.2, source: test}
states:
  well: {}
  sick1: {}
  sick2: {}
  sick3: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {sick1: p_sick, well: complement}
  sick1: {dead: 0.1, well: 0.05, sick2: complement}
  sick2: {dead: 0.2, well: 0.05, sick3: complement}
  sick3: {dead: 0.3, well: 0.05, sick3: complement}
payoffs:
  well: {utility: 0.9}
  sick1: {utility: 0.6, costs: {care: 100}}
  sick2: {utility: 0.6, costs: {care: 200}}
  sick3: {utility: 0.6, costs: {care: 300}}
strategies:
  a: {}
"""


def test_tunnel_equals_hand_expanded_states(tmp_path):
    t = load(tmp_path, TUNNEL, "t.yaml")
    e = load(tmp_path, EXPANDED, "e.yaml")
    out_t = simulate(t, base_draws(t), trace=True)
    out_e = simulate(e, base_draws(e), trace=True)
    for var in ("total_cost", "qalys", "life_years"):
        np.testing.assert_allclose(out_t[var].values, out_e[var].values, rtol=1e-12)
    sick = out_e["trace"].sel(state=["sick1", "sick2", "sick3"]).sum("state")
    np.testing.assert_allclose(out_t["trace"].sel(state="sick").values, sick.values, rtol=1e-12)


ENGAGED = """
parameters:
  p_sick: {value: 0.2, source: test}
  c_prog: {value: 500, source: test}
states:
  well: {}
  sick: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {sick: p_sick * (1 - 0.5 * engagement_effect), dead: 0.01, well: complement}
  sick: {dead: 0.1, sick: complement}
payoffs:
  well: {utility: 0.9}
  sick: {utility: 0.5}
strategies:
  prog:
    engagement:
      none: {share: 0.25, effect: 0, resource_use: 0}
      full: {share: complement, effect: 1, resource_use: 1}
    programme: {duration: 2, one_off: {costs: {programme: c_prog}}, per_cycle: {costs: {programme: 10}}}
  untreated:
    programme: {duration: 2, one_off: {costs: {programme: c_prog}}, per_cycle: {costs: {programme: 10}}}
    engagement:
      none: {share: 1, effect: 0, resource_use: 0}
  treated:
    programme: {duration: 2, one_off: {costs: {programme: c_prog}}, per_cycle: {costs: {programme: 10}}}
    engagement:
      full: {share: 1, effect: 1, resource_use: 1}
"""


def test_engagement_is_the_share_weighted_mixture(tmp_path):
    sc = load(tmp_path, ENGAGED)
    out = simulate(sc, base_draws(sc)).isel(draw=0)
    for var in ("qalys", "total_cost", "life_years"):
        mixed = 0.25 * out[var].sel(strategy="untreated") + 0.75 * out[var].sel(strategy="treated")
        assert float(out[var].sel(strategy="prog")) == pytest.approx(float(mixed), rel=1e-12)
    assert out["engagement"].sel(strategy="prog", level="full").item() == pytest.approx(0.75)


def test_programme_costs_accrue_to_the_living_for_its_duration(tmp_path):
    sc = load(tmp_path, ENGAGED)
    out = simulate(sc, base_draws(sc), trace=True, per_cycle=True).isel(draw=0)
    on = out.sel(strategy="treated")
    prog = on["cycle_costs"].sel(category="programme").values
    alive = 1 - on["trace"].sel(state="dead").values
    # end-of-cycle counting: cycle k uses row k, discounted 1/1.03^k; one-off at time 0.
    assert prog[0] == pytest.approx(500)
    for k in (1, 2):
        assert prog[k] == pytest.approx(10 * alive[k] / 1.03**k, rel=1e-12)
    assert np.all(prog[3:] == 0)


UNIT = """
parameters:
  c_visit: {value: 80, source: test}
  wage: {value: 50, source: test}
services:
  visit: {unit_cost: c_visit, category: outpatient}
roles:
  nurse: {hourly_cost: wage, category: staff}
states:
  well: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {dead: 0.1, well: complement}
payoffs:
  well: {utility: 1, utilisation: {visit: 2}, clinician_hours: {nurse: 0.5}}
strategies:
  a: {}
"""


def test_unit_costs_turn_counts_into_costs(tmp_path):
    sc = load(tmp_path, UNIT)
    out = simulate(sc, base_draws(sc)).isel(draw=0, strategy=0)
    alive = sum(0.9**k for k in range(1, 9))
    disc = sum(0.9**k / 1.03**k for k in range(1, 9))
    assert float(out["utilisation"].sel(service="visit")) == pytest.approx(2 * alive)
    assert float(out["clinician_hours"].sel(role="nurse")) == pytest.approx(0.5 * alive)
    assert float(out["costs"].sel(category="outpatient")) == pytest.approx(160 * disc)
    assert float(out["costs"].sel(category="staff")) == pytest.approx(25 * disc)
    assert float(out["total_cost"]) == pytest.approx(185 * disc)


def test_scaling_costs_scales_icers():
    sc = load_scenario(SCENARIOS / "reference" / "hiv_chancellor_1997.yaml")
    draws = base_draws(sc)
    k = 3.7
    scaled = draws.copy()
    cost_params = [p for p in draws["parameter"].values if str(p).startswith("c_")]
    scaled.loc[{"parameter": cost_params}] *= k
    a = simulate(sc, draws)
    b = simulate(sc, scaled)
    np.testing.assert_allclose(b["total_cost"].values, k * a["total_cost"].values, rtol=1e-12)
    from vbhc_model.analysis import summarise

    ta, tb = summarise(a, [1.0], "life_years"), summarise(b, [1.0], "life_years")
    assert float(tb["icer"].sel(strategy="comb")) == pytest.approx(
        k * float(ta["icer"].sel(strategy="comb")), rel=1e-12
    )


def test_many_identical_draws_equal_the_base_case():
    sc = load_scenario(SCENARIOS / "chronic_pain_us.yaml")
    one = simulate(sc, base_draws(sc, 1))
    many = simulate(sc, base_draws(sc, 7))
    for var in ("total_cost", "qalys", "utilisation", "clinician_hours"):
        np.testing.assert_allclose(many[var].values, np.repeat(one[var].values, 7, axis=0),
                                   rtol=1e-12)


def test_default_scenario_outcomes_are_sane():
    res = run_scenario()
    out = res.outcomes.isel(draw=0)
    assert list(out["strategy"].values) == ["usual_care", "coach_cbt", "paintrainer", "ipp",
                                            "stepped_care"]
    # Programmes improve QALYs over usual care and only coach CBT uses health-coach hours.
    q = out["qalys"]
    assert (q.sel(strategy=["coach_cbt", "paintrainer", "ipp"]) > q.sel(strategy="usual_care")).all()
    hours = out["clinician_hours"]
    assert float(hours.sel(strategy="coach_cbt", role="health_coach")) > 0
    assert float(hours.sel(strategy="usual_care").sum()) == 0
    # Completers of coach CBT: 8 sessions x 45 min x 1.25 = 7.5 h; the mixture is below that.
    assert 0 < float(hours.sel(strategy="coach_cbt", role="health_coach")) < 7.5
    shares = out["engagement"].sum("level")
    np.testing.assert_allclose(shares.values, 1.0)
    assert res.outcomes.attrs["scenario_sha256"]


DEATH_COST = """
states:
  well: {}
  dead: {absorbing: true, alive: false}
transitions:
  well: {dead: 0.1, well: complement}
payoffs:
  well: {utility: 1}
transition_payoffs:
  - {from: well, to: dead, costs: {end_of_life: 1000}, qalys: -0.05}
strategies:
  a: {}
"""


def test_one_off_values_on_transitions(tmp_path):
    sc = load(tmp_path, DEATH_COST)
    out = simulate(sc, base_draws(sc)).isel(draw=0, strategy=0)
    # Flow into death in cycle k is 0.9^(k-1) * 0.1, discounted at the end of cycle k.
    flows = [0.9 ** (k - 1) * 0.1 / 1.03**k for k in range(1, 9)]
    assert float(out["costs"].sel(category="end_of_life")) == pytest.approx(1000 * sum(flows))
    life = sum(0.9**k / 1.03**k for k in range(1, 9))
    assert float(out["qalys"]) == pytest.approx(life - 0.05 * sum(flows))


def test_yaml_merge_keys_are_accepted(tmp_path):
    """'<<: *anchor' (YAML merge keys) shares a block between strategies; keys given beside it
    win."""
    from vbhc_model.scenario.loader import read_yaml

    data, lines = read_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "m.yaml")
    assert data["c"] == {"x": 1, "y": 3}
    assert lines[("c", "y")] == 4


def test_power_rows_are_kept_only_while_a_block_of_transitions_is_evaluated():
    # Payoffs are evaluated cycle by cycle outside any block: nothing may accumulate there.
    from vbhc_model.model.build import _Evaluator
    from vbhc_model.model.powers import PowerMemo
    from vbhc_model.scenario.expressions import parse_expression

    sc = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")
    ones = np.ones(300)
    ev = _Evaluator({"g": ones}, ones, ones, 1, sc)
    weibull = parse_expression("cycle ** g")
    with ev.power_memo():
        (memo,) = ev.powers.values()  # one level: one environment, one memo
        assert isinstance(memo, PowerMemo) and memo.n_rows == 0
        ev(weibull, np.arange(1, 4), 1)
        assert memo.n_rows == 3
    assert ev.powers is None
    ev(weibull, np.arange(1, 4), 1)  # outside a block: the language's own rule, nothing kept
    assert memo.n_rows == 3
    with pytest.raises(RuntimeError), ev.power_memo():
        raise RuntimeError("an error in a block")
    assert ev.powers is None


def test_with_strategies_keeps_the_named_strategies_in_order_and_the_source():
    sc = load_scenario(SCENARIOS / "chronic_pain_us.yaml")
    names = list(sc.strategies)
    sub = sc.with_strategies(["ipp", "usual_care"])
    assert list(sub.strategies) == ["usual_care", "ipp"]
    stepped = sc.with_strategies(["stepped_care"])  # keeps the strategy it steps up to
    assert list(stepped.strategies) == ["coach_cbt", "stepped_care"]
    assert sub.source is sc.source and sub.name == sc.name
    assert list(sc.strategies) == names  # the original is left as it was


def test_payoffs_on_own_channels_equal_every_channel(monkeypatch):
    """The cohort builds each strategy's payoffs on the channels it fills (its own, and for
    stepped care's chained arms those its unit costs fold into): the totals, per cycle and
    by year, are bit for bit those of the arrays on every channel."""
    from vbhc_model.engines.base import Outputs
    from vbhc_model.model import build
    from vbhc_model.parameters.sampling import sample_draws

    sc = load_scenario(SCENARIOS / "chronic_pain_us.yaml")
    draws = sample_draws(sc, 20, seed=3)
    outputs = Outputs(per_cycle=True, periods=1)
    own = simulate(sc, draws, outputs=outputs)
    sizes = []
    real = build._filled

    def spy(channels, entries, tv_entries):
        cols = real(channels, entries, tv_entries)
        sizes.append(len(cols))
        return cols

    monkeypatch.setattr(build, "_filled", spy)
    simulate(sc, draws, outputs=outputs)
    n = len(build._channels(sc).kind)
    assert sizes and max(sizes) < n  # the arrays really are narrower
    monkeypatch.setattr(build, "_filled", lambda channels, e, t: np.arange(len(channels.kind)))
    every = simulate(sc, draws, outputs=outputs)
    for name in own.data_vars:
        np.testing.assert_array_equal(own[name].values, every[name].values, err_msg=name)


def test_own_channels_keep_a_targets_one_off_unit_costs(monkeypatch):
    """Stepped care's chained arms: a one-off count whose unit cost goes to a category no
    per-cycle payoff fills is kept (it crashed once), equal to the arrays on every channel."""
    from vbhc_model.model import build
    from vbhc_model.parameters.sampling import sample_draws

    sc = load_scenario(Path(__file__).resolve().parents[1] / "data" / "stepped"
                       / "one_off_unit_cost.yaml")
    draws = sample_draws(sc, 5, seed=1) if any(p.distribution for p in sc.parameters.values()) \
        else base_draws(sc)
    own = simulate(sc, draws)
    assert float(own["costs"].sel(strategy="stepped", category="assessment").max()) > 0
    monkeypatch.setattr(build, "_filled", lambda channels, e, t: np.arange(len(channels.kind)))
    every = simulate(sc, draws)
    for name in own.data_vars:
        np.testing.assert_array_equal(own[name].values, every[name].values, err_msg=name)
