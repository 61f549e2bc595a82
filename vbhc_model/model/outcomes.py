"""Engine results -> the outcomes Dataset, driven by one table of outcome variables.

:data:`OUTCOMES` lists every variable a run can return, in the order of the Dataset: its name,
its dims after ``(draw, strategy)``, the channel kind it reads (cost, qalys, life_years,
utilisation, clinician_hours), whether it is discounted, its units and where it comes from
(the totals, the per-cycle detail, the trace or the engagement shares). :func:`assemble`
combines each strategy's engagement strata, adds the costs of utilisation and clinician time,
and labels the arrays from the table: every engine's result is assembled the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.engines.base import EngineResult, Outputs
from vbhc_model.model.build import ModelInputs, StrategyInputs
from vbhc_model.provenance import make_attrs
from vbhc_model.scenario.schema import Scenario

__all__ = ["CURRENCY", "OUTCOMES", "PSA_VARIABLES", "OutcomeVariable", "assemble",
           "check_outputs", "computed", "subgroups"]

#: Stands for the scenario's currency and price year in :attr:`OutcomeVariable.units`.
CURRENCY = "<currency>"

#: Where a variable's values come from.
SOURCES = ("total", "cycle", "period", "engagement", "trace", "subgroup", "subgroup_share",
           "mcse",
           "mcse_increment")
#: Dims that index channels of one kind.
CHANNEL_DIMS = (dims.CATEGORY, dims.SERVICE, dims.ROLE)


@dataclass(frozen=True)
class OutcomeVariable:
    """One variable of the outcomes Dataset.

    Attributes
    ----------
    name : str
    dims : tuple of str
        Dims after ``(draw, strategy)``; a trailing category, service or role dim holds the
        channels of ``kind``.
    source : {"total", "cycle", "engagement", "trace", "subgroup", "subgroup_share"}
        Totals over the horizon, per-cycle payoffs (only when asked), the engagement shares,
        the state trace (only when asked), totals per subgroup or the subgroups' shares (only
        when the scenario declares ``population.subgroups``).
    kind : str
        Channel kind read (cost, qalys, life_years, utilisation, clinician_hours); empty for
        the engagement shares and the trace.
    discounted : bool or None
        Read from the discounted or the undiscounted accumulator (None: not a payoff).
    units : str
        Units attr; :data:`CURRENCY` for the scenario's currency and price year.
    sum_channels : bool
        The sum over the channels of ``kind`` (``total_cost``).
    mark_discounted : bool
        Write the ``discounted`` attr (0 or 1). ``cycle_life_years`` has never had it.
    description : str, optional
    psa : bool
        Kept for each draw by a probabilistic sensitivity analysis.
    """

    name: str
    dims: tuple[str, ...]
    source: str
    kind: str
    discounted: bool | None
    units: str
    sum_channels: bool = False
    mark_discounted: bool = True
    description: str | None = None
    psa: bool = False


_MCSE = ("Monte Carlo standard error of {} (batch means over blocks of each draw's "
         "patients)")
_MCSE_INC = ("Monte Carlo standard error of the increment of {} over the first strategy "
             "(the same patients under every strategy)")
_C, _S, _R, _Y, _G = dims.CATEGORY, dims.SERVICE, dims.ROLE, dims.CYCLE, dims.SUBGROUP
V = OutcomeVariable
#: Every outcome variable, in the order of the Dataset.
OUTCOMES: tuple[OutcomeVariable, ...] = (
    V("total_cost", (), "total", "cost", True, CURRENCY, sum_channels=True, psa=True),
    V("costs", (_C,), "total", "cost", True, CURRENCY, psa=True),
    V("costs_undiscounted", (_C,), "total", "cost", False, CURRENCY),
    V("qalys", (), "total", "qalys", True, "QALYs", psa=True),
    V("qalys_undiscounted", (), "total", "qalys", False, "QALYs"),
    V("life_years", (), "total", "life_years", True, "years", psa=True),
    V("life_years_undiscounted", (), "total", "life_years", False, "years"),
    V("utilisation", (_S,), "total", "utilisation", False, "count", psa=True),
    V("clinician_hours", (_R,), "total", "clinician_hours", False, "hours", psa=True),
    V("engagement", (dims.LEVEL,), "engagement", "", None, "share of cohort",
      mark_discounted=False, psa=True),
    # Only for a scenario with stepped care: the share of the cohort that stepped up.
    V("stepped_up", (), "total", "switched", False, "share of cohort", mark_discounted=False,
      psa=True, description="share of the cohort switched by the strategy's steps "
                            "(0 for a strategy without steps)"),
    V("cycle_costs", (_Y, _C), "cycle", "cost", True, CURRENCY),
    V("cycle_qalys", (_Y,), "cycle", "qalys", True, "QALYs"),
    V("cycle_life_years", (_Y,), "cycle", "life_years", True, "years", mark_discounted=False),
    V("cycle_utilisation", (_Y, _S), "cycle", "utilisation", False, "count"),
    V("cycle_clinician_hours", (_Y, _R), "cycle", "clinician_hours", False, "hours"),
    # Only with Outputs.periods (a service plan): undiscounted totals by year of the model.
    V("year_costs", (dims.YEAR, _C), "period", "cost", False, CURRENCY,
      description="undiscounted cost per person in each year of the model"),
    V("year_qalys", (dims.YEAR,), "period", "qalys", False, "QALYs"),
    V("year_utilisation", (dims.YEAR, _S), "period", "utilisation", False, "count"),
    V("year_clinician_hours", (dims.YEAR, _R), "period", "clinician_hours", False, "hours"),
    # Only with Outputs.occupancy as well: person-time in those states in each year.
    V("year_occupancy", (dims.YEAR,), "period", "occupancy", False, "years",
      description="person-years per person in the states of Outputs.occupancy (a plan's "
                  "responders) in each year of the model"),
    V("trace", (_Y, dims.STATE), "trace", "", None, "share of cohort", mark_discounted=False,
      description="state membership after each cycle (row 0 is the start)"),
    # Only for a scenario with population.subgroups: per person in each subgroup.
    V("subgroup_total_cost", (_G,), "subgroup", "cost", True, CURRENCY, sum_channels=True,
      psa=True),
    V("subgroup_qalys", (_G,), "subgroup", "qalys", True, "QALYs", psa=True),
    V("subgroup_life_years", (_G,), "subgroup", "life_years", True, "years", psa=True),
    V("subgroup_share", (_G,), "subgroup_share", "", None, "share of population",
      mark_discounted=False, psa=True, description="the subgroup's share of the population"),
    # Only for an individual engine (the microsimulation): Monte Carlo standard errors.
    V("mcse_total_cost", (), "mcse", "cost", True, CURRENCY, sum_channels=True,
      description=_MCSE.format("total_cost")),
    V("mcse_qalys", (), "mcse", "qalys", True, "QALYs",
      description=_MCSE.format("qalys")),
    V("mcse_life_years", (), "mcse", "life_years", True, "years",
      description=_MCSE.format("life_years")),
    V("mcse_inc_total_cost", (), "mcse_increment", "cost", True, CURRENCY, sum_channels=True,
      description=_MCSE_INC.format("total_cost")),
    V("mcse_inc_qalys", (), "mcse_increment", "qalys", True, "QALYs",
      description=_MCSE_INC.format("qalys")),
    V("mcse_inc_life_years", (), "mcse_increment", "life_years", True, "years",
      description=_MCSE_INC.format("life_years")),
)  # fmt: skip
del V

#: The variables a PSA keeps for each draw (never per-cycle detail or traces).
PSA_VARIABLES: tuple[str, ...] = tuple(v.name for v in OUTCOMES if v.psa)


def check_outputs(outputs: Outputs) -> None:
    """Refuse variable names that are not in :data:`OUTCOMES`.

    Raises
    ------
    ValueError

    Examples
    --------
    >>> check_outputs(Outputs(variables=("qalys",)))
    >>> check_outputs(Outputs(variables=("qaly",)))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown outcome variable(s) ['qaly']; known: total_cost, costs, ...
    """
    if outputs.variables is None:
        return
    known = [v.name for v in OUTCOMES]
    unknown = [n for n in outputs.variables if n not in known]
    if unknown:
        raise ValueError(f"unknown outcome variable(s) {unknown}; known: {', '.join(known)}")


def computed(outputs: Outputs) -> list[OutcomeVariable]:
    """The variables a run with ``outputs`` returns, in Dataset order.

    Examples
    --------
    >>> [v.name for v in computed(Outputs(variables=("qalys", "trace"), trace=True))]
    ['qalys', 'trace']
    """
    wanted = set(outputs.variables) if outputs.variables is not None else None
    return [v for v in OUTCOMES
            if (v.source != "cycle" or outputs.per_cycle) and (v.source != "trace" or outputs.trace)
            and (v.source != "period" or outputs.periods)
            and (wanted is None or v.name in wanted)]


def _mix(x: np.ndarray, strat: StrategyInputs, n_draws: int) -> np.ndarray:
    """Weight the strata (attribute profiles x engagement levels) of ``x[batch, ...]`` by
    their shares -> ``[draw, ...]``."""
    stacked = x.reshape((strat.n_strata, n_draws) + x.shape[1:])
    w = strat.shares.T.reshape((strat.n_strata, n_draws) + (1,) * (x.ndim - 1))
    return (stacked * w).sum(axis=0)


def subgroups(scenario: Scenario, profiles=None) -> list[tuple[str, str, int, int]]:
    """``(name, label, attribute index, level index)`` of each subgroup the scenario
    declares: every level of each attribute in ``population.subgroups`` (for a patient
    table, every distinct value of the column, from ``profiles``)."""
    pop = scenario.population
    if pop is None or profiles is None:
        return []
    attrs = list(profiles.attributes)
    out = []
    for a in pop.subgroups:
        j = attrs.index(a)
        attr = pop.attributes.get(a)
        for i, lv in enumerate(profiles.level_names[j]):
            if attr is not None:
                level = attr.levels[lv]
                label = f"{attr.label or a}: {level.label or lv}"
            else:
                label = f"{a} = {lv}"
            out.append((f"{a}={lv}", label, j, i))
    return out


def _by_subgroup(x: np.ndarray, strat: StrategyInputs, n_draws: int,
                 groups: list[tuple[str, str, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-person means of ``x[batch, channel]`` within each subgroup -> ``[draw, group,
    channel]``, and each subgroup's share of the population ``[draw, group]``. A subgroup
    with no patients in a draw (a level's share 0) has NaN means there."""
    stacked = x.reshape((strat.n_strata, n_draws) + x.shape[1:])
    profile_levels = strat.profiles.levels[strat.stratum_profile]  # [stratum, attribute]
    means = np.empty((n_draws, len(groups)) + x.shape[1:])
    shares = np.empty((n_draws, len(groups)))
    for g, (_, _, a, lv) in enumerate(groups):
        inside = profile_levels[:, a] == lv
        w = strat.shares[:, inside]  # [draw, stratum in group]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[:, g] = np.einsum("sd...,ds->d...", stacked[inside], w) / total[:, None]
        shares[:, g] = total
    return means, shares


