"""``vbhc voi``: EVPI and EVPPI of the PSA in a results folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from vbhc_model.analysis.voi import evppi_table, varying_parameters
from vbhc_model.defaults import SE_SIMULATIONS
from vbhc_model.errors import VbhcError
from vbhc_model.results import VoiResult


def voi(results: str | Path, *, params: Sequence[str] | None = None,
        groups: Sequence[Sequence[str]] = (), wtp: Sequence[float] | None = None,
        se: bool = False, method: str = "gam", progress=None) -> VoiResult:
    """EVPI and EVPPI of the PSA in ``results`` (a folder written by ``vbhc run --draws``).

    Parameters
    ----------
    results : path
        The results folder (its ``psa.nc`` and ``psa_summary.nc`` are read).
    params : sequence of str, optional
        Parameters for single-parameter EVPPI (default: every parameter that varies).
    groups : sequence of sequences of str
        Groups of parameters for joint EVPPI.
    wtp : sequence of float, optional
        Willingness to pay (default: the run's).
    se : bool
        Standard errors of the EVPPI estimates.
    method : {"gam", "gp"}
    progress : callable, optional
        ``progress(done, total)`` after each parameter's or group's EVPPI.

    Returns
    -------
    VoiResult
        The table ranked by EVPPI at the first WTP.
    """
    results = Path(results)
    path = results / "psa.nc"
    if not path.exists():
        raise VbhcError(f"{path}: not found; run 'vbhc run SCENARIO --draws N' first")
    with xr.open_dataset(path) as ds:
        psa = ds.load()
    effect = psa.attrs.get("effect", "qalys")
    if wtp:
        lam = list(wtp)
    else:
        with xr.open_dataset(results / "psa_summary.nc") as summary:
            lam = [float(w) for w in summary["wtp"].values]
    singles = list(params) if params else varying_parameters(psa)
    wanted = {p: [p] for p in singles}
    for members in groups:
        wanted["+".join(members)] = list(members)
    if not wanted:
        raise VbhcError(f"{path}: no parameter varies in this PSA (every draw has the same "
                        "values), so there is no EVPPI to estimate; give the scenario's "
                        "parameters distributions and rerun 'vbhc run --draws N'")
    table = evppi_table(psa, wanted, lam, effect, n_se=SE_SIMULATIONS if se else 0,
                        method=method, progress=progress)
    table = table.sortby(-table["evppi"].isel(wtp=0))
    table.attrs.update({k: v for k, v in psa.attrs.items() if k.startswith("scenario")})
    # The EVPI of the same draws (evppi_table computes it for its check).
    return VoiResult(table=table, evpi=table["evpi"], source=results,
                     suggested_groups=evidence_groups(psa, varying_parameters(psa)))


def evidence_groups(psa: xr.Dataset, names: Sequence[str]) -> tuple:
    """Groups of the PSA's varying parameters that the scenario draws together, so that they
    are informative together: one per posterior file, table of samples and joint
    distribution with at least two of ``names``. Read from the scenario file the run names
    (``scenario_file``); none if it cannot be read.

    Returns
    -------
    tuple of (str, tuple of str)
        Where each group comes from (``posterior fits/resolve.nc``) and its parameters.
    """
    from vbhc_model.scenario import load_scenario

    file = psa.attrs.get("scenario_file")
    if not file or not Path(str(file)).is_file():
        return ()
    try:
        scenario = load_scenario(str(file))
    except VbhcError:
        return ()
    wanted = set(names)
    groups: dict[str, list[str]] = {}
    for name, param in scenario.parameters.items():
        for kind in ("posterior", "samples"):
            ref = getattr(param, kind, None)
            if ref is not None and name in wanted:
                groups.setdefault(f"{kind} {ref.file}", []).append(name)
    for key, joint in scenario.joint.items():
        groups[f"joint {key}"] = [n for n in joint.parameters if n in wanted]
    return tuple((where, tuple(members)) for where, members in groups.items()
                 if len(members) >= 2)
