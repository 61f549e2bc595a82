"""Results -> files: the one place results are written to disk.

Every writer fills a results folder atomically (:func:`vbhc_model.report.files.write_directory`:
complete or absent, never half-written; an existing folder replaced only with ``force``).
:func:`write` picks the writer by the type of the result.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from vbhc_model import dims
from vbhc_model.defaults import PLANE_POINTS
from vbhc_model.report.files import add_to_marker, refuse_existing, write_directory, write_netcdf
from vbhc_model.report.frames import (
    column_dictionary,
    compare_frame,
    mcse_frame,
    plan_dashboard,
    plan_frame,
    plan_summary,
    price_frame,
    psa_frame,
    stack_stats,
    subgroup_frame,
    to_frame,
)
from vbhc_model.report.table import money
from vbhc_model.results import (
    AnalyseResult,
    CalibrationResult,
    CompareResult,
    DsaResult,
    FitResult,
    PlanResult,
    RunResult,
    UpdateResult,
    VoiResult,
)

#: The folder name of each kind of result: ``results/<name><suffix>``.
_SUFFIX = {RunResult: "", DsaResult: "_dsa", AnalyseResult: "_analysis", FitResult: "",
           CalibrationResult: "", UpdateResult: "_update", CompareResult: "_variants",
           PlanResult: "_plan"}


def default_folder(kind: type, name: str) -> Path:
    """Where a result of type ``kind`` named ``name`` goes when no folder is given:
    ``results/<name>`` in the working directory (``<scenario>``, ``<scenario>_dsa``,
    ``<table>_analysis``, ``<fit>``, ``<calibration>``, ``<fit>_update``). Known before the
    result exists, so that a command can refuse an existing folder before any work.

    Examples
    --------
    >>> default_folder(DsaResult, "thr").as_posix()
    'results/thr_dsa'
    """
    return Path("results") / f"{name}{_SUFFIX[kind]}"


def default_out(result) -> Path:
    """Where ``result`` goes when no folder is given (:func:`default_folder`); EVPPI goes into
    the folder it analysed."""
    if isinstance(result, VoiResult):
        return result.source
    if isinstance(result, (RunResult, DsaResult, CompareResult, PlanResult)):
        name = result.scenario.name
    elif isinstance(result, AnalyseResult):
        name = result.source.stem
    elif isinstance(result, (FitResult, CalibrationResult, UpdateResult)):
        name = result.name
    else:
        raise TypeError(f"no default folder for {type(result).__name__}")
    return default_folder(type(result), name)


@functools.singledispatch
def write(result, out: str | Path | None = None, *, force: bool = False, **options) -> Path:
    """Write ``result`` into ``out`` (default: :func:`default_out`); return the folder.

    Raises
    ------
    vbhc_model.report.files.OutputExistsError
        The folder (or, for VOI, ``evppi.nc``) exists and ``force`` is false.
    """
    raise TypeError(f"no writer for {type(result).__name__}")


@write.register
def write_run(result: RunResult, out: str | Path | None = None, *, force: bool = False,
              renderer=None) -> Path:
    """``outcomes.nc``, ``summary.csv`` and ``summary_columns.csv`` (what each column holds,
    with units), ``subgroups.csv`` when the scenario declares subgroups; with a PSA also
    ``psa.nc``, ``psa_summary.nc``, ``psa_curves.nc`` and the figures; with per-patient
    results ``patients.nc``; with a microsimulation PSA ``psa_montecarlo.nc`` (the split of
    the variance between parameters and patients).

    Parameters
    ----------
    renderer : vbhc_model.report.render.Renderer, optional
        Draw the figures in this helper process while the tables are written.
    """
    out = Path(out) if out is not None else default_out(result)

    def fill(tmp: Path) -> None:
        drawing = None
        if result.psa is not None:
            from vbhc_model.report.render import render

            jobs = figure_jobs(result)
            drawing = (renderer.submit(jobs, tmp / "figures") if renderer is not None
                       else None)
        try:
            tables(tmp)
        except BaseException:
            # the helper draws into tmp: let it finish before tmp is cleaned away (it would
            # otherwise write figures into a folder already removed: litter after a full disk)
            if drawing is not None:
                with contextlib.suppress(Exception):
                    drawing.result()
            raise
        if drawing is not None:
            drawing.result()
        elif result.psa is not None:
            render(jobs, tmp / "figures")

    def tables(tmp: Path) -> None:
        write_netcdf(result.outcomes, tmp / "outcomes.nc")
        if result.patients is not None:
            write_netcdf(result.patients, tmp / "patients.nc")
        frame = to_frame(result.table)
        if result.psa is not None:
            write_netcdf(result.psa, tmp / "psa.nc")
            write_netcdf(result.psa_summary, tmp / "psa_summary.nc")
            write_netcdf(result.psa_curves, tmp / "psa_curves.nc")
            if result.montecarlo is not None:
                write_netcdf(result.montecarlo, tmp / "psa_montecarlo.nc")
            frame = frame.merge(psa_frame(result.psa_summary), on="strategy", how="left")
        errors = mcse_frame(result.outcomes, result.scenario.settings.effect)
        if errors is not None:
            frame = frame.merge(errors, on="strategy", how="left")
        frame.to_csv(tmp / "summary.csv", index=False, float_format="%.10g")
        if result.subgroups is not None:
            groups = subgroup_frame(result.subgroups)
            groups.to_csv(tmp / "subgroups.csv", index=False, float_format="%.10g")
            column_dictionary(groups.columns, _currency(result),
                              result.scenario.settings.effect).to_csv(
                tmp / "subgroups_columns.csv", index=False)
        column_dictionary(frame.columns, _currency(result), result.scenario.settings.effect).to_csv(
            tmp / "summary_columns.csv", index=False)
        if result.prices is not None:
            price_frame(result.prices).to_csv(tmp / "prices.csv", index=False,
                                              float_format="%.10g")

    return write_directory(out, fill, force=force)


def _currency(result: RunResult) -> str:
    """The currency and price year of a run's outcomes ("USD 2025")."""
    return money(result.outcomes.attrs)