def _apply_unit_costs(x: np.ndarray, strat: StrategyInputs) -> np.ndarray:
    """Add the costs of utilisation and clinician time (unit cost x count) to their category."""
    for src, dst, unit_cost in strat.unit_costs:
        shape = (-1,) + (1,) * (x.ndim - 2)
        x[..., dst] += x[..., src] * unit_cost.reshape(shape)
    return x


def _first_substates(inputs: ModelInputs) -> np.ndarray:
    return np.searchsorted(inputs.substate_of, np.arange(len(inputs.states)))


def _combine(strat: StrategyInputs, res: EngineResult, inputs: ModelInputs,
             outputs: Outputs, groups: list) -> dict[str, np.ndarray]:
    """One strategy's per-draw arrays: strata mixed, one-off values and unit costs added."""
    n = inputs.n_draws
    out = {
        "discounted": _apply_unit_costs(_mix(res.discounted + strat.one_off, strat, n), strat),
        "undiscounted": _apply_unit_costs(_mix(res.undiscounted + strat.one_off, strat, n),
                                          strat),
    }
    if outputs.per_cycle:
        for key, arr in (("cycle", res.by_cycle), ("cycle_u", res.by_cycle_undiscounted)):
            arr[:, 0] += strat.one_off
            out[key] = _apply_unit_costs(_mix(arr, strat, n), strat)
    if outputs.periods and res.by_period is not None:
        arr = res.by_period.copy()  # undiscounted [batch, year, channel]
        arr[:, 0] += strat.one_off  # one-off values at time 0: the first year
        out["period_u"] = _apply_unit_costs(_mix(arr, strat, n), strat)
    if outputs.trace:
        # stepped care: sub-state s' of arm a is s' * n_arms + a (trackers: combination c is
        # s' * n_combos + c), each state's block contiguous
        collapsed = np.add.reduceat(res.trace, _first_substates(inputs) * strat.n_arms
                                    * strat.n_combos, axis=2)
        out["trace"] = _mix(collapsed, strat, n)
    if res.blocks is not None:
        disc, _, sizes = res.blocks
        out["blocks"] = np.stack([_apply_unit_costs(_mix(b + strat.one_off, strat, n), strat)
                                  for b in disc])  # [block, draw, channel]
        out["block_sizes"] = sizes
    if groups:
        means, shares = _by_subgroup(res.discounted + strat.one_off, strat, n, groups)
        out["subgroup"] = _apply_unit_costs(means, strat)
        out["subgroup_share"] = shares
    return out


