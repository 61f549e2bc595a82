"""A two-level PSA (parameter draws x patients): how much of the spread of the per-draw
results is the patients' luck, and how many patients a draw needs.

With N patients per draw, the variance of a per-draw mean over the draws is the parameters'
variance plus the patients' variance / N (O'Hagan, Stevenson & Madan, Health Econ
2007;16:1009-1023: the one-way analysis of variance of a two-level simulation). The patients'
part is estimated from draws simulated twice, with the same parameter values and other
patients: half the mean squared difference of the two runs' means (each run's error has
variance patients' variance / N). The rest of the total is the parameters'. If the patients'
part is more than a small fraction of the total, the PSA's intervals and acceptability curves
are wider than the parameter uncertainty alone makes them, and the draws need more patients:
to bring the patients' share down to ``target``, a draw needs
N x (patients' part / parameters' part) x (1 - target) / target patients.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vbhc_model import dims

__all__ = ["TARGET_SHARE", "variance_split"]

#: The patients' share of the variance of a per-draw mean that the guidance aims below.
TARGET_SHARE = 0.05


def variance_split(psa: xr.Dataset, again: xr.Dataset, effect: str = "qalys",
                   target: float = TARGET_SHARE) -> xr.Dataset | None:
    """The split of the variance of each per-draw mean (cost, effect and their increments
    over the first strategy) between parameters and patients.

    Parameters
    ----------
    psa : xarray.Dataset
        A microsimulation's PSA (``n_patients`` in its attrs).
    again : xarray.Dataset
        Some of its draws simulated again with the same parameter values and other patients,
        in the order of their first ``again.sizes["draw"]`` draws.
    effect : {"qalys", "life_years"}
    target : float
        The patients' share of the variance that ``patients_needed`` aims for.

    Returns
    -------
    xarray.Dataset or None
        Dims ``outcome`` (cost, effect, inc_cost, inc_effect) x ``strategy``: ``total_var``
        (over the draws), ``patient_var`` (half the mean squared difference of the two runs),
        ``patient_share`` (their ratio, capped at 1) and ``patients_needed`` (per draw, for
        ``target``). None with fewer than 2 draws.

    Examples
    --------
    >>> coords = {"strategy": ["a", "b"]}
    >>> psa = xr.Dataset({"total_cost": (("draw", "strategy"), [[0., 1.], [0., 3.]]),
    ...                   "qalys": (("draw", "strategy"), [[1., 1.], [1., 1.]])},
    ...                  coords=coords, attrs={"n_patients": 100})
    >>> again = xr.Dataset({"total_cost": (("draw", "strategy"), [[0., 2.], [0., 2.]]),
    ...                     "qalys": (("draw", "strategy"), [[1., 1.], [1., 1.]])},
    ...                    coords=coords)
    >>> float(variance_split(psa, again)["patient_share"].sel(outcome="cost", strategy="b"))
    0.25
    """
    m = again.sizes[dims.DRAW]
    if psa.sizes[dims.DRAW] < 2 or m < 1:
        return None
    n = int(psa.attrs.get("n_patients", 0)) or None

    def arrays(ds: xr.Dataset, draws: slice) -> dict[str, np.ndarray]:
        cost = ds["total_cost"].isel({dims.DRAW: draws}).transpose(dims.DRAW, dims.STRATEGY)
        eff = ds[effect].isel({dims.DRAW: draws}).transpose(dims.DRAW, dims.STRATEGY)
        cost, eff = np.asarray(cost.values), np.asarray(eff.values)
        return {"cost": cost, "effect": eff, "inc_cost": cost - cost[:, :1],
                "inc_effect": eff - eff[:, :1]}

    every, first, second = arrays(psa, slice(None)), arrays(psa, slice(0, m)), \
        arrays(again, slice(None))
    total = np.array([every[k].var(axis=0, ddof=1) for k in every])
    patient = np.array([((first[k] - second[k]) ** 2).mean(axis=0) / 2 for k in every])
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, np.minimum(patient / total, 1.0), np.nan)
        parameters = np.maximum(total - patient, 0.0)
        needed = (np.ceil(n * patient / parameters * (1 - target) / target)
                  if n else np.full_like(total, np.nan))
    needed = np.where(parameters > 0, needed, np.nan)
    coords = {"outcome": list(every), dims.STRATEGY: psa[dims.STRATEGY].values}
    return xr.Dataset(
        {"total_var": (("outcome", dims.STRATEGY), total),
         "patient_var": (("outcome", dims.STRATEGY), patient),
         "patient_share": (("outcome", dims.STRATEGY), share),
         "patients_needed": (("outcome", dims.STRATEGY), needed)},
        coords=coords,
        attrs={"target_share": target, "n_patients": n or 0, "replicated_draws": m,
               "increments_over": str(psa[dims.STRATEGY].values[0]),
               "method": "O'Hagan, Stevenson & Madan 2007: variance of per-draw means = "
                         "parameters + patients / N; the patients' part from draws simulated "
                         "twice with other patients"},
    )
