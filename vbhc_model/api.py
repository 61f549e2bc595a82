"""The public API: what the CLI does, callable from Python.

Examples
--------
>>> from vbhc_model.api import run_scenario
>>> result = run_scenario()            # the default chronic-pain scenario
>>> str(result.table["status"].values[0])
'frontier'
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.acceptability import analyse_psa, psa_frame, wtp_grid
from vbhc_model.analysis.summary import summarise, to_frame
from vbhc_model.errors import VbhcError
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.report.files import write_directory, write_netcdf
from vbhc_model.scenario import Scenario, default_scenario_path, load_scenario


@dataclass(frozen=True)
class RunResult:
    """A finished run: the scenario, its base-case outcomes and decision table, and the PSA."""

    scenario: Scenario
    outcomes: xr.Dataset
    table: xr.Dataset
    psa: xr.Dataset | None = None
    psa_summary: xr.Dataset | None = None
    psa_curves: xr.Dataset | None = None


def run_scenario(
    scenario: Scenario | str | Path | None = None,
    *,
    trace: bool = False,
    draws: int = 0,
    seed: int | None = None,
    sampling: str = "mc",
    chunk_size: int = 10_000,
    progress=None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> RunResult:
    """Run the deterministic base case of a scenario, its incremental analysis and a PSA.

    Parameters
    ----------
    scenario : Scenario, path or None
        A loaded scenario, a scenario file, or None for the default chronic-pain scenario.
    trace : bool
        Keep the state trace and per-cycle outcomes of the base case.
    draws : int
        Number of PSA draws (0: base case only).
    seed : int, optional
        PSA seed (default: the scenario's ``settings.seed``).
    sampling : {"mc", "lhs", "sobol"}
    chunk_size : int
        PSA draws simulated at once.
    progress : callable, optional
        ``progress(done, total)`` after each PSA chunk.
    workers, scheduler : optional
        Run the PSA chunks on a dask.distributed LocalCluster with this many workers, or on
        the cluster at this scheduler address; results are identical to the in-process run.

    Returns
    -------
    RunResult
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario if scenario is not None else default_scenario_path())
    outcomes = simulate(scenario, base_draws(scenario, 1), trace=trace, per_cycle=trace)
    table = summarise(outcomes, scenario.settings.wtp, scenario.settings.effect)
    if not draws:
        return RunResult(scenario, outcomes, table)
    # More than one chunk: results go to part files read back lazily, so memory does not grow
    # with the number of draws; the files are removed with the result.
    store = Path(tempfile.mkdtemp(prefix="vbhc_psa_")) if draws > chunk_size else None
    psa = run_psa(scenario, draws, seed=seed, method=sampling, chunk_size=chunk_size,
                  progress=progress, workers=workers, scheduler=scheduler, store=store)
    s = scenario.settings
    population = s.population.effective() if s.population else None
    psa_summary = analyse_psa(psa, s.wtp, s.effect, population)
    curves = analyse_psa(psa, wtp_grid(s.wtp), s.effect, population, frontier=False)
    result = RunResult(scenario, outcomes, table, psa, psa_summary, curves)
    if store is not None:
        weakref.finalize(result, shutil.rmtree, store, True)
    return result


def default_out_dir(scenario: Scenario) -> Path:
    """``results/<scenario name>/`` in the working directory."""
    return Path("results") / scenario.name


def write_run(result: RunResult, out: str | Path | None = None, *, force: bool = False,
              renderer=None) -> Path:
    """Write ``outcomes.nc`` and ``summary.csv`` atomically into ``out``; with a PSA also
    ``psa.nc``, ``psa_summary.nc``, ``psa_curves.nc`` and the figures.

    Parameters
    ----------
    renderer : vbhc_model.report.render.Renderer, optional
        Draw the figures in this helper process while the tables are written.

    Raises
    ------
    vbhc_model.report.files.OutputExistsError
        ``out`` exists and ``force`` is false.
    """
    out = Path(out) if out is not None else default_out_dir(result.scenario)

    def write(tmp: Path) -> None:
        drawing = None
        if result.psa is not None:
            from vbhc_model.report.render import render

            jobs = _figure_jobs(result)
            drawing = (renderer.submit(jobs, tmp / "figures") if renderer is not None
                       else None)
        write_netcdf(result.outcomes, tmp / "outcomes.nc")
        frame = to_frame(result.table)
        if result.psa is not None:
            write_netcdf(result.psa, tmp / "psa.nc")
            write_netcdf(result.psa_summary, tmp / "psa_summary.nc")
            write_netcdf(result.psa_curves, tmp / "psa_curves.nc")
            frame = frame.merge(psa_frame(result.psa_summary), on="strategy", how="left")
        frame.to_csv(tmp / "summary.csv", index=False, float_format="%.10g")
        if drawing is not None:
            drawing.result()
        elif result.psa is not None:
            render(jobs, tmp / "figures")

    return write_directory(out, write, force=force)