def assemble(scenario: Scenario, inputs: ModelInputs,
             runs: Iterable[tuple[StrategyInputs, EngineResult]], *, outputs: Outputs,
             engine: str) -> xr.Dataset:
    """Label every strategy's engine result as the outcomes Dataset.

    Parameters
    ----------
    scenario : Scenario
    inputs : ModelInputs
        From :func:`vbhc_model.model.build.build_model` (its strategies are replaced by those
        of ``runs``).
    runs : iterable of (StrategyInputs, EngineResult)
        Each strategy's inputs and result, in scenario order.
    outputs : Outputs
        The detail the engine kept, and the variables to return.
    engine : str
        The engine's name, for the provenance attrs.

    Returns
    -------
    xarray.Dataset
        The variables of :data:`OUTCOMES` that ``outputs`` selects, per person, with
        provenance in attrs.
    """
    runs = list(runs)
    inputs = dataclasses.replace(inputs, strategies=tuple(strat for strat, _ in runs))
    groups = subgroups(scenario, runs[0][0].profiles if runs else None)
    results = {strat.name: _combine(strat, res, inputs, outputs, groups) for strat, res in runs}
    ds = _label(scenario, inputs, results, outputs=outputs, engine=engine, groups=groups)
    if outputs.variables is not None:  # subgroup variables only where there are subgroups
        ds = ds[[v.name for v in computed(outputs) if v.name in ds]]
    return ds


