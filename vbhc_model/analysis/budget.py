"""A service plan's budget impact: per-person results by year of the model, scaled to the
patients who start care in each calendar year and the strategy mix they start in.

Patients start care in cohorts, one per calendar year c = 0..Y-1 (the prevalent patients and
that year's incident ones in year 0, the incident ones later); a share u[m, c, s] of cohort c
starts strategy s under mix m (the current mix or the new one). A patient who started in year c
is in year y - c of the model in calendar year y, so

    budget[m, y] = sum over c <= y of N_c * sum over s of u[m, c, s] * cost_s[y - c]

with cost_s[k] the undiscounted cost per person in year k of the model (zero after its
horizon), as budget-impact analyses report (ISPOR good practice: undiscounted, by year). The
same sum gives care used, clinician hours and QALYs by year. Capacity is unlimited here (every
patient is treated when they start); the plan compares the hours needed with the FTEs
available.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims

__all__ = ["MIXES", "plan_totals", "uptake_array"]

MIXES = ("current", "new")


def uptake_array(plan, strategies) -> np.ndarray:
    """``[mix, year, strategy]`` shares from a scenario's ``plan.uptake``."""
    names = list(strategies)
    out = np.zeros((len(MIXES), plan.years, len(names)))
    for m, mix in enumerate(MIXES):
        for name, v in getattr(plan.uptake, mix).items():
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
    out = xr.Dataset(coords={"mix": list(MIXES), "calendar_year": np.arange(1, n_years + 1)})

    def scaled(var: str) -> np.ndarray:
        x = per_year[var].transpose(dims.DRAW, dims.STRATEGY, dims.YEAR, ...).values
        n_model = x.shape[2]
        total = np.zeros((x.shape[0], len(MIXES), n_years) + x.shape[3:])
        for c in range(n_years):
            k = np.arange(n_years - c)  # calendar years c.. are model years 0..
            k = k[k < n_model]
            if not k.size:
                continue
            # [draw, mix, year in model, ...]
            part = np.einsum("ms,dsk...->dmk...", starting[:, c],
                             x[:, :, k])
            total[:, :, c + k] += part
        return total

    base = (dims.DRAW, "mix", "calendar_year")
    out["budget"] = (base + (dims.CATEGORY,), scaled("year_costs"))
    inside = [c not in outside for c in per_year[dims.CATEGORY].values]
    out["total_budget"] = (base, out["budget"].values[..., inside].sum(-1))
    out["qalys"] = (base, scaled("year_qalys"))
    out["utilisation"] = (base + (dims.SERVICE,), scaled("year_utilisation"))
    out["clinician_hours"] = (base + (dims.ROLE,), scaled("year_clinician_hours"))
    out = out.assign_coords({dims.DRAW: per_year[dims.DRAW].values,
                             dims.CATEGORY: per_year[dims.CATEGORY].values,
                             dims.SERVICE: per_year[dims.SERVICE].values,
                             dims.ROLE: per_year[dims.ROLE].values,
                             dims.STRATEGY: strategies})
    out["starting"] = (("mix", "calendar_year", dims.STRATEGY), starting)
    roles = [r for r in plan.roles if r in list(per_year[dims.ROLE].values)]
    if roles:
        hours = out["clinician_hours"].sel({dims.ROLE: roles})
        per_fte = xr.DataArray([plan.roles[r].hours_per_fte for r in roles],
                               dims=["plan_role"], coords={"plan_role": roles})
        out["fte_needed"] = hours.rename({dims.ROLE: "plan_role"}) / per_fte
        avail = np.array([np.broadcast_to(plan.roles[r].fte_available, (n_years,))
                          for r in roles], dtype=float)
        out["fte_available"] = (("plan_role", "calendar_year"), avail)
    members = plan.members if plan.members is not None else float(entrants.sum())
    out["pmpm"] = out["total_budget"] / members / 12
    out.attrs.update(members=members,
                     members_basis="members" if plan.members is not None
                     else "patients in the plan", source=plan.source,
                     outside_budget=", ".join(sorted(outside)))
    return out
