"""Outcomes -> the decision table: frontier, ICERs, net monetary benefit and outcome means."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.frontier import compute_icers, net_monetary_benefit


def summarise(outcomes: xr.Dataset, wtp: Sequence[float], effect: str = "qalys",
              negligible: float = 0.0) -> xr.Dataset:
    """The incremental analysis of a run, on the means over draws.

    Parameters
    ----------
    outcomes : xarray.Dataset
        As returned by :func:`vbhc_model.pipeline.simulate.simulate`.
    wtp : sequence of float
        Willingness-to-pay values per unit of effect.
    effect : {"qalys", "life_years"}
        The effect measure of the frontier.
    negligible : float
        The smallest gain in effect that counts on the frontier (``settings.negligible_effect``;
        :func:`~vbhc_model.analysis.frontier.compute_icers`).

    Returns
    -------
    xarray.Dataset
        Dim ``strategy`` (sorted by cost): ``cost``, ``effect``, ``inc_cost``, ``inc_effect``,
        ``icer``, ``status``, ``comparator``, ``dominated_by``, ``nmb`` (strategy x wtp), and
        the means of ``qalys``, ``life_years``, ``costs``, ``utilisation``,
        ``clinician_hours`` and ``engagement``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> out = xr.Dataset({"total_cost": (("draw", "strategy"), [[100.0, 300.0]]),
    ...                   "qalys": (("draw", "strategy"), [[1.0, 1.1]])},
    ...                  coords={"strategy": ["a", "b"]})
    >>> round(float(summarise(out, [50000])["icer"].sel(strategy="b")), 6)
    2000.0
    """
    means = outcomes.mean(dims.DRAW)
    table = compute_icers(
        means["total_cost"].values, means[effect].values, means[dims.STRATEGY].values,
        negligible=negligible,
    )
    order = table[dims.STRATEGY].values
    means = means.sel({dims.STRATEGY: order})
    wtp_arr = np.asarray(list(wtp), dtype=float)
    nmb = net_monetary_benefit(table["cost"].values, table["effect"].values, wtp_arr)
    table["nmb"] = ((dims.STRATEGY, dims.WTP), nmb)
    table = table.assign_coords({dims.WTP: wtp_arr})
    for name in ("qalys", "life_years", "costs", "utilisation", "clinician_hours", "engagement",
                 "stepped_up"):
        if name in means:
            table[name] = means[name]
    if "strategy_label" in outcomes.coords:
        table = table.assign_coords(strategy_label=means["strategy_label"])
    table.attrs = {**outcomes.attrs, "effect": effect, "method": table.attrs.get("method", "")}
    return table