def _engagement_shares(inputs: ModelInputs, n_strategies: int) -> tuple[np.ndarray, list[str]]:
    levels = list(dict.fromkeys(lv for s in inputs.strategies for lv in s.levels))
    shares = np.zeros((inputs.n_draws, n_strategies, len(levels)))
    for j, strat in enumerate(inputs.strategies):
        at = [levels.index(lv) for lv in strat.levels]
        for s, i in enumerate(strat.stratum_level):  # summed over attribute profiles
            shares[:, j, at[i]] += strat.shares[:, s]
    return shares, levels


def _label(scenario: Scenario, inputs: ModelInputs, results: dict, *, outputs: Outputs,
           engine: str, groups: list) -> xr.Dataset:
    ch = inputs.channels
    names = list(results)
    cur = " ".join(str(x) for x in (scenario.metadata.currency, scenario.metadata.price_year) if x)

    def stack(key: str) -> np.ndarray:  # -> [draw, strategy, ..., channel]
        return np.stack([results[n][key] for n in names], axis=1)

    arrays: dict[tuple[str, bool | None], np.ndarray] = {}
    shares, levels = _engagement_shares(inputs, len(names))
    base = (dims.DRAW, dims.STRATEGY)
    data = {}
    for var in _every_computed(outputs):
        if var.source.startswith("subgroup") and not groups:
            continue
        if var.kind in ("switched", "occupancy") and var.kind not in ch.kind:
            continue  # no stepped care; no occupancy asked for
        if var.source.startswith("mcse") and "blocks" not in results[names[0]]:
            continue
        if var.source == "engagement":
            values = shares
        elif var.source == "trace":
            values = stack("trace")
        elif var.source == "subgroup_share":
            values = stack("subgroup_share")
        elif var.source == "subgroup":
            if "subgroup" not in arrays:
                arrays["subgroup"] = stack("subgroup")
            values = _channels_of(arrays["subgroup"], var, ch)
        elif var.source.startswith("mcse"):
            if "blocks" not in arrays:  # [block, draw, strategy, channel]
                arrays["blocks"] = np.stack([results[n]["blocks"] for n in names], axis=2)
            blocks = _channels_of(arrays["blocks"], var, ch)
            if var.source == "mcse_increment":
                blocks = blocks - blocks[:, :, :1]
            values = batch_means_se(blocks, results[names[0]]["block_sizes"])
        else:
            key = (var.source, var.discounted)
            if key not in arrays:
                arrays[key] = stack({("total", True): "discounted",
                                     ("total", False): "undiscounted",
                                     ("cycle", True): "cycle",
                                     ("cycle", False): "cycle_u",
                                     ("period", False): "period_u"}[key])
            values = _channels_of(arrays[key], var, ch)
        attrs: dict[str, object] = {"units": cur if var.units == CURRENCY else var.units}
        if var.mark_discounted:
            attrs["discounted"] = int(var.discounted)
        if var.description is not None:
            attrs["description"] = var.description
        data[var.name] = (base + var.dims, values, attrs)
    coords = {
        dims.DRAW: np.arange(inputs.n_draws),
        dims.STRATEGY: names,
        dims.CATEGORY: ch.keys("cost"),
        dims.SERVICE: ch.keys("utilisation"),
        dims.ROLE: ch.keys("clinician_hours"),
        dims.LEVEL: levels,
    }
    if outputs.trace:
        coords[dims.STATE] = list(inputs.states)
    if outputs.per_cycle or outputs.trace:
        coords[dims.CYCLE] = np.arange(scenario.settings.n_cycles + 1)
    if outputs.periods:
        coords[dims.YEAR] = np.arange(results[names[0]]["period_u"].shape[1])
    coords["strategy_label"] = (dims.STRATEGY, [scenario.strategies[n].label or n for n in names])
    if groups:
        coords[dims.SUBGROUP] = [g[0] for g in groups]
        coords["subgroup_label"] = (dims.SUBGROUP, [g[1] for g in groups])
    ds = xr.Dataset(
        {k: xr.Variable(d, v, attrs={**a, "per": "per person"}) for k, (d, v, a) in data.items()},
        coords=coords,
    )
    ds.attrs = make_attrs(
        scenario, n_draws=inputs.n_draws, engine=engine,
        effect=scenario.settings.effect,
        within_cycle_correction=str(scenario.settings.within_cycle_correction),
        cohort_size=scenario.settings.cohort_size,
        n_patients=scenario.settings.patients if engine == "microsim" else None,
        uniforms=scenario.settings.uniforms if engine == "microsim" else None,
    )
    return ds


