"""A service plan's budget impact: per-person results by year of the model, scaled to the
patients who start care in each calendar year and the strategy mix they start in.

Patients start care in cohorts, one per calendar year c = 0..Y-1 (the prevalent patients and
that year's incident ones in year 0, the incident ones later); a share u[m, c, s] of cohort c
starts strategy s under mix m (the current mix or the new one). A patient who started in year c
is in year y - c of the model in calendar year y, so

    budget[m, y] = sum over c <= y of N_c * sum over s of u[m, c, s] * cost_s[y - c]

with cost_s[k] the undiscounted cost per person in year k of the model (zero after its
horizon), as budget-impact analyses report (ISPOR good practice: undiscounted, by year). The
same sum gives care used, clinician hours and QALYs by year. :func:`plan_totals` treats every
patient when they start (unlimited capacity); :func:`plan_queue` adds the waiting the plan's
clinicians imply (an M/M/c queue, or a backlog when they do not suffice) and what it costs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims

__all__ = ["dropout_moves", "mixes", "plan_completion", "plan_dropouts", "plan_net_benefit",
           "plan_queue", "plan_totals", "responders_by_year", "uptake_array"]


def mixes(plan) -> dict:
    """The plan's mixes in order: ``current``, ``new``, then its alternatives."""
    return plan.uptake.mixes()


def uptake_array(plan, strategies) -> np.ndarray:
    """``[mix, year, strategy]`` shares from a scenario's ``plan.uptake`` (numbers, lists,
    ramps and a complement resolved year by year: ``plan.uptake.by_year``)."""
    names = list(strategies)
    all_mixes = plan.uptake.by_year(plan.years)
    out = np.zeros((len(all_mixes), plan.years, len(names)))
    for m, shares in enumerate(all_mixes.values()):
        for name, v in shares.items():
            out[m, :, names.index(name)] = v
    return out


def plan_totals(per_year: xr.Dataset, plan, outside: frozenset[str] = frozenset()
                ) -> xr.Dataset:
    """The plan's totals by calendar year for each mix.

    Parameters
    ----------
    per_year : xarray.Dataset
        ``year_costs``, ``year_qalys``, ``year_utilisation``, ``year_clinician_hours`` per
        person by year of the model (dims ``draw``, ``strategy``, ``year`` ...), as
        :func:`vbhc_model.pipeline.simulate.simulate` gives them with ``Outputs(periods=1)``.
    plan : Plan
        The scenario's ``plan:`` section.
    outside : set of str
        Cost categories outside the perspective (societal ones under the health-care
        perspective): in ``budget`` by category, not in ``total_budget``.

    Returns
    -------
    xarray.Dataset
        Dims ``draw`` x ``mix`` x ``calendar_year`` (x category / role / service):
        ``budget`` (by cost category), ``total_budget``, ``qalys``, ``utilisation``,
        ``clinician_hours``, ``fte_needed`` (roles the plan lists), and ``starting``
        (``mix`` x ``calendar_year`` x ``strategy``: patients starting each strategy),
        ``fte_available`` (role x calendar year), ``members``.
    """
    strategies = [str(s) for s in per_year[dims.STRATEGY].values]
    u = uptake_array(plan, strategies)  # [mix, c, s]
    n_years = plan.years
    entrants = np.full(n_years, plan.incident, dtype=float)
    entrants[0] += plan.prevalent
    starting = entrants[None, :, None] * u  # [mix, c, s]
    mix_names = list(mixes(plan))
    out = xr.Dataset(coords={"mix": mix_names, "calendar_year": np.arange(1, n_years + 1)})
    base = (dims.DRAW, "mix", "calendar_year")
    for name, (var, dim) in _SUMMED.items():
        if var in per_year:
            out[name] = (base + ((dim,) if dim else ()), _cohort_sum(per_year[var], starting))
    out = out.assign_coords({dims.DRAW: per_year[dims.DRAW].values,
                             dims.CATEGORY: per_year[dims.CATEGORY].values,
                             dims.SERVICE: per_year[dims.SERVICE].values,
                             dims.ROLE: per_year[dims.ROLE].values,
                             dims.STRATEGY: strategies})
    out["starting"] = (("mix", "calendar_year", dims.STRATEGY), starting)
    members = plan.members if plan.members is not None else float(entrants.sum())
    out.attrs.update(members=members,
                     members_basis="members" if plan.members is not None
                     else "patients in the plan", source=plan.source,
                     outside_budget=", ".join(sorted(outside)))
    return _derived(out, per_year, plan, outside)


