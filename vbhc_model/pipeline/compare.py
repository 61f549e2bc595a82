"""``vbhc compare``: the base case and every variant of a scenario (``variants:``), side by
side.

Each variant is the scenario with some parameters set otherwise
(:meth:`vbhc_model.scenario.schema.Scenario.with_variant`): a structural choice (how a
programme's benefit wanes, where an effect comes from, how utilisation is attributed) or an
evidence choice. Every one is run exactly as ``vbhc run`` runs the scenario (the same seed and
draws, so the PSAs share their random numbers), and the comparison keeps, per variant and
strategy, the mean cost and effect, the frontier status and ICER, the net monetary benefit at
each threshold and, with a PSA, the probability of being cost-effective.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.pipeline.run import run
from vbhc_model.results import CompareResult
from vbhc_model.scenario.schema import Scenario

__all__ = ["compare"]

BASE = "base case"


def compare(scenario: Scenario, *, draws: int = 0, seed: int | None = None,
            sampling: str = "mc", progress=None) -> CompareResult:
    """Run the base case and each variant; their decisions side by side.

    Parameters
    ----------
    scenario : Scenario
    draws : int
        PSA draws for each (0: the deterministic base case only).
    seed : int, optional
        The PSAs' seed [settings.seed]: the same for every variant.
    sampling : str
    progress : callable, optional
        ``progress(done, total)``: PSA draws done over all variants (with ``draws``), or
        variants done.

    Returns
    -------
    CompareResult
        ``table``: dims ``variant`` x ``strategy`` (x ``wtp``): ``cost``, ``effect``,
        ``status``, ``icer``, ``nmb``, ``p_ce`` (with a PSA), and ``optimal`` (variant x wtp),
        with the variants' labels as a coordinate.
    """
    names = [None, *scenario.variants]
    rows = []
    total = len(names) * draws if draws else len(names)
    for i, name in enumerate(names):
        step = None if progress is None or not draws else (
            lambda done, _, i=i: progress(i * draws + done, total))
        result = run(scenario.with_variant(name), draws=draws, seed=seed, sampling=sampling,
                     progress=step)
        rows.append(_row(result))
        if progress is not None:
            progress((i + 1) * draws if draws else i + 1, total)
    table = xr.concat(rows, dim="variant", coords="minimal", compat="override")
    labels = [BASE] + [scenario.variants[n].label or n for n in names[1:]]
    table = table.assign_coords(variant=["base"] + names[1:], variant_label=("variant", labels))
    nmb = table["nmb"].transpose("variant", dims.STRATEGY, dims.WTP).values
    best = np.asarray(table[dims.STRATEGY].values)[nmb.argmax(axis=1)]
    table["optimal"] = (("variant", dims.WTP), best)
    table.attrs = {k: v for k, v in rows[0].attrs.items() if k != "variant"}
    table.attrs["n_draws"] = int(draws)
    return CompareResult(scenario=scenario, table=table)


def _row(result) -> xr.Dataset:
    """One run's decision, over strategies in the scenario's order."""
    order = list(result.scenario.strategies)
    t = result.table.sel({dims.STRATEGY: order})
    row = t[["cost", "effect", "icer", "status", "nmb"]].drop_vars(
        [c for c in ("input_index", "strategy_label") if c in t.coords])
    if result.psa_summary is not None:
        row["p_ce"] = result.psa_summary["ceac"].sel({dims.STRATEGY: order}).drop_vars(
            [c for c in ("strategy_label",) if c in result.psa_summary.coords])
    row.attrs = dict(result.table.attrs)
    return row