def batch_means_se(blocks: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The standard error of a mean over patients from the means of K blocks of them
    (``blocks[k, ...]``, block k of ``sizes[k]`` patients): with weights w = sizes / total,
    sqrt(K / (K - 1) x sum_k w_k^2 (x_k - sum_j w_j x_j)^2), the batch-means estimator
    (equal blocks: the standard deviation of the block means / sqrt(K)).

    Examples
    --------
    >>> round(float(batch_means_se(np.array([1.0, 3.0]), np.array([10, 10]))), 12)
    1.0
    """
    w = (sizes / sizes.sum()).reshape((-1,) + (1,) * (blocks.ndim - 1))
    k = len(sizes)
    mean = (w * blocks).sum(axis=0)
    return np.sqrt(k / (k - 1) * (w**2 * (blocks - mean) ** 2).sum(axis=0)) if k > 1 else \
        np.full(blocks.shape[1:], np.nan)


def _every_computed(outputs: Outputs) -> list[OutcomeVariable]:
    """The variables the run computes, before ``outputs.variables`` selects among them."""
    return computed(dataclasses.replace(outputs, variables=None))


def _channels_of(x: np.ndarray, var: OutcomeVariable, ch) -> np.ndarray:
    """The channels of ``var.kind`` in ``x[..., channel]``: all of them along the variable's
    last dim, their sum, or the one channel of that kind."""
    if var.sum_channels:
        return x[..., ch.in_total(var.kind)].sum(-1)
    if var.dims and var.dims[-1] in CHANNEL_DIMS:
        return x[..., ch.of_kind(var.kind)]
    return x[..., ch.index(var.kind)]