#: The plan's totals summed over cohorts: name -> (per-person variable by year of the model,
#: its other dimension).
_SUMMED = {"budget": ("year_costs", dims.CATEGORY), "qalys": ("year_qalys", None),
           "utilisation": ("year_utilisation", dims.SERVICE),
           "clinician_hours": ("year_clinician_hours", dims.ROLE),
           "responders": ("year_responders", None)}


def _cohort_sum(per_person: xr.DataArray, starting: np.ndarray) -> np.ndarray:
    """``sum over c <= y of sum over s of starting[.., m, c, s] x x_s[y - c]``: the per-person
    values by year of the model (``[draw, strategy, year, ...]``) over the cohorts starting in
    the plan's calendar years; ``starting`` is ``[mix, c, s]``, or ``[draw, mix, c, s]`` (the
    drop-outs' moves, which differ by draw). Returns ``[draw, mix, calendar year, ...]``."""
    x = per_person.transpose(dims.DRAW, dims.STRATEGY, dims.YEAR, ...).values
    per_draw = starting.ndim == 4
    if per_draw:  # only the strategies moved (a batched product over draws is the cost)
        used = np.flatnonzero(np.any(starting != 0, axis=(0, 1, 2)))
        x, starting = x[:, used], starting[..., used]
    n_model, n_years = x.shape[2], starting.shape[-2]
    total = np.zeros((x.shape[0], starting.shape[-3], n_years) + x.shape[3:])
    for c in range(n_years):
        k = np.arange(n_years - c)  # calendar years c.. are model years 0..
        k = k[k < n_model]
        if not k.size:
            continue
        # [draw, mix, year in model, ...]
        if per_draw:
            xk = x[:, :, k]
            part = np.matmul(starting[:, :, c], xk.reshape(xk.shape[0], xk.shape[1], -1)
                             ).reshape((xk.shape[0], starting.shape[1]) + xk.shape[2:])
        else:
            part = np.einsum("ms,dsk...->dmk...", starting[:, c], x[:, :, k])
        total[:, :, c + k] += part
    return total


def _derived(out: xr.Dataset, per_year: xr.Dataset, plan, outside) -> xr.Dataset:
    """The totals that follow from the summed ones: ``total_budget`` (the categories inside
    the perspective), ``fte_needed`` and ``fte_available`` (the roles the plan lists),
    ``pmpm``."""
    inside = [c not in outside for c in per_year[dims.CATEGORY].values]
    out["total_budget"] = (out["budget"].dims[:3], out["budget"].values[..., inside].sum(-1))
    roles = [r for r in plan.roles if r in list(per_year[dims.ROLE].values)]
    if roles:
        hours = out["clinician_hours"].sel({dims.ROLE: roles})
        per_fte = xr.DataArray([plan.roles[r].hours_per_fte for r in roles],
                               dims=["plan_role"], coords={"plan_role": roles})
        out["fte_needed"] = hours.rename({dims.ROLE: "plan_role"}) / per_fte
        avail = np.array([np.broadcast_to(plan.roles[r].fte_available, (plan.years,))
                          for r in roles], dtype=float)
        out["fte_available"] = (("plan_role", "calendar_year"), avail)
    out["pmpm"] = out["total_budget"] / out.attrs["members"] / 12
    return out


