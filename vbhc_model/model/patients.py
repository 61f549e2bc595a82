"""Per-patient results of a microsimulation, labelled: each patient's states and totals.

What ``patients.nc`` holds (``vbhc run --patient-file``): for the base case, per strategy and
patient, the state after each cycle and the patient's discounted and undiscounted total cost,
QALYs and life years. Totals are combined as :mod:`vbhc_model.model.outcomes` combines a
strategy's totals (engagement strata mixed by their shares, one-off values and the costs of
utilisation and clinician time added), so the mean over patients of each total is the
strategy's total in ``outcomes.nc``, to rounding.

A strategy with engagement levels simulates the same patients (the same random numbers) in
each level: a patient's states are kept per level, and its totals are the share-weighted mean
over the levels.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.model.build import ModelInputs, StrategyInputs
from vbhc_model.model.outcomes import CURRENCY, _apply_unit_costs, _mix
from vbhc_model.provenance import make_attrs
from vbhc_model.scenario.schema import Scenario

#: Where a strategy has no such engagement level, its states are this.
NO_STATE = -1

#: (variable, channel kind, sum of channels, units) of each patient's totals.
_TOTALS = (("total_cost", "cost", True, CURRENCY), ("qalys", "qalys", False, "QALYs"),
           ("life_years", "life_years", False, "years"))


def assemble_patients(scenario: Scenario, inputs: ModelInputs, runs, *,
                      engine: str) -> xr.Dataset:
    """Label each strategy's per-patient paths and totals of one draw.

    Parameters
    ----------
    scenario : Scenario
    inputs : ModelInputs
    runs : iterable of (StrategyInputs, paths, discounted, undiscounted)
        Per strategy in scenario order: ``paths[batch, row 0..n, patient]`` (sub-state
        indices; batch = the strategy's engagement levels) and the totals
        ``[batch, patient, channel]`` (:func:`vbhc_model.engines.accumulate.accumulate_paths`).
    engine : str
        The engine's name, for the provenance attrs.

    Returns
    -------
    xarray.Dataset
        ``path`` (strategy x level x patient x cycle, the index of the state in the
        ``state`` coordinate, :data:`NO_STATE` where the strategy has no such level), and
        ``total_cost``, ``qalys``, ``life_years`` and their ``_undiscounted`` twins
        (strategy x patient).
    """
    runs = list(runs)
    strategies: list[StrategyInputs] = [r[0] for r in runs]
    levels = list(dict.fromkeys(lv for st in strategies for lv in st.levels))
    n_patients, n_rows = runs[0][1].shape[2], runs[0][1].shape[1]
    dtype = np.int8 if len(inputs.states) < 2**7 else np.int16
    path = np.full((len(runs), len(levels), n_patients, n_rows), NO_STATE, dtype=dtype)
    totals = {name: np.empty((len(runs), n_patients))
              for var, *_ in _TOTALS for name in (var, f"{var}_undiscounted")}
    ch = inputs.channels
    for j, (strat, paths, disc, und) in enumerate(runs):
        # tunnel sub-states (and the arms of stepped care, the combinations of tracker
        # values) -> their state
        states = inputs.substate_of[paths // (strat.n_arms * strat.n_combos)]
        for i, level in enumerate(strat.levels):  # batch b = level (one draw)
            path[j, levels.index(level)] = states[i].T
        for suffix, x in (("", disc), ("_undiscounted", und)):
            per = _apply_unit_costs(_mix(x + strat.one_off[:, None, :], strat, 1), strat)[0]
            for var, kind, summed, _ in _TOTALS:
                totals[var + suffix][j] = (per[:, ch.of_kind(kind)].sum(-1) if summed
                                           else per[:, ch.index(kind)])
    currency = " ".join(str(x) for x in (scenario.metadata.currency,
                                         scenario.metadata.price_year) if x)
    names = [st.name for st in strategies]
    data = {"path": ((dims.STRATEGY, dims.LEVEL, dims.PATIENT, dims.CYCLE), path, {
        "description": "each patient's state after each cycle (cycle 0: the start), the index "
                       f"of its name in the 'state' coordinate; {NO_STATE} where the strategy "
                       "has no such engagement level",
        "flag_values": np.arange(len(inputs.states), dtype=dtype),
        "flag_meanings": " ".join(inputs.states)})}
    for var, _, _, units in _TOTALS:
        for suffix, discounted in (("", 1), ("_undiscounted", 0)):
            data[var + suffix] = ((dims.STRATEGY, dims.PATIENT), totals[var + suffix], {
                "units": currency if units == CURRENCY else units,
                "discounted": discounted, "per": "per patient"})
    ds = xr.Dataset(data, coords={
        dims.STRATEGY: names,
        "strategy_label": (dims.STRATEGY, [scenario.strategies[n].label or n for n in names]),
        dims.LEVEL: levels,
        dims.PATIENT: np.arange(n_patients),
        dims.CYCLE: np.arange(n_rows),
        dims.STATE: list(inputs.states),
    })
    s = scenario.settings
    ds.attrs = make_attrs(
        scenario, n_draws=1, engine=engine, effect=s.effect,
        within_cycle_correction=str(s.within_cycle_correction), n_patients=n_patients,
        uniforms=s.uniforms,
        description="the base case, patient by patient: totals mix engagement levels by "
                    "their shares; their mean over patients is the total in outcomes.nc")
    return ds