def _figure_jobs(result: RunResult) -> dict[str, tuple[str, tuple]]:
    """The figures of a PSA run, with only the data each one draws."""
    from vbhc_model.defaults import PLANE_POINTS

    effect = result.scenario.settings.effect
    # The CE plane shows at most PLANE_POINTS draws per strategy: only those are read (the
    # PSA may be a lazy, file-backed million draws) and sent to the figure helper.
    step = max(1, result.psa.sizes[dims.DRAW] // PLANE_POINTS)
    plane = result.psa[["total_cost", effect]].isel({dims.DRAW: slice(None, None, step)}).load()
    plane.attrs = {k: v for k, v in result.psa.attrs.items() if k == "currency"}
    curves = result.psa_curves
    return {"ce_plane": ("ce_plane", (plane, effect)),
            "ceac": ("acceptability_curves", (curves,)),
            "evpi": ("evpi_curve", (curves,)),
            "expected_loss": ("expected_loss", (curves,))}


def run_voi(results: str | Path, *, params: str | None = None, groups: list[str] | None = None,
            wtp: list[float] | None = None, se: bool = False, force: bool = False,
            method: str = "gam"):
    """EVPI and EVPPI of the PSA in a results directory; writes ``evppi.nc`` there.

    Returns
    -------
    (xarray.Dataset, xarray.DataArray)
        The EVPPI table (ranked by EVPPI at the first WTP) and the EVPI by WTP.
    """
    from vbhc_model.analysis.voi import evppi_table, varying_parameters

    results = Path(results)
    path = results / "psa.nc"
    if not path.exists():
        raise VbhcError(f"{path}: not found; run 'vbhc run SCENARIO --draws N' first")
    target = results / "evppi.nc"
    if target.exists() and not force:
        raise VbhcError(f"{target}: already exists; pass --force to replace it")
    with xr.open_dataset(path) as ds:
        psa = ds.load()
    effect = psa.attrs.get("effect", "qalys")
    if wtp:
        lam = list(wtp)
    else:
        with xr.open_dataset(results / "psa_summary.nc") as summary:
            lam = [float(w) for w in summary["wtp"].values]
    sampled = varying_parameters(psa)
    singles = [p.strip() for p in params.split(",")] if params else sampled
    wanted = {p: [p] for p in singles}
    for g in groups or []:
        members = [m.strip() for m in g.split(",") if m.strip()]
        wanted["+".join(members)] = members
    table = evppi_table(psa, wanted, lam, effect, n_se=100 if se else 0, method=method)
    table = table.sortby(-table["evppi"].isel(wtp=0))
    evpi = table["evpi"]  # of the same draws (evppi_table computes it for its check)
    table.attrs.update({k: v for k, v in psa.attrs.items() if k.startswith("scenario")})
    write_netcdf(table, target)
    from vbhc_model.report import figures

    figures.write_figures({"evppi": figures.evppi_bars(table)}, results / "figures")
    return table, evpi


def run_dsa(scenario: Scenario | str | Path | None = None, *, wtp: float | None = None,
            params: str | None = None, two_way: str | None = None,
            threshold: str | None = None, strategy: str | None = None,
            out: str | Path | None = None, force: bool = False) -> dict:
    """One-way analysis (with tornado), and optionally a two-way map and a threshold; writes
    ``dsa.nc`` (and ``two_way.nc``) and the figures into ``out``."""
    from vbhc_model.pipeline import dsa
    from vbhc_model.report import figures

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario if scenario is not None else default_scenario_path())
    lam = float(wtp if wtp is not None else scenario.settings.wtp[0])
    names = [p.strip() for p in params.split(",")] if params else None
    target = Path(out) if out is not None else Path("results") / f"{scenario.name}_dsa"
    if target.exists() and not force:
        raise VbhcError(f"{target}: already exists; choose another --out or pass --force")
    result: dict = {"one_way": dsa.one_way(scenario, lam, names)}
    if two_way:
        pair = [p.strip() for p in two_way.split(",")]
        if len(pair) != 2:
            raise VbhcError(f"--two-way takes two parameters A,B; got {two_way!r}")
        result["two_way"] = dsa.two_way(scenario, pair[0], pair[1], lam)
    if threshold:
        if not strategy:
            raise VbhcError("--threshold needs --strategy")
        result["threshold"] = dsa.threshold(scenario, threshold, strategy, lam)

    def write(tmp: Path) -> None:
        one = result["one_way"]
        if "threshold" in result:
            one.attrs.update({f"threshold_{k}": str(v) for k, v in result["threshold"].items()})
        write_netcdf(one, tmp / "dsa.nc")
        figs = {"tornado": figures.tornado(one)}
        if "two_way" in result:
            write_netcdf(result["two_way"], tmp / "two_way.nc")
            figs["two_way"] = figures.two_way_map(result["two_way"])
        figures.write_figures(figs, tmp / "figures")

    result["dir"] = write_directory(target, write, force=force)
    return result


