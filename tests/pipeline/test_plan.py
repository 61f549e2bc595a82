"""``vbhc plan`` (issue 15): with unlimited capacity the plan's totals are the per-person
results times the patients and their uptake (to 1e-9); cohorts starting in later years enter
the model at its first year; bad plan inputs are file/line/key errors."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from vbhc_model.analysis.budget import plan_totals
from vbhc_model.cli import app
from vbhc_model.engines.base import Outputs
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.plan import plan
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import default_scenario_path, load_scenario

runner = CliRunner()


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(default_scenario_path())


def _with_plan(scenario, **changes):
    data = scenario.plan.model_dump()
    data.update(changes)
    return scenario.model_copy(update={"plan": type(scenario.plan).model_validate(data)})


def test_one_cohort_over_the_model_horizon_is_the_per_person_results_times_its_size(scenario):
    sc = _with_plan(scenario, incident=0.0, prevalent=1000.0)
    sc._source = scenario.source
    totals = plan(sc).totals
    per_person = simulate(sc, base_draws(sc)).isel(draw=0)
    # every patient starts in year 1 (no incident patients), in the new mix's first year
    shares = sc.plan.uptake.by_year(sc.plan.years)["new"]
    first = {s: float(v[0]) for s, v in shares.items()}
    assert first == {"usual_care": 0.9, "coach_cbt": 0.1}
    societal = {"productivity", "patient_time"}
    health = [c for c in per_person["category"].values if c not in societal]
    want = sum(1000.0 * w * float(per_person["costs_undiscounted"].sel(strategy=s,
                                                                      category=health).sum())
               for s, w in first.items())
    got = float(totals["total_budget"].sel(mix="new").isel(draw=0).sum())
    assert got == pytest.approx(want, rel=1e-9)
    hours = float(totals["clinician_hours"].sel(mix="new", role="health_coach").sum())
    assert hours == pytest.approx(
        1000.0 * 0.1 * float(per_person["clinician_hours"].sel(strategy="coach_cbt",
                                                               role="health_coach")), rel=1e-9)


def test_responders_and_completion_are_the_per_person_trace_and_engagement_times_starts(
        scenario):
    """One cohort of 1,000 (90% usual care, 10% coach CBT in year 1): the people responding
    in each calendar year are the starters times each strategy's person-years in the improved
    states within the year, under the scenario's half-cycle correction (cycle k: the mean of
    trace rows k - 1 and k; a loop over the rows here); completers and starters are the coach
    CBT starters times its engagement shares."""
    sc = _with_plan(scenario, incident=0.0, prevalent=1000.0)
    sc._source = scenario.source
    totals = plan(sc).totals
    run = simulate(sc, base_draws(sc), outputs=Outputs(trace=True)).isel(draw=0)
    improved = run["trace"].sel(state=list(sc.plan.responders)).sum("state")
    for y in range(5):
        want = 0.0
        for s, w in (("usual_care", 0.9), ("coach_cbt", 0.1)):
            assert sc.settings.within_cycle_correction == "half_cycle"
            row = [float(improved.sel(strategy=s, cycle=r)) for r in range(12 * y, 12 * y + 13)]
            want += 1000 * w * sum((row[k - 1] + row[k]) / 2 for k in range(1, 13)) / 12
        got = float(totals["responders"].sel(mix="new", calendar_year=y + 1).isel(draw=0))
        assert got == pytest.approx(want, rel=1e-9)
    level = run["engagement"].sel(strategy="coach_cbt")
    completing = totals["completing"].sel(mix="new").isel(draw=0).values
    starters = totals["programme_starters"].sel(mix="new").isel(draw=0).values
    assert completing[0] == pytest.approx(100 * float(level.sel(level="complete")), rel=1e-12)
    assert starters[0] == pytest.approx(100 * (1 - float(level.sel(level="non_start"))),
                                        rel=1e-12)
    assert (completing[1:] == 0).all() and (starters[1:] == 0).all()  # no later cohorts
    # the current mix (usual care only) has no programme: no starters, no completers
    assert float(totals["programme_starters"].sel(mix="current").sum()) == 0


def test_a_linear_ramp_and_its_complement_are_the_same_plan_as_the_per_year_lists(scenario):
    """The default plan's uptake, {linear: {start: 0.1, end: 0.3, years: 3}} with usual care
    as the complement, is the plan of the lists [0.1, 0.2, 0.3, 0.3, 0.3] and [0.9, 0.8, 0.7,
    0.7, 0.7] (shares and every total to 1e-12)."""
    from vbhc_model.analysis.budget import uptake_array

    lists = {"usual_care": [0.9, 0.8, 0.7, 0.7, 0.7], "coach_cbt": [0.1, 0.2, 0.3, 0.3, 0.3]}
    new = scenario.plan.uptake.new
    assert new["usual_care"] == "complement" and new["coach_cbt"].linear is not None
    listed = _with_plan(scenario, uptake={**scenario.plan.uptake.model_dump(), "new": lists})
    strategies = list(scenario.strategies)
    np.testing.assert_allclose(uptake_array(scenario.plan, strategies),
                               uptake_array(listed.plan, strategies), rtol=0, atol=1e-12)
    per_year = simulate(scenario, base_draws(scenario), outputs=Outputs(
        periods=1, variables=("year_costs", "year_qalys", "year_utilisation",
                              "year_clinician_hours")))
    ramp, lst = plan_totals(per_year, scenario.plan), plan_totals(per_year, listed.plan)
    for var in ("total_budget", "qalys", "clinician_hours", "starting"):
        np.testing.assert_allclose(ramp[var].values, lst[var].values, rtol=1e-12)


def test_a_logistic_ramp_is_its_closed_form_and_the_complement_takes_the_rest(scenario):
    """{logistic: {start: 0.05, end: 0.4, midpoint: 3, steepness: 1.5}}: the share in
    calendar year y is 0.05 + 0.35 / (1 + exp(-1.5 (y - 3))) (0.225 at the midpoint), and
    usual care, the complement, one minus it."""
    import math

    from vbhc_model.analysis.budget import uptake_array

    ramp = {"logistic": {"start": 0.05, "end": 0.4, "midpoint": 3, "steepness": 1.5}}
    sc = _with_plan(scenario, uptake={**scenario.plan.uptake.model_dump(), "new": {
        "usual_care": "complement", "coach_cbt": ramp}})
    u = uptake_array(sc.plan, list(sc.strategies))[1]  # the new mix [year, strategy]
    want = [0.05 + 0.35 / (1 + math.exp(-1.5 * (y - 3))) for y in range(1, 6)]
    coach, usual = list(sc.strategies).index("coach_cbt"), list(sc.strategies).index("usual_care")
    np.testing.assert_allclose(u[:, coach], want, rtol=0, atol=1e-12)
    assert u[2, coach] == pytest.approx(0.225, abs=1e-15)
    np.testing.assert_allclose(u[:, usual], 1 - np.array(want), rtol=0, atol=1e-12)
    np.testing.assert_allclose(u.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_a_later_cohort_enters_the_model_at_its_first_year(scenario):
    per_year = simulate(scenario, base_draws(scenario), outputs=Outputs(
        periods=1, variables=("year_costs", "year_qalys", "year_utilisation",
                              "year_clinician_hours")))
    sc = _with_plan(scenario, prevalent=0.0, incident=100.0)
    totals = plan_totals(per_year, sc.plan)
    uc = per_year["year_costs"].sel(strategy="usual_care").isel(draw=0).sum("category").values
    got = totals["total_budget"].sel(mix="current").isel(draw=0).values
    # calendar year y holds the cohorts of years 1..y, in model years y-1..0
    want = [100 * uc[: y + 1].sum() for y in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_plan_cli_prints_and_writes_with_intervals(tmp_path):
    out = tmp_path / "plan"
    result = runner.invoke(app, ["plan", "--draws", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Service plan: " in result.output and "FTE needed / available" in result.output
    assert " to " in result.output.splitlines()[4]  # intervals after a PSA
    import csv
    rows = list(csv.DictReader((out / "plan.csv").open()))
    budget = [r for r in rows if r["measure"] == "total_budget"]
    assert [int(r["calendar_year"]) for r in budget] == [1, 2, 3, 4, 5]
    for r in budget:
        assert float(r["new_low"]) <= float(r["new"]) <= float(r["new_high"])
    # the quadruple aim in one view, in the console and plan_dashboard.csv
    assert "The quadruple aim (new mix, over the plan; means)" in result.output
    board = list(csv.DictReader((out / "plan_dashboard.csv").open()))
    assert {r["aim"] for r in board} == {"population health", "patient experience",
                                         "per-capita cost", "clinicians"}
    gained = next(r for r in board if r["measure"] == "QALYs gained over the current mix")
    qalys = [r for r in rows if r["measure"] == "qalys"]
    assert float(gained["value"]) == pytest.approx(sum(float(r["increment"]) for r in qalys))


@pytest.mark.parametrize("change, message", [
    (lambda p: p["uptake"]["new"].update(coach_cbt=[0.1, 1.2, 0.3, 0.3, 0.3]),
     r"plan\.uptake\.new\.coach_cbt.*less than or equal to 1"),
    (lambda p: p["roles"]["health_coach"].update(fte_available=-1),
     r"plan\.roles\.health_coach\.fte_available.*greater than or equal to 0"),
    (lambda p: p["uptake"]["new"].update(coach_cbt=[0.1, 0.2, 0.3]),
     r"plan\.uptake\.new\.coach_cbt: 3 shares for a plan of 5 years"),
    (lambda p: p["uptake"]["new"].update(usual_care=0.5),
     r"plan\.uptake\.new: the shares of year 1 sum to 0\.6, not 1"),
    (lambda p: p.update(responders=["improved", "improvd"]),
     r"plan\.responders\[1\]: unknown state 'improvd'; did you mean 'improved'\?"),
    (lambda p: p.update(completion={"completed": ["completed"]}),
     r"plan\.completion\.completed\[0\]: 'completed' is no strategy's engagement level; "
     r"did you mean 'complete'\?"),
    (lambda p: p["uptake"]["new"].update(coach=0.1),
     r"plan\.uptake\.new\.coach: unknown strategy 'coach'; did you mean 'coach_cbt'\?"),
    (lambda p: p["uptake"]["new"].update(coach_cbt={"linear": {"start": 0.1, "end": 1.3,
                                                                "years": 3}}),
     r"plan\.uptake\.new\.coach_cbt\.linear\.end: input should be less than or equal to 1"),
    (lambda p: p["uptake"]["new"].update(coach_cbt={"linear": {"start": 0.1, "end": 0.3,
                                                                "yers": 3}}),
     r"plan\.uptake\.new\.coach_cbt\.linear\.yers: unknown key 'yers'; did you mean "
     r"'years'\?"),
    (lambda p: p["uptake"]["new"].update(coach_cbt={"linar": {"start": 0.1}}),
     r"plan\.uptake\.new\.coach_cbt\.linar: unknown key 'linar'; did you mean 'linear'\?"),
    (lambda p: p["uptake"]["new"].update(coach_cbt={"logistic": {
        "start": 0.05, "end": 0.4, "midpoint": 3, "steepness": -1}}),
     r"plan\.uptake\.new\.coach_cbt\.logistic\.steepness: input should be greater than 0"),
    (lambda p: p["uptake"]["new"].update(usual_care="complment"),
     r"plan\.uptake\.new\.usual_care: must be one of 'complement'; got 'complment'"),
    (lambda p: p["uptake"]["new"].update(coach_cbt="complement"),
     r"plan\.uptake\.new\.coach_cbt: 'complement' is given to usual_care and coach_cbt"),
    (lambda p: p["roles"]["health_coach"].update(caseload_limit=0),
     r"plan\.roles\.health_coach\.caseload_limit: input should be greater than 0"),
    (lambda p: p["waiting"].update(dropout=1),
     r"plan\.waiting\.dropout: input should be less than 1"),
    (lambda p: p["waiting"].update(dropout=-0.1),
     r"plan\.waiting\.dropout: input should be greater than or equal to 0"),
    (lambda p: p["uptake"]["new"].update(paintrainer=[0.5, 0.5, 0.5, 0.8, 0.5]),
     r"plan\.uptake\.new\.usual_care: the other shares of year 4 sum to 1\.1: nothing is "
     r"left for 'complement'"),
])
def test_bad_plan_inputs_are_file_line_key_errors(tmp_path, change, message):
    data = yaml.safe_load(default_scenario_path().read_text())
    change(data["plan"])
    _plan_fails(data, tmp_path, message)


def _plan_fails(data: dict, tmp_path, message: str) -> None:
    """``vbhc plan`` of the default scenario changed to ``data`` is a located error (exit 2)
    matching ``message`` that writes nothing."""
    import re

    fits = default_scenario_path().parent / "fits"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False).replace("file: fits/",
                                                                   f"file: {fits}/"))
    result = runner.invoke(app, ["plan", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output), result.output
    assert "line " in result.output and not (tmp_path / "o").exists()


def test_a_scenario_without_a_plan_is_a_clear_error(tmp_path):
    from tests.conftest import ROOT

    result = runner.invoke(app, ["plan", str(ROOT / "scenarios" / "reference" /
                                              "thr_dmhee.yaml"), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and "has no 'plan:' section: nothing to plan" in result.output


def test_waiting_follows_the_mmc_queue_while_the_places_suffice(scenario):
    from vbhc_model.analysis.queue import mmc_wait
    from vbhc_model.pipeline.plan import programme_weeks

    roles = {"health_coach": {"fte_available": 2.6, "hours_per_fte": 1500.0, "source": "t"}}
    sc = _with_plan(scenario, roles=roles)
    sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(mix="new")
    per = simulate(sc, base_draws(sc)).isel(draw=0)
    h = float(per["clinician_hours"].sel(strategy="coach_cbt", role="health_coach"))
    weeks = programme_weeks(sc)["coach_cbt"]
    starts = float(t["starting"].sel(strategy="coach_cbt", calendar_year=1))
    places = 2.6 * 1500 / 52 / (h / weeks)
    w, _, _ = mmc_wait(starts / 52, weeks, places)
    got = float(t["wait_weeks"].sel(plan_role="health_coach", calendar_year=1))
    assert got == pytest.approx(w, rel=1e-9)
    assert float(t["backlog"].sel(plan_role="health_coach", calendar_year=1)) == 0
    want_years = starts * w / 52
    assert float(t["qalys_lost_waiting"].sel(calendar_year=1)) == pytest.approx(
        want_years * sc.plan.waiting.utility_loss, rel=1e-9)


def test_too_few_clinicians_leave_a_backlog_that_costs_net_benefit(scenario):
    roles = {"health_coach": {"fte_available": [1, 1, 3, 3, 3], "hours_per_fte": 1500.0,
                              "source": "t"}}
    sc = _with_plan(scenario, roles=roles)
    sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(mix="new")
    backlog = t["backlog"].sel(plan_role="health_coach").values
    assert backlog[0] > 0 and backlog[1] > 0 and backlog[-1] == 0  # cleared with 3 FTE
    assert (t["occupancy"].sel(plan_role="health_coach").values[:2] > 1).all()
    lost = t["net_benefit_lost"].values
    assert lost[0] > 0 and lost[0] == pytest.approx(
        sc.settings.wtp[0] * float(t["qalys_lost_waiting"].sel(calendar_year=1)))


def test_a_backlog_is_cleared_in_years_without_new_starts(scenario):
    """A year with a backlog and no new starts keeps its clinicians' places (found in review)."""
    roles = {"health_coach": {"fte_available": 0.5, "hours_per_fte": 1500.0, "source": "t"}}
    sc = _with_plan(scenario, incident=0.0, roles=roles)
    sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(plan_role="health_coach", mix="new")
    places = t["places"].values
    assert (places == places[0]).all() and places[0] > 0
    backlog = t["backlog"].values
    assert backlog[0] > 0 and (np.diff(backlog) <= 0).all() and backlog[-1] == 0
    assert np.isfinite(t["wait_weeks"].values).all()