def plan_dropouts(totals: xr.Dataset, per_year: xr.Dataset, plan, outside,
                  to: str) -> xr.Dataset:
    """The plan's totals with the patients who gave up waiting (``totals`` from
    :func:`plan_totals` merged with :func:`plan_queue`'s ``dropped_out_by_strategy``) moved
    from their programme to the strategy ``to`` (usual care), counted in the cohort of the
    year they gave up: the programme's per-person results are not spent on them, usual care's
    are. ``starting`` (the patients coming for each strategy) is unchanged; the moves are in
    :func:`dropout_moves`."""
    delta = dropout_moves(totals, to).transpose(dims.DRAW, "mix", "calendar_year",
                                                dims.STRATEGY).values
    out = totals.copy()
    for name, (var, _) in _SUMMED.items():
        if var in per_year and name in out:
            out[name] = out[name] + _cohort_sum(per_year[var], delta)
    out.attrs["dropout_to"] = to
    return _derived(out, per_year, plan, outside)


def dropout_moves(totals: xr.Dataset, to: str) -> xr.DataArray:
    """Patients moved by giving up waiting, ``[draw, mix, calendar_year, strategy]``: minus
    those who gave up each programme, plus all of them on the strategy ``to``."""
    moved = totals["dropped_out_by_strategy"]
    onto = xr.DataArray(np.asarray(totals[dims.STRATEGY].values == to, dtype=float),
                        dims=[dims.STRATEGY], coords={dims.STRATEGY: totals[dims.STRATEGY]})
    return moved.sum(dims.STRATEGY) * onto - moved


def plan_queue(totals: xr.Dataset, per_year: xr.Dataset, plan, weeks: dict[str, float],
               wtp: float) -> xr.Dataset:
    """Waiting for the clinicians of each role in the plan, under the new mix, year by year.

    A role is a pool of places: the patients its FTEs can carry at once (weekly hours
    available / the weekly hours a patient needs, averaged over the strategies that use the
    role, weighted by their starts); a patient holds a place for its programme's duration
    (``weeks[strategy]``). While the offered load stays below the places, the mean wait is the
    M/M/c queue's (:func:`vbhc_model.analysis.queue.mmc_wait_array`); when it reaches them,
    the patients the places cannot take form a backlog carried to the next year (fluid), and
    the mean wait is the backlog over the throughput (Little's law). Waiting costs
    ``plan.waiting.utility_loss`` QALYs and ``plan.waiting.extra_cost`` per year waited; a
    share ``plan.waiting.dropout`` of those waiting a whole year give up (a constant hazard,
    :func:`_giving_up`), leaving the queue.

    Returns
    -------
    xarray.Dataset
        Over ``draw`` x ``mix`` x ``plan_role`` x ``calendar_year``: ``starts_needing``,
        ``places``,
        ``occupancy`` (offered load / places), ``wait_weeks``, ``backlog`` (end of year),
        ``waiting_years`` (patient-years spent waiting), ``caseload_per_fte`` (patients
        holding a place at a time, on average over the year, per FTE available), with a role's
        ``caseload_limit`` the places capped at it x FTE, with ``plan.waiting.dropout``
        ``dropped_out`` (patients giving up waiting; ``dropped_out_by_strategy`` over
        ``draw`` x ``mix`` x ``calendar_year`` x ``strategy``: the programmes they gave up);
        and over ``draw`` x ``mix`` x ``calendar_year``: ``qalys_lost_waiting``,
        ``cost_waiting``, ``net_benefit_lost`` (at ``wtp``).
    """
    roles = [r for r in plan.roles if r in list(per_year[dims.ROLE].values)]
    strategies = [str(s) for s in per_year[dims.STRATEGY].values]
    n_draws = per_year.sizes[dims.DRAW]
    n_years = plan.years
    hours = per_year["year_clinician_hours"].sum(dims.YEAR).transpose(
        dims.DRAW, dims.STRATEGY, dims.ROLE)
    wait_cost = plan.waiting or type("W", (), {"utility_loss": 0.0, "extra_cost": 0.0})()
    mix_names = [str(m) for m in totals["mix"].values]
    dur = np.array([weeks.get(s, 0.0) for s in strategies])
    # an annual probability of giving up as a constant hazard (per year waited)
    rate = -np.log1p(-getattr(wait_cost, "dropout", 0.0))
    shape = (n_draws, len(mix_names), len(roles), n_years)
    names = ["starts_needing", "places", "occupancy", "wait_weeks", "backlog", "waiting_years",
             "caseload_per_fte"]
    out = {k: np.zeros(shape) for k in names + (["dropped_out"] if rate > 0 else [])}
    moved = np.zeros((n_draws, len(mix_names), n_years, len(strategies)))
    for i, mix in enumerate(mix_names):
        start = totals["starting"].sel(mix=mix).values  # [year, strategy]
        for j, role in enumerate(roles):
            h = hours.sel({dims.ROLE: role}).values  # [draw, strategy]: hours per patient
            fte = np.broadcast_to(plan.roles[role].fte_available, (n_years,)).astype(float)
            found = _role_queue(start, h, dur, fte, plan.roles[role].hours_per_fte, rate,
                                plan.roles[role].caseload_limit)
            if rate > 0:
                moved[:, i] += found.pop("dropped_by_strategy")
            for k, v in found.items():
                out[k][:, i, j] = v
    dims4 = (dims.DRAW, "mix", "plan_role", "calendar_year")
    ds = xr.Dataset({k: (dims4, v) for k, v in out.items()},
                    coords={dims.DRAW: per_year[dims.DRAW].values, "mix": mix_names,
                            "plan_role": roles, "calendar_year": np.arange(1, n_years + 1)})
    limits = [plan.roles[r].caseload_limit for r in roles]
    if any(v is not None for v in limits):
        ds["caseload_limit"] = ("plan_role", [np.nan if v is None else v for v in limits])
    if rate > 0:  # summed over the roles (a strategy using two roles would count twice)
        ds["dropped_out_by_strategy"] = ((dims.DRAW, "mix", "calendar_year", dims.STRATEGY),
                                         moved)
        ds = ds.assign_coords({dims.STRATEGY: strategies})
    years = ds["waiting_years"].sum("plan_role")
    ds["qalys_lost_waiting"] = years * wait_cost.utility_loss
    ds["cost_waiting"] = years * wait_cost.extra_cost
    ds["net_benefit_lost"] = wtp * ds["qalys_lost_waiting"] + ds["cost_waiting"]
    ds.attrs["wtp"] = float(wtp)
    return ds