def figure_jobs(result: RunResult) -> dict[str, tuple[str, tuple]]:
    """The figures of a PSA run, with only the data each one draws."""
    effect = result.scenario.settings.effect
    # The CE plane shows at most PLANE_POINTS draws per strategy: only those are read (the
    # PSA may be a lazy, file-backed million draws) and sent to the figure helper.
    step = max(1, result.psa.sizes[dims.DRAW] // PLANE_POINTS)
    plane = result.psa[["total_cost", effect]].isel({dims.DRAW: slice(None, None, step)}).load()
    plane.attrs = {k: v for k, v in result.psa.attrs.items() if k in ("currency", "price_year")}
    plane.attrs["wtp"] = [float(w) for w in result.scenario.settings.wtp]
    curves = result.psa_curves
    return {"ce_plane": ("ce_plane", (plane, effect)),
            "ceac": ("acceptability_curves", (curves,)),
            "evpi": ("evpi_curve", (curves,)),
            "expected_loss": ("expected_loss", (curves,))}


@write.register
def write_voi(result: VoiResult, out: str | Path | None = None, *,
              force: bool = False) -> Path:
    """``evppi.nc`` and the EVPPI bar chart, added to the results folder analysed."""
    from vbhc_model.report import figures

    folder = Path(out) if out is not None else default_out(result)
    target = folder / "evppi.nc"
    refuse_existing(target, force, option="")
    folder.mkdir(parents=True, exist_ok=True)
    write_netcdf(result.table, target)
    figures.write_figures({"evppi": figures.evppi_bars(result.table)}, folder / "figures")
    add_to_marker(folder, ["evppi.nc", "figures/evppi.png", "figures/evppi.svg"])
    return folder


@write.register
def write_plan(result: PlanResult, out: str | Path | None = None, *, force: bool = False) -> Path:
    """``plan.nc`` (the summary by mix and calendar year) and ``plan.csv`` (a row per year and
    measure: the new mix with its 95% interval, the current mix, the increment)."""
    out = Path(out) if out is not None else default_out(result)
    summary = plan_summary(result.totals)

    def fill(tmp: Path) -> None:
        write_netcdf(stack_stats(summary), tmp / "plan.nc")
        plan_frame(summary).to_csv(tmp / "plan.csv", index=False, float_format="%.10g")
        plan_dashboard(summary).to_csv(tmp / "plan_dashboard.csv", index=False,
                                       float_format="%.10g")

    return write_directory(out, fill, force=force)


@write.register
def write_compare(result: CompareResult, out: str | Path | None = None, *,
                  force: bool = False) -> Path:
    """``variants.nc`` and ``variants.csv`` (a row per variant and strategy)."""
    out = Path(out) if out is not None else default_out(result)

    def fill(tmp: Path) -> None:
        write_netcdf(result.table, tmp / "variants.nc")
        compare_frame(result.table).to_csv(tmp / "variants.csv", index=False,
                                           float_format="%.10g")

    return write_directory(out, fill, force=force)


@write.register
def write_dsa(result: DsaResult, out: str | Path | None = None, *, force: bool = False) -> Path:
    """``dsa.nc`` (the one-way table; the threshold in its attrs), ``two_way.nc`` and the
    tornado and two-way figures."""
    from vbhc_model.report import figures

    out = Path(out) if out is not None else default_out(result)

    def fill(tmp: Path) -> None:
        one = result.one_way.copy()
        if result.threshold is not None:
            one.attrs.update({f"threshold_{k}": str(v)
                              for k, v in result.threshold.as_dict().items()})
        write_netcdf(one, tmp / "dsa.nc")
        figs = {"tornado": figures.tornado(one)}
        if result.two_way is not None:
            write_netcdf(result.two_way, tmp / "two_way.nc")
            figs["two_way"] = figures.two_way_map(result.two_way)
        figures.write_figures(figs, tmp / "figures")

    return write_directory(out, fill, force=force)


@write.register
def write_analyse(result: AnalyseResult, out: str | Path | None = None, *,
                  force: bool = False) -> Path:
    """``summary.csv``, ``psa_summary.nc``, ``psa_curves.nc``, ``evppi.nc`` (if parameters)
    and the figures."""
    from vbhc_model.report import figures

    out = Path(out) if out is not None else default_out(result)

    def fill(tmp: Path) -> None:
        frame = result.frontier.drop_vars("input_index").to_dataframe().reset_index()
        frame.merge(psa_frame(result.summary), on="strategy").to_csv(
            tmp / "summary.csv", index=False, float_format="%.10g")
        write_netcdf(result.summary, tmp / "psa_summary.nc")
        write_netcdf(result.curves, tmp / "psa_curves.nc")
        figs = {"ce_plane": figures.ce_plane(result.psa),
                "ceac": figures.acceptability_curves(result.curves),
                "evpi": figures.evpi_curve(result.curves),
                "expected_loss": figures.expected_loss(result.curves)}
        if result.evppi is not None:
            write_netcdf(result.evppi, tmp / "evppi.nc")
            figs["evppi"] = figures.evppi_bars(result.evppi)
        figures.write_figures(figs, tmp / "figures")

    return write_directory(out, fill, force=force)


@write.register
def write_fit(result: FitResult, out: str | Path | None = None, *, force: bool = False) -> Path:
    """``posterior.nc``, ``summary.csv`` and ``figures/`` (trace, posterior predictive) into a
    results folder; or, when ``out`` names a ``.nc`` file, the posterior alone (how a
    maintainer refreshes a shipped posterior). Returns the folder or the file."""
    draw = (lambda folder: _fit_figures(result, folder)) if result.figures else None
    return _write_posterior(result.idata, result.summary, _target(result, out), draw,
                            force=force)


@write.register
def write_calibration(result: CalibrationResult, out: str | Path | None = None, *,
                      force: bool = False) -> Path:
    """``posterior.nc`` and ``summary.csv`` into a results folder, or the posterior alone into
    a ``.nc`` file. Returns the folder or the file."""
    return _write_posterior(result.tree, result.summary, _target(result, out), force=force)


@write.register
def write_update(result: UpdateResult, out: str | Path | None = None, *,
                 force: bool = False) -> Path:
    """``posterior.nc`` (the refit), ``posterior_summary.csv`` and ``comparison.csv``."""
    def fill(tmp: Path) -> None:
        write_netcdf(result.fit.idata, tmp / "posterior.nc")
        result.fit.summary.to_csv(tmp / "posterior_summary.csv")
        result.comparison.to_csv(tmp / "comparison.csv", index=False, float_format="%.6g")

    return write_directory(_target(result, out), fill, force=force)


def _target(result, out: str | Path | None) -> Path:
    return Path(out) if out is not None else default_out(result)


def _write_posterior(tree, summary, out: Path, draw=None, *, force: bool = False) -> Path:
    """A posterior written atomically: into the results folder ``out`` (``posterior.nc``,
    ``summary.csv`` and ``draw(folder)``'s figures, moved into place together), or, when
    ``out`` names a ``.nc`` file, that file alone via a temporary file. Either way a failure
    leaves an earlier result as it was, and an existing ``out`` is replaced only with
    ``force``."""
    refuse_existing(out, force)
    if out.suffix == ".nc":
        out.parent.mkdir(parents=True, exist_ok=True)
        write_netcdf(tree, out)
        return out

    def fill(tmp: Path) -> None:
        if draw is not None:
            draw(tmp / "figures")
        summary.to_csv(tmp / "summary.csv")
        write_netcdf(tree, tmp / "posterior.nc")

    return write_directory(out, fill, force=force)


def _fit_figures(result: FitResult, folder: Path) -> None:
    """The trace of the scalar outputs and the posterior predictive check."""
    from vbhc_model.report import figures

    idata = result.idata
    post = idata["posterior"].to_dataset()
    scalars = [v for v in result.outputs if set(post[v].dims) == {"chain", "draw"}]
    figs = {"trace": figures.fit_trace(post, scalars)} if scalars else {}
    if "posterior_predictive" in idata.children and "observed_data" in idata.children:
        figs["posterior_predictive"] = figures.fit_predictive(
            idata["observed_data"].to_dataset(), idata["posterior_predictive"].to_dataset())
    figures.write_figures(figs, folder)