def test_a_capacity_limit_changes_which_mix_delivers_the_most_net_benefit(scenario, tmp_path):
    """Issue 15: with the plan's 2 coaches, offering coach-led CBT delivers the most net
    benefit; with half a coach (the 'half_a_coach' variant) its waiting costs more than its
    advantage, and the same uptake of painTRAINER (no clinicians) delivers more."""
    result = runner.invoke(app, ["plan", "--variant", "half_a_coach", "--out",
                                 str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "highest: paintrainer_instead at 50,000" in result.output
    best = {}
    for variant in (None, "half_a_coach"):
        nb = plan(scenario.with_variant(variant)).totals["net_benefit"].isel(draw=0).sel(
            wtp=scenario.settings.wtp[0])
        best[variant] = str(nb["mix"].values[int(nb.argmax("mix"))])
    assert best == {None: "new", "half_a_coach": "paintrainer_instead"}


@pytest.mark.parametrize("engine", ["cohort", "microsim"])
def test_occupancy_of_every_living_state_is_the_life_years(scenario, engine):
    """The person-time channel (Outputs.occupancy) over all living states, summed over the
    years, is the undiscounted life years, for every strategy (stepped care's chained arms
    included) and in both engines; over no responder state's complement it adds up too."""
    sc = scenario
    if engine == "microsim":
        sc = sc.model_copy(update={"settings": sc.settings.model_copy(
            update={"engine": "microsim", "patients": 2000})})
    alive = [s for s, st in sc.states.items() if st.alive]
    out = simulate(sc, base_draws(sc), outputs=Outputs(
        periods=1, occupancy=tuple(alive),
        variables=("year_occupancy", "life_years_undiscounted"))).isel(draw=0)
    np.testing.assert_allclose(out["year_occupancy"].sum("year"),
                               out["life_years_undiscounted"], rtol=1e-12)
    part = simulate(sc, base_draws(sc), outputs=Outputs(
        periods=1, occupancy=tuple(sc.plan.responders),
        variables=("year_occupancy",))).isel(draw=0)["year_occupancy"]
    rest = [s for s in alive if s not in sc.plan.responders]
    other = simulate(sc, base_draws(sc), outputs=Outputs(
        periods=1, occupancy=tuple(rest), variables=("year_occupancy",))).isel(draw=0)
    np.testing.assert_allclose(part + other["year_occupancy"], out["year_occupancy"],
                               rtol=1e-12)


def _waiting(sc, **changes):
    return {**sc.plan.waiting.model_dump(), **changes}


def test_without_dropout_the_plan_is_unchanged(scenario):
    """dropout: 0 is the plan without the key, to the bit, and adds no variable."""
    sc = _with_plan(scenario, waiting=_waiting(scenario, dropout=0.0))
    sc._source = scenario.source
    base, zero = plan(scenario).totals, plan(sc).totals
    for ds in (base, zero):
        ds.attrs.pop("created")  # the time it was made
    assert zero.identical(base)
    assert "dropped_out" not in zero and "dropped_out_by_strategy" not in zero


def test_giving_up_shrinks_the_backlog_by_the_stated_share(scenario):
    """One role, two years: 600 patients come for coach CBT in year 1 (10% of 6,000), the
    half coach's places take K a year, and a share p = 0.3 of those waiting a whole year give
    up (a hazard r = -ln(1 - p)). The fluid backlog dQ/dt = 600 - K - r Q from 0 ends year 1
    at B1 = (600 - K)(1 - e^-r) / r and loses the rest, 600 - K - B1; with no coach and no
    new patients in year 2 it shrinks by the stated share: B2 = 0.7 B1, 0.3 B1 giving up.
    They get usual care instead: each year's budget moves by those who gave up times usual
    care's per-person costs less coach CBT's, from the year they gave up (1e-9)."""
    import math

    from vbhc_model.pipeline.plan import programme_weeks

    roles = {"health_coach": {"fte_available": [0.5, 0.0], "hours_per_fte": 1500.0,
                              "source": "t"}}
    common = dict(years=2, prevalent=6000.0, incident=0.0, roles=roles)
    no = _with_plan(scenario, **common, waiting=_waiting(scenario, utility_loss=0.0))
    sc = _with_plan(scenario, **common, waiting=_waiting(scenario, utility_loss=0.0,
                                                          dropout=0.3))
    no._source = sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(mix="new", plan_role="health_coach")
    t0 = plan(no).totals.isel(draw=0).sel(mix="new", plan_role="health_coach")
    per = simulate(sc, base_draws(sc), outputs=Outputs(
        periods=1, variables=("year_costs", "year_clinician_hours"))).isel(draw=0)
    weeks = programme_weeks(sc)["coach_cbt"]
    h = float(per["year_clinician_hours"].sel(strategy="coach_cbt", role="health_coach").sum())
    places = 0.5 * 1500 / 52 / (h / weeks)
    assert float(t["places"].sel(calendar_year=1)) == pytest.approx(places, rel=1e-12)
    k = math.floor(places) * 52 / weeks  # patients a year through the places
    r = -math.log(0.7)
    b1 = (600 - k) * (1 - math.exp(-r)) / r
    got = t["backlog"].values
    assert got[0] == pytest.approx(b1, rel=1e-12)
    assert got[1] == pytest.approx(0.7 * b1, rel=1e-12)
    gave_up = t["dropped_out"].values
    np.testing.assert_allclose(gave_up, [600 - k - b1, 0.3 * b1], rtol=1e-12)
    np.testing.assert_allclose(t["waiting_years"].values, gave_up / r, rtol=1e-12)
    assert t0["backlog"].values[1] == pytest.approx(600 - k, rel=1e-12)  # nobody gives up
    # the budget: those who gave up cost usual care's, not coach CBT's, from that year on
    health = [c for c in per["category"].values if c not in ("productivity", "patient_time")]
    cost = per["year_costs"].sel(category=health).sum("category")
    diff = (cost.sel(strategy="usual_care") - cost.sel(strategy="coach_cbt")).values
    want = [gave_up[0] * diff[0], gave_up[0] * diff[1] + gave_up[1] * diff[0]]
    np.testing.assert_allclose(t["total_budget"].values - t0["total_budget"].values, want,
                               rtol=1e-9)
    # the coach's hours are not spent on them
    hours = per["year_clinician_hours"].sel(strategy="coach_cbt", role="health_coach").values
    np.testing.assert_allclose(
        (t0["clinician_hours"] - t["clinician_hours"]).sel(role="health_coach").values,
        [gave_up[0] * hours[0], gave_up[0] * hours[1] + gave_up[1] * hours[0]], rtol=1e-9)


def test_giving_up_costs_the_programmes_net_benefit(scenario):
    """With nothing lost while waiting, patients giving up coach CBT for usual care lose its
    net benefit: the new mix's falls, the current mix (no coach) is unchanged."""
    roles = {"health_coach": {"fte_available": 0.5, "hours_per_fte": 1500.0, "source": "t"}}
    free = dict(utility_loss=0.0, extra_cost=0.0)
    out = {}
    for p in (0.0, 0.2):
        sc = _with_plan(scenario, roles=roles, waiting=_waiting(scenario, **free, dropout=p))
        sc._source = scenario.source
        out[p] = plan(sc).totals["net_benefit"].isel(draw=0)
    assert float(out[0.2].sel(mix="current", wtp=50000)) == float(
        out[0.0].sel(mix="current", wtp=50000))
    assert (out[0.2].sel(mix="new") < out[0.0].sel(mix="new")).all()


def test_patients_who_gave_up_are_in_the_plan_files(tmp_path):
    """The half_a_coach variant ships a drop-out (an ASSUMPTION): plan.csv, plan.nc, the
    console and the dashboard report those who gave up."""
    import csv

    import xarray as xr

    out = tmp_path / "p"
    result = runner.invoke(app, ["plan", "--variant", "half_a_coach", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "gave up waiting" in result.output
    rows = [r for r in csv.DictReader((out / "plan.csv").open())
            if r["measure"] == "dropped_out_health_coach"]
    nc = xr.load_dataset(out / "plan.nc")
    got = nc["queue_dropped_out_health_coach"].sel(stat="mean").values
    assert len(rows) == 5 and (got > 0).all()
    np.testing.assert_allclose([float(r["new"]) for r in rows], got, rtol=1e-9)  # csv: 10 digits
    board = list(csv.DictReader((out / "plan_dashboard.csv").open()))
    gave = next(r for r in board if r["measure"].startswith("patients who gave up waiting"))
    assert float(gave["value"]) == pytest.approx(got.sum())


def test_giving_up_needs_usual_care_first(tmp_path):
    data = yaml.safe_load(default_scenario_path().read_text())
    data["plan"]["waiting"]["dropout"] = 0.2
    strategies = data["strategies"]
    data["strategies"] = {"coach_cbt": strategies.pop("coach_cbt"), **strategies}
    _plan_fails(data, tmp_path, r"plan\.waiting\.dropout: those who give up waiting get the "
                r"scenario's first strategy, 'coach_cbt', which is a programme")


def test_caseload_per_fte_and_a_caseload_limit(scenario):
    """Caseload per FTE is the patients holding a place on average over the year (served x
    weeks held / 52) per FTE available: within 2.6 coaches' places, year 1's 600 coach CBT
    patients x its weeks / 52 / 2.6. A caseload limit of 20 per FTE caps 2 coaches' places at
    40 (their hours give more): the places are full (20 per FTE) and the year's backlog is the
    600 less the 40 x 52 / weeks the places take."""
    from vbhc_model.pipeline.plan import programme_weeks

    weeks = programme_weeks(scenario)["coach_cbt"]
    roles = {"health_coach": {"fte_available": 2.6, "hours_per_fte": 1500.0, "source": "t"}}
    sc = _with_plan(scenario, roles=roles)
    sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(mix="new", plan_role="health_coach")
    assert float(t["backlog"].sel(calendar_year=1)) == 0
    assert float(t["caseload_per_fte"].sel(calendar_year=1)) == pytest.approx(
        600 * weeks / 52 / 2.6, rel=1e-12)
    free = plan(scenario).totals.isel(draw=0).sel(mix="new", plan_role="health_coach")
    assert float(free["places"].sel(calendar_year=1)) > 40
    roles = {"health_coach": {"fte_available": 2, "hours_per_fte": 1500.0,
                              "caseload_limit": 20, "source": "t"}}
    sc = _with_plan(scenario, roles=roles)
    sc._source = scenario.source
    t = plan(sc).totals.isel(draw=0).sel(mix="new", plan_role="health_coach")
    np.testing.assert_allclose(t["places"].values, 40.0, rtol=1e-12)
    assert float(t["caseload_per_fte"].sel(calendar_year=1)) == pytest.approx(20, rel=1e-12)
    assert float(t["backlog"].sel(calendar_year=1)) == pytest.approx(600 - 40 * 52 / weeks,
                                                                     rel=1e-12)


def test_the_plans_console_and_dashboard_speak_labels_and_the_currency(tmp_path):
    """Issue 11 (readability): the plan's tables name strategies and roles by their labels and
    money by its currency and price year, never by code or 'currency'."""
    import pandas as pd

    res = CliRunner().invoke(app, ["plan", str(default_scenario_path()), "--out",
                                   str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert "Coach-led telehealth CBT" in res.output and "Usual care" in res.output
    assert "Health coach: FTE needed / available" in res.output
    assert "Health coach: occupancy" in res.output
    board = pd.read_csv(tmp_path / "p" / "plan_dashboard.csv")
    assert "currency" not in set(board["unit"])
    assert (board.loc[board["measure"].str.startswith("per member per month"), "unit"]
            == "USD 2025").all()
