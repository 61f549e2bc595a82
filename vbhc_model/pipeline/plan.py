"""``vbhc plan``: the scenario's service plan (``plan:``), year by year, with PSA intervals.

The model runs once per draw with its payoffs totalled by year of the model
(``Outputs(periods=1)``: undiscounted, as budget impact is reported); the plan scales them to
the patients starting care in each calendar year and the mix they start in
(:mod:`vbhc_model.analysis.budget`).
"""

from __future__ import annotations

import dataclasses

from vbhc_model import dims
from vbhc_model.analysis.budget import (
    plan_completion,
    plan_dropouts,
    plan_net_benefit,
    plan_queue,
    plan_totals,
    responders_by_year,
)
from vbhc_model.engines.base import Outputs
from vbhc_model.errors import VbhcError
from vbhc_model.parameters.draws import base_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.results import PlanResult
from vbhc_model.scenario.schema import Scenario

__all__ = ["PLAN_OUTPUTS", "plan"]

PLAN_OUTPUTS = Outputs(periods=1, variables=("total_cost", "year_costs", "year_qalys",
                                             "year_utilisation", "year_clinician_hours",
                                             "engagement"))


def programme_weeks(scenario: Scenario) -> dict[str, float]:
    """Each strategy's programme duration in weeks (a stepped strategy: its targets' longest;
    0 without a programme): how long a patient holds a clinician's place."""
    cycle_weeks = scenario.settings.cycle_length * 52

    def own(name: str) -> float:
        prog = scenario.strategies[name].programme
        return prog.duration * cycle_weeks if prog is not None else 0.0

    return {name: max([own(name)] + [own(step.switch_to) for step in st.steps])
            for name, st in scenario.strategies.items()}


def plan(scenario: Scenario, *, draws: int = 0, seed: int | None = None,
         sampling: str = "mc", progress=None) -> PlanResult:
    """The plan's totals by calendar year: on the base case, or on ``draws`` PSA draws
    (``progress(done, draws)`` after each chunk of them).

    Raises
    ------
    VbhcError
        The scenario has no ``plan:`` section.
    """
    if scenario.plan is None:
        file = scenario.source.file if scenario.source else "the scenario"
        raise VbhcError(f"{file} has no 'plan:' section: nothing to plan "
                        "(docs/planning.md shows one)")
    outputs = PLAN_OUTPUTS
    if scenario.plan.responders:  # the person-time in those states, by year
        outputs = dataclasses.replace(outputs, occupancy=tuple(scenario.plan.responders),
                                      variables=outputs.variables + ("year_occupancy",))
    if draws:
        per_year = run_psa(scenario, draws, seed=seed, method=sampling, outputs=outputs,
                           progress=progress)
    else:
        per_year = simulate(scenario, base_draws(scenario), outputs=outputs)
    if scenario.plan.responders:
        per_year["year_responders"] = responders_by_year(
            per_year["year_occupancy"], scenario.settings.n_cycles * scenario.settings.cycle_length)
        per_year = per_year.drop_vars("year_occupancy")
    outside = frozenset() if scenario.settings.perspective == "societal" else frozenset(
        name for name, c in scenario.cost_categories.items() if c.perspective == "societal")
    totals = plan_totals(per_year, scenario.plan, outside)
    if scenario.plan.roles:
        queue = plan_queue(totals, per_year, scenario.plan, programme_weeks(scenario),
                           scenario.settings.wtp[0])
        totals = totals.merge(queue.drop_vars(dims.DRAW, errors="ignore"), compat="override")
        if "dropped_out_by_strategy" in totals:  # they get the first strategy (usual care)
            totals = plan_dropouts(totals, per_year, scenario.plan, outside,
                                   next(iter(scenario.strategies)))
    if scenario.plan.completion is not None:
        totals = totals.assign(plan_completion(totals, per_year["engagement"],
                                               scenario.plan.completion))
    totals["net_benefit"] = plan_net_benefit(totals, scenario.settings.wtp)
    if "plan_role" in totals.dims:  # display labels, for the dashboard and the report
        totals = totals.assign_coords(plan_role_label=("plan_role", [
            scenario.roles[str(r)].label or str(r) for r in totals["plan_role"].values]))
    totals.attrs.update({k: v for k, v in per_year.attrs.items()
                         if k in ("scenario", "scenario_title", "scenario_file",
                                  "scenario_sha256", "currency", "price_year", "perspective",
                                  "engine", "seed", "vbhc_model_version", "created",
                                  "variant")})
    totals.attrs["n_draws"] = int(draws) if draws else 1
    return PlanResult(scenario=scenario, totals=totals)