def _role_queue(start: np.ndarray, h: np.ndarray, dur: np.ndarray, fte: np.ndarray,
                hours_per_fte: float, rate: float = 0.0, caseload_limit: float | None = None
                ) -> dict[str, np.ndarray]:
    """One role's queue over the plan's years for one mix: ``start[year, strategy]`` patients
    starting, ``h[draw, strategy]`` the role's hours per patient, ``dur[strategy]`` weeks a
    patient holds a place, ``rate`` the hazard of giving up while waiting (per year),
    ``caseload_limit`` the most patients an FTE carries at once (the places are the fewer of
    the hours' and the caseload's); each result ``[draw, year]`` (with a rate:
    ``dropped_out``, and ``dropped_by_strategy`` ``[draw, year, strategy]``: split as the
    year's starts needing the role). ``caseload_per_fte``: the patients holding a place on
    average over the year (those served x weeks held / 52) per FTE available."""
    from vbhc_model.analysis.queue import mmc_wait_array

    n_draws, n_years = h.shape[0], start.shape[0]
    uses = (h > 0) & (dur > 0)  # [draw, strategy]
    names = ["starts_needing", "places", "occupancy", "wait_weeks", "backlog", "waiting_years",
             "caseload_per_fte"]
    if rate > 0:
        names.append("dropped_out")
    out = {k: np.zeros((n_draws, n_years)) for k in names}
    if rate > 0:
        out["dropped_by_strategy"] = np.zeros((n_draws, n_years, start.shape[1]))
    backlog = np.zeros(n_draws)
    # a year without new starts keeps the last year's mix of programmes (its backlog's)
    last_weeks, last_weekly = np.zeros(n_draws), np.zeros(n_draws)
    last_share = np.zeros((n_draws, start.shape[1]))
    for y in range(n_years):
        a = np.where(uses, start[y], 0.0)  # starts needing the role [draw, strategy]
        n = a.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_weeks = np.where(n > 0, (a * dur).sum(axis=1) / n, last_weeks)
            weekly = np.where(n > 0, (a * h).sum(axis=1) / n / np.maximum(mean_weeks, 1e-12),
                              last_weekly)
            places = np.where(weekly > 0, fte[y] * hours_per_fte / 52
                              / np.maximum(weekly, 1e-12), 0.0)
        if caseload_limit is not None:
            places = np.minimum(places, fte[y] * caseload_limit)
        last_weeks, last_weekly = mean_weeks, weekly
        lam = (n + backlog) / 52  # the year's starts and last year's backlog, per week
        w, p_wait = mmc_wait_array(lam, mean_weeks, places)
        capacity = np.where(mean_weeks > 0, np.floor(places + 1e-9) * 52
                            / np.maximum(mean_weeks, 1e-12), 0.0)  # patients a year
        over = ~np.isfinite(w)
        if rate > 0:
            years, new_backlog, fluid_wait = _giving_up(n, backlog, capacity, w, p_wait, over,
                                                        rate)
            dropped = rate * years  # a constant hazard: rate x patient-years waited
            with np.errstate(invalid="ignore", divide="ignore"):
                share = np.where(n[:, None] > 0, a / np.maximum(n, 1e-300)[:, None],
                                 last_share)
            last_share = share
            out["dropped_out"][:, y] = dropped
            out["dropped_by_strategy"][:, y] = dropped[:, None] * share
        else:
            dropped = 0.0
            new_backlog = np.where(over, np.maximum(n + backlog - capacity, 0.0), 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                # fluid: the mean queue over the year / throughput; stable: M/M/c
                fluid_wait = np.where(capacity > 0, (backlog + new_backlog) / 2
                                      / np.maximum(capacity, 1e-300) * 52, np.inf)
            years = np.where(over, (backlog + new_backlog) / 2,
                             (n + backlog) * np.where(np.isfinite(w), w, 0) / 52)
        served = n + backlog - dropped - new_backlog  # this year (over capacity: K)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["occupancy"][:, y] = np.where(places > 0, lam * mean_weeks / places, np.nan)
            out["caseload_per_fte"][:, y] = (served * mean_weeks / 52 / fte[y] if fte[y] > 0
                                             else np.nan)
        out["starts_needing"][:, y] = n
        out["places"][:, y] = places
        out["wait_weeks"][:, y] = np.where(over, fluid_wait, w)
        out["backlog"][:, y] = new_backlog
        out["waiting_years"][:, y] = years
        backlog = new_backlog
    return out


def _giving_up(n, backlog, capacity, w, p_wait, over, rate):
    """A year's queue when waiting patients give up at a constant hazard ``rate`` (per year):
    the patient-years waited, the backlog at the year's end and the mean wait (weeks), each
    ``[draw]``; the patients giving up are ``rate`` x the patient-years waited.

    Over capacity (``over``), the fluid backlog Q(t) of the year (t in years, Q(0) =
    ``backlog``) follows dQ/dt = n - K - rate Q while Q > 0 (K: ``capacity`` a year), so
    Q(t) = q + (Q(0) - q) e^(-rate t), q = (n - K) / rate, until it reaches 0 (at
    t0 = ln(1 + rate Q(0) / (K - n)) / rate when n < K); the patient-years waited are its
    integral up to min(1, t0), and the mean wait (Little's law) those years over the patients
    leaving the queue (served, K a year while it lasts, or giving up). Within the places (an
    M/M/c queue, waits of mean ``w``), a patient waits with probability ``p_wait``, for an
    exponential time of mean m = w / p_wait; racing an exponential time to giving up, it
    waits m / (1 + rate m) on average (the queue's waits are taken as they are without
    drop-outs: a little longer, conservative)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        m = np.where(p_wait > 0, w / np.maximum(p_wait, 1e-300), 0.0) / 52  # years
        stable = (n + backlog) * np.where(np.isfinite(w), w, 0.0) / 52 / (
            1 + rate * np.where(np.isfinite(m), m, 0.0))
        net = n - capacity
        q = net / rate
        t0 = np.where(net < 0, np.log1p(rate * backlog / np.maximum(-net, 1e-300)) / rate,
                      np.inf)
        tau = np.minimum(t0, 1.0)
        fluid = q * tau - (backlog - q) * np.expm1(-rate * tau) / rate
        end = np.where(t0 < 1, 0.0, np.maximum(q + (backlog - q) * np.exp(-rate), 0.0))
        leaving = capacity * tau + rate * fluid
        wait = np.where(leaving > 0, fluid / np.maximum(leaving, 1e-300) * 52, np.inf)
    return (np.where(over, fluid, stable), np.where(over, end, 0.0),
            np.where(over, wait, np.inf))


def plan_net_benefit(totals: xr.Dataset, wtp) -> xr.DataArray:
    """Each mix's net monetary benefit over the plan (undiscounted, as the budget):
    ``lambda x (QALYs - QALYs lost waiting) - (budget + cost of waiting)``, summed over the
    calendar years; ``[draw, mix, wtp]``."""
    lam = xr.DataArray(np.asarray(list(wtp), dtype=float), dims=[dims.WTP],
                       coords={dims.WTP: np.asarray(list(wtp), dtype=float)})
    qalys = totals["qalys"].sum("calendar_year")
    cost = totals["total_budget"].sum("calendar_year")
    if "qalys_lost_waiting" in totals:
        qalys = qalys - totals["qalys_lost_waiting"].sum("calendar_year")
        cost = cost + totals["cost_waiting"].sum("calendar_year")
    return (lam * qalys - cost).transpose(dims.DRAW, "mix", dims.WTP)



def responders_by_year(occupancy: xr.DataArray, horizon: float) -> xr.DataArray:
    """The people responding per person starting, on average over each year of the model:
    the person-years in the responder states within the year (``year_occupancy``, with the
    model's within-cycle correction, as its QALYs) over the year's length within the
    ``horizon`` (years; a last, partial year by the part modelled).

    Examples
    --------
    >>> occ = xr.DataArray([[[0.6, 0.2]]], dims=("draw", "strategy", "year"))
    >>> responders_by_year(occ, 1.5).values.tolist()
    [[[0.6, 0.4]]]
    """
    years = np.arange(occupancy.sizes[dims.YEAR])
    span = np.clip(horizon - years, 0.0, 1.0)
    return occupancy / xr.DataArray(np.where(span > 0, span, 1.0), dims=[dims.YEAR])


def plan_completion(totals: xr.Dataset, engagement: xr.DataArray, completion
                    ) -> dict[str, xr.DataArray]:
    """Patients completing a programme and the programmes' starters, by mix and calendar
    year: ``completing = sum_s starting[s] x completed[s]`` and ``programme_starters =
    sum_s starting[s] x (1 - not_started[s])`` over the strategies with a completing level,
    with ``completed[s]`` (``not_started[s]``) the share of strategy s at the plan's
    ``completion.completed`` (``not_started``) engagement levels; a stepped strategy's
    level ``first/second`` counts by its first part; the patients who gave up waiting
    (:func:`dropout_moves`) count under the strategy they got. ``[draw, mix, calendar_year]``
    each."""
    first = [str(lv).split("/")[0] for lv in engagement[dims.LEVEL].values]

    def share(levels) -> xr.DataArray:
        mask = xr.DataArray([f in levels for f in first], dims=[dims.LEVEL],
                            coords={dims.LEVEL: engagement[dims.LEVEL].values})
        return (engagement * mask).sum(dims.LEVEL)

    completed = share(set(completion.completed))
    programme = completed.max(dims.DRAW) > 0
    starters = (1 - share(set(completion.not_started))).where(programme, 0.0)
    starting = totals["starting"]  # [mix, calendar_year, strategy]
    if "dropped_out_by_strategy" in totals:  # who gave up waiting never started
        starting = starting + dropout_moves(totals, totals.attrs["dropout_to"])
    return {"completing": (starting * completed).sum(dims.STRATEGY).transpose(
                dims.DRAW, "mix", "calendar_year"),
            "programme_starters": (starting * starters).sum(dims.STRATEGY).transpose(
                dims.DRAW, "mix", "calendar_year")}
