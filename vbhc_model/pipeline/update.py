"""``vbhc update``: refit with a service's own routine data appended, rerun the scenarios that
use the fit, and report how the decision changed (the feedback loop of value-based care).

The updated posterior never replaces the shipped one: it is written, with the comparison,
into a results directory. Each scenario is run twice with the same seed and draws, once on the
original posterior and once on the updated one, so the change is due to the data alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vbhc_model.errors import VbhcError
from vbhc_model.results import UpdateResult


def scenarios_using(posterior: Path, candidates: list[Path]) -> list[Path]:
    """The scenario files among ``candidates`` with a parameter drawn from ``posterior``."""
    from vbhc_model.readers.posterior import resolve
    from vbhc_model.scenario import load_scenario

    target = posterior.resolve()
    out = []
    for path in candidates:
        sc = load_scenario(path)
        if any(p.posterior is not None
               and resolve(p.posterior.file, sc.source.file).resolve() == target
               for p in sc.parameters.values()):
            out.append(path)
    return out


def _pooling_warnings(spec, rows: list[dict]) -> list[str]:
    """Appended rows are pooled with the fit's data as if from the same population. For a
    relative effect, rows without the reference arm (or group) of the same source move the
    effect by their level alone: say so."""
    key = {"binomial_arms": "arm", "rates": "group", "nma_binomial": "treatment"}.get(spec.family)
    if key is None:
        return []
    labels = {str(r.get(key)) for r in rows}
    reference = spec.options.get("reference")
    if reference is not None and reference not in labels:
        return [f"the new data have no {key} {reference!r} (the reference): their "
                f"{', '.join(sorted(labels))} rows are pooled with the trial's, so the relative "
                "effects move with the new levels alone, as if the service's population were "
                "the trial's; read the change with care"]
    return []


def decision(scenario, draws: int, seed: int | None,
             posteriors: dict[Path, Path] | None = None) -> pd.DataFrame:
    """Per WTP: the optimal strategy (highest expected net benefit), its probability of being
    cost-effective, and the EVPI per person; ``posteriors`` replaces posterior files
    (``{named: read}``)."""
    from vbhc_model.analysis.acceptability import analyse_psa
    from vbhc_model.pipeline.psa import run_psa

    psa = run_psa(scenario, draws, seed=seed, posteriors=posteriors)
    s = scenario.settings
    res = analyse_psa(psa, s.wtp, s.effect, negligible=s.negligible_effect)
    strategies = [str(v) for v in psa["strategy"].values]
    cost = psa["total_cost"].mean("draw").values
    eff = psa[s.effect].mean("draw").values
    rows = []
    for i, lam in enumerate(res["wtp"].values):
        best = int(np.argmax(lam * eff - cost))
        rows.append({"wtp": float(lam), "optimal": strategies[best],
                     "p_ce_optimal": float(res["ceac"].isel(wtp=i).values[best]),
                     "evpi": float(res["evpi"].isel(wtp=i).values)})
    return pd.DataFrame(rows)


def update(fit_file: str | Path, data: str | Path, *, scenarios: list[Path] | None = None,
           draws: int = 2_000, seed: int | None = None,
           fit_kwargs: dict | None = None) -> UpdateResult:
    """Refit ``fit_file`` with the rows of ``data`` (CSV) appended and compare the decisions of
    the scenarios that use its posterior (nothing is written:
    :func:`vbhc_model.report.write.write` writes the refit posterior, its summary and the
    comparison).

    Raises
    ------
    VbhcError
        No original posterior, unreadable data, or no scenario using the fit.
    """
    import hashlib
    import tempfile

    from vbhc_model.fitting.run import fit
    from vbhc_model.fitting.spec import load_fit_file, read_data_csv
    from vbhc_model.scenario import default_scenario_path, load_scenario

    fit_file, data = Path(fit_file), Path(data)
    spec, source, _ = load_fit_file(fit_file)
    original = fit_file.with_suffix(".nc")
    if not original.exists():
        raise VbhcError(f"{original}: no posterior to update; run 'vbhc fit {fit_file}' first")
    import xarray as xr

    with xr.open_datatree(original) as tree:
        recorded = tree.attrs.get("fit_file_sha256")
    if recorded != source.sha256:
        raise VbhcError(f"{original} was fitted from another version of {fit_file}; refit it "
                        f"('vbhc fit {fit_file}') so that the comparison shows the new data's "
                        "effect alone")
    if not data.exists():
        raise VbhcError(f"{data}: data file not found")
    new_rows = read_data_csv(data, source)
    if scenarios is None:
        folder = default_scenario_path().parent
        scenarios = scenarios_using(original, sorted(folder.glob("*.yaml")))
    else:
        scenarios = scenarios_using(original, [Path(p) for p in scenarios])
    if not scenarios:
        raise VbhcError(f"no scenario draws parameters from {original}; name one with "
                        "--scenario")

    fitted = fit(fit_file, extra_rows=new_rows, figures=False,
                 extra_attrs={"update_data": str(data),
                              "update_data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
                              "update_rows": len(new_rows)},
                 **(fit_kwargs or {}))
    frames = []
    labels: dict[str, str] = {}
    # The refit posterior is read by sampling from a file, like any posterior: a scratch copy
    # for the "after" runs (the report writes the result's own copy).
    with tempfile.TemporaryDirectory(prefix="vbhc_update_") as scratch:
        posterior = Path(scratch) / "posterior.nc"
        fitted.idata.to_netcdf(posterior, engine="h5netcdf")
        for path in scenarios:
            sc = load_scenario(path)
            labels.update({k: v.label for k, v in sc.strategies.items() if v.label})
            before = decision(sc, draws, seed)
            after = decision(sc, draws, seed, posteriors={original: posterior})
            frame = before.merge(after, on="wtp", suffixes=("_before", "_after"))
            frame.insert(0, "scenario", sc.name)
            frames.append(frame)
    comparison = pd.concat(frames, ignore_index=True)
    comparison["optimal_changed"] = comparison["optimal_before"] != comparison["optimal_after"]
    return UpdateResult(name=spec.name, fit=fitted, comparison=comparison, labels=labels,
                        before=_summary(original), after=fitted.summary,
                        warnings=tuple(_pooling_warnings(spec, new_rows)))


def _summary(path: Path) -> pd.DataFrame:
    """Posterior means of a fit's outputs, read from the posterior itself."""
    import xarray as xr

    with xr.open_datatree(path) as tree:
        outputs = [o for o in str(tree.attrs.get("outputs", "")).split(",") if o]
        post = tree["posterior"].to_dataset()
        return pd.DataFrame({"mean": [float(post[o].mean()) for o in outputs
                                      if set(post[o].dims) == {"chain", "draw"}]},
                            index=[o for o in outputs if set(post[o].dims) == {"chain", "draw"}])