def run_analyse(table: str | Path, *, wtp: list[float], out: str | Path | None = None,
                force: bool = False, method: str = "gam") -> dict:
    """The analyses of a PSA exported from another tool (CSV): frontier on means,
    acceptability, EVPI, and EVPPI of each parameter column. Writes ``summary.csv``,
    ``psa_summary.nc``, ``evppi.nc`` (if parameters) and figures into ``out``."""
    from vbhc_model.analysis.frontier import compute_icers
    from vbhc_model.analysis.voi import evppi_table, varying_parameters
    from vbhc_model.readers.tables import read_psa_csv
    from vbhc_model.report import figures

    if not wtp:
        raise VbhcError("give at least one --wtp value")
    psa = read_psa_csv(table)
    target = Path(out) if out is not None else Path("results") / f"{Path(table).stem}_analysis"
    if target.exists() and not force:
        raise VbhcError(f"{target}: already exists; choose another --out or pass --force")
    means = psa.mean(dims.DRAW)
    frontier = compute_icers(means["total_cost"].values, means["qalys"].values,
                             means[dims.STRATEGY].values)
    summary = analyse_psa(psa, wtp)
    curves = analyse_psa(psa, wtp_grid(wtp), frontier=False)
    voi = None
    names = varying_parameters(psa) if "parameters" in psa else []
    if names:  # parameter columns that never vary explain nothing: no EVPPI to rank
        voi = evppi_table(psa, {n: [n] for n in names}, wtp, method=method)
        voi = voi.sortby(-voi["evppi"].isel(wtp=0))

    def write(tmp: Path) -> None:
        frame = frontier.drop_vars("input_index").to_dataframe().reset_index()
        frame.merge(psa_frame(summary), on="strategy").to_csv(tmp / "summary.csv", index=False,
                                                              float_format="%.10g")
        write_netcdf(summary, tmp / "psa_summary.nc")
        write_netcdf(curves, tmp / "psa_curves.nc")
        figs = {"ce_plane": figures.ce_plane(psa), "ceac": figures.acceptability_curves(curves),
                "evpi": figures.evpi_curve(curves), "expected_loss": figures.expected_loss(curves)}
        if voi is not None:
            write_netcdf(voi, tmp / "evppi.nc")
            figs["evppi"] = figures.evppi_bars(voi)
        figures.write_figures(figs, tmp / "figures")

    return {"frontier": frontier, "summary": summary, "evppi": voi,
            "unpaired_columns": psa.attrs.get("unpaired_columns", ""),
            "dir": write_directory(target, write, force=force)}
