"""The public API: what each command does, callable from Python.

Each command is a pipeline step (vbhc_model.pipeline) that returns a typed result
(vbhc_model.results), and, for the commands that write, the report layer writing it
(:func:`vbhc_model.report.write.write`). The CLI is a thin layer over these functions.

Examples
--------
>>> from vbhc_model.api import run_scenario
>>> result = run_scenario()            # the default chronic-pain scenario
>>> str(result.table["status"].values[0])
'frontier'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vbhc_model.defaults import CHUNK_SIZE
from vbhc_model.errors import VbhcError
from vbhc_model.report.files import refuse_existing, work_path
from vbhc_model.report.write import default_folder, write, write_run
from vbhc_model.results import (
    AnalyseResult,
    CalibrationResult,
    CompareResult,
    DsaResult,
    FitResult,
    PlanResult,
    RunResult,
    UpdateResult,
    ValidationResult,
    VoiResult,
)
from vbhc_model.scenario import Scenario, default_scenario_path, load_scenario

__all__ = [
    "RunResult", "calibration_target", "check_psa", "compare_variants", "default_out_dir",
    "export_psa", "init_scenario", "load", "refuse_existing", "resumable", "run_analyse",
    "run_calibrate", "run_dsa", "run_fit", "run_folder", "run_scenario", "run_update", "run_voi",
    "validate", "work_path", "write", "write_run",
]


def load(scenario: Scenario | str | Path | None = None, variant: str | None = None) -> Scenario:
    """A loaded scenario, a scenario file, or None for the default chronic-pain scenario; with
    ``variant``, that variant of it (``variants:``)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario if scenario is not None else default_scenario_path())
    return scenario.with_variant(variant)


def default_out_dir(scenario: Scenario) -> Path:
    """``results/<scenario name>/`` in the working directory."""
    return default_folder(RunResult, scenario.name)


def check_psa(scenario: Scenario, draws: int, sampling: str = "mc") -> list[str]:
    """Refuse a PSA of ``draws`` draws that cannot run, before any work; return the notes to
    show before one that would not mean what it seems."""
    from vbhc_model.pipeline.run import check_psa as check

    return check(scenario, draws, sampling)


def run_scenario(
    scenario: Scenario | str | Path | None = None,
    *,
    trace: bool = False,
    draws: int = 0,
    seed: int | None = None,
    sampling: str = "mc",
    chunk_size: int = CHUNK_SIZE,
    progress=None,
    workers: int | None = None,
    scheduler: str | None = None,
    engine: str | None = None,
    patients: int | None = None,
    uniforms: str | Path | None = None,
    patient_file: bool = False,
    store: Path | None = None,
    resume: bool = False,
) -> RunResult:
    """Run the deterministic base case of a scenario, its incremental analysis and a PSA.

    Parameters are those of :func:`vbhc_model.pipeline.run.run`; ``scenario`` may also be a
    file or None (the default chronic-pain scenario). ``engine``, ``patients`` and ``uniforms``
    (a file relative to the working directory) override the scenario's settings;
    ``patient_file`` keeps the microsimulation's base case patient by patient
    (``settings.patient_output``). Write the result with :func:`write_run`.

    Returns
    -------
    RunResult
    """
    from vbhc_model.pipeline.run import run

    return run(load(scenario), trace=trace, draws=draws, seed=seed, sampling=sampling,
               chunk_size=chunk_size, progress=progress, workers=workers, scheduler=scheduler,
               engine=engine, patients=patients, uniforms=uniforms, patient_file=patient_file,
               store=store, resume=resume)


def run_folder(out: str | Path, *, resume: bool = False):
    """The locked work folder beside the results folder ``out`` for a run (a context manager
    yielding its path; :func:`vbhc_model.report.files.work_folder`): pass ``WORK / "psa"`` as
    :func:`run_scenario`'s ``store`` and write the result inside the block. With ``resume``
    the part files of an interrupted PSA found there are kept for it; otherwise an earlier
    run's work folder is cleaned."""
    from vbhc_model.report.files import work_folder

    return work_folder(Path(out), keep=("psa",), resume=resume)


def resumable(out: str | Path) -> int:
    """The finished chunks of an interrupted PSA in the work folder beside ``out``."""
    return len(list((work_path(Path(out)) / "psa").glob("part_*.nc")))


def run_voi(results: str | Path, *, params: str | Sequence[str] | None = None,
            groups: Sequence[str | Sequence[str]] | None = None,
            wtp: Sequence[float] | None = None, se: bool = False, force: bool = False,
            method: str = "gam", progress=None) -> VoiResult:
    """EVPI and EVPPI of the PSA in a results folder; writes ``evppi.nc`` and its figure there.

    ``params`` and each group may be comma-separated names (as on the command line);
    ``progress(done, total)`` is called after each EVPPI estimate.
    """
    from vbhc_model.pipeline.voi import voi

    refuse_existing(Path(results) / "evppi.nc", force, option="")
    result = voi(results, params=_names(params) if params else None,
                 groups=[_names(g) for g in groups or []], wtp=wtp, se=se, method=method,
                 progress=progress)
    write(result, force=force)
    return result


def engine_notes(scenario: Scenario, engine: str | None = None,
                 patients: int | None = None) -> list[str]:
    """What a user should know about the engine a run will use: ``--patients`` with the
    cohort (ignored), and a microsimulation that will simulate many patients per row of a
    patient table because ``settings.patients`` was left at its default."""
    s = scenario.settings
    engine = engine or s.engine
    notes = []
    if patients is not None and engine == "cohort":
        notes.append("--patients is for the microsimulation (--engine microsim); the cohort "
                     "engine has no patients and ignores it")
    pop = scenario.population
    if engine != "cohort" and patients is None and "patients" not in s.model_fields_set \
            and pop is not None and pop.patients is not None:
        from vbhc_model.scenario.checks import patient_table

        rows = len(patient_table(scenario).weights)
        notes.append(f"the microsimulation runs settings.patients = {s.patients:,} patients "
                     f"for each of the patient table's {rows:,} rows ({s.patients * rows:,} "
                     f"in all); --patients 1 follows each row once")
    return notes


def make_report(results: str | Path, *, out: str | Path | None = None,
                force: bool = False, plan: str | Path | None = None) -> Path:
    """``report.html`` (self-contained) and ``report.xlsx`` from a ``vbhc run`` results folder,
    written into ``out`` [RESULTS/report/], with the service plan of ``plan`` (a ``vbhc plan``
    folder; default: RESULTS/plan.nc if there). Returns the folder written."""
    from vbhc_model.report.files import write_directory
    from vbhc_model.report.html import build_report, report_workbook

    results = Path(results)
    target = Path(out) if out is not None else results / "report"
    refuse_existing(target, force)
    page = build_report(results, plan)  # before writing anything: a bad folder fails here

    def fill(tmp: Path) -> None:
        (tmp / "report.html").write_text(page, encoding="utf-8")
        report_workbook(results, tmp / "report.xlsx", plan)

    return write_directory(target, fill, force=force)


def run_plan(scenario: Scenario | str | Path | None = None, *, draws: int = 0,
             seed: int | None = None, out: str | Path | None = None, force: bool = False,
             variant: str | None = None, progress=None):
    """The scenario's service plan (``plan:``) year by year, or its variant's; writes
    ``plan.nc`` and ``plan.csv`` into ``out`` [results/<scenario>_plan/]. Returns
    (PlanResult, folder)."""
    from vbhc_model.pipeline.plan import plan

    scenario = load(scenario, variant)
    target = Path(out) if out is not None else default_folder(PlanResult, scenario.name)
    refuse_existing(target, force)
    result = plan(scenario, draws=draws, seed=seed, progress=progress)
    return result, write(result, target, force=force)


def compare_variants(scenario: Scenario | str | Path | None = None, *, draws: int = 0,
                     seed: int | None = None, sampling: str = "mc",
                     out: str | Path | None = None, force: bool = False, progress=None
                     ) -> tuple[CompareResult, Path]:
    """The base case and every variant of a scenario (``variants:``) side by side; writes
    ``variants.nc`` and ``variants.csv`` into ``out`` [results/<scenario>_variants/].

    Returns
    -------
    (CompareResult, Path)
    """
    from vbhc_model.pipeline.compare import compare

    scenario = load(scenario)
    if not scenario.variants:
        raise VbhcError(f"{scenario.source.file if scenario.source else 'the scenario'} has no "
                        "'variants:' section: nothing to compare (docs/scenario-format.md, "
                        "variants)")
    target = Path(out) if out is not None else default_folder(CompareResult, scenario.name)
    refuse_existing(target, force)
    result = compare(scenario, draws=draws, seed=seed, sampling=sampling, progress=progress)
    return result, write(result, target, force=force)


def run_dsa(scenario: Scenario | str | Path | None = None, *, wtp: float | None = None,
            params: str | Sequence[str] | None = None,
            two_way: str | Sequence[str] | None = None, threshold: str | None = None,
            strategy: str | None = None, out: str | Path | None = None,
            force: bool = False, engine: str | None = None,
            patients: int | None = None) -> tuple[DsaResult, Path]:
    """One-way analysis (with tornado), and optionally a two-way map and a threshold; writes
    ``dsa.nc`` (and ``two_way.nc``) and the figures into ``out``. ``engine`` and
    ``patients`` override the scenario's settings (a microsimulation DSA gives every
    variation the same patients).

    Returns
    -------
    (DsaResult, Path)
        The result and the folder written.
    """
    from vbhc_model.pipeline.dsa import run_dsa as dsa

    scenario = load(scenario).with_settings(engine=engine, patients=patients)
    target = Path(out) if out is not None else default_folder(DsaResult, scenario.name)
    refuse_existing(target, force)
    result = dsa(scenario, wtp=wtp, names=_names(params) if params else None,
                 pair=_names(two_way) if two_way else None, threshold_of=threshold,
                 strategy=strategy)
    return result, write(result, target, force=force)


def run_analyse(table: str | Path, *, wtp: Sequence[float], out: str | Path | None = None,
                force: bool = False, method: str = "gam",
                names: str | dict[str, str] | None = None) -> tuple[AnalyseResult, Path]:
    """The analyses of a PSA exported from another tool (a CSV table, or a folder of BCEA's or
    dampack's matrices): frontier on means, acceptability, EVPI, and EVPPI of each parameter
    column. ``names`` maps other column names (``"cost=c_,effect=e_"``, see
    :mod:`vbhc_model.readers.tables`). Writes ``summary.csv``, ``psa_summary.nc``,
    ``evppi.nc`` (if parameters) and figures into ``out``.

    Returns
    -------
    (AnalyseResult, Path)
        The result and the folder written.
    """
    from vbhc_model.pipeline.analyse import analyse
    from vbhc_model.readers.tables import parse_map

    names = parse_map(names) if isinstance(names, str) or names is None else dict(names)
    target = Path(out) if out is not None else default_folder(AnalyseResult, Path(table).stem)
    if wtp:
        refuse_existing(target, force)
    result = analyse(table, wtp=wtp, method=method, names=names)
    return result, write(result, target, force=force)


def export_psa(results: str | Path, fmt: str = "csv", *, out: str | Path | None = None,
               force: bool = False) -> Path:
    """The PSA of a results folder (``psa.nc`` of ``vbhc run --draws``) as tables for other
    tools: ``csv`` (wide: ``cost_<s>``, ``effect_<s>`` and the parameters, one row per draw),
    ``long`` (``draw, strategy, cost, effect`` and the parameters), ``bcea`` (a folder:
    ``e.csv``, ``c.csv``, ``parameters.csv``) or ``dampack`` (a folder: ``cost.csv``,
    ``effectiveness.csv``, ``parameters.csv``); see docs/interop.md. ``out`` defaults to
    ``results/<RESULTS name>_psa.csv`` (``_psa_long.csv``, ``_bcea/``, ``_dampack/``).
    ``vbhc analyse`` reads each back. Returns the file or folder written.
    """
    import xarray as xr

    from vbhc_model.readers.tables import EXPORT_FORMATS, psa_to_frames
    from vbhc_model.report.files import write_directory

    results = Path(results)
    if fmt not in EXPORT_FORMATS:
        raise VbhcError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    path = results / "psa.nc"
    if not path.is_file():
        raise VbhcError(f"{path}: not found; export needs the results of 'vbhc run SCENARIO "
                        "--draws N'")
    suffix = {"csv": "_psa.csv", "long": "_psa_long.csv", "bcea": "_bcea",
              "dampack": "_dampack"}[fmt]
    target = Path(out) if out is not None else Path("results") / f"{results.resolve().name}{suffix}"
    single = fmt in ("csv", "long")
    if single:
        _refuse_file(target, force)
    else:
        refuse_existing(target, force)
    with xr.open_dataset(path) as ds:
        psa = ds.load()
    frames = psa_to_frames(psa, fmt, psa.attrs.get("effect", "qalys"))
    if single:
        return _write_csv(frames["psa.csv"], target)

    def fill(tmp: Path) -> None:
        for name, frame in frames.items():
            frame.to_csv(tmp / name, index=False, float_format="%.17g")
        (tmp / "README.txt").write_text(_r_note(fmt, psa), encoding="utf-8")

    return write_directory(target, fill, force=force)


def _refuse_file(path: Path, force: bool) -> None:
    """A file ``vbhc export`` writes: refused if it exists (unless ``force``: then only a
    regular file is replaced, never a folder or a link)."""
    if not (path.exists() or path.is_symlink()):
        return
    if not force:
        raise VbhcError(f"{path}: already exists; choose another --out or pass --force to "
                        "replace it")
    if path.is_symlink() or not path.is_file():
        raise VbhcError(f"{path}: is not a regular file; --force replaces only a file: choose "
                        "another --out")


def _write_csv(frame, path: Path) -> Path:
    """``frame`` to ``path`` atomically (a temporary file beside it, renamed into place),
    every bit of each number kept."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False, float_format="%.17g")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _r_note(fmt: str, psa) -> str:
    """README.txt of an exported folder: what it holds and the R lines that read it."""
    scenario = psa.attrs.get("scenario_title") or psa.attrs.get("scenario", "")
    effect = str(psa.attrs.get("effect", "qalys"))
    head = (f"PSA of {scenario}: {psa.sizes['draw']} draws, written by vbhc export "
            f"--format {fmt}.\nOne row per draw, one column per strategy (headers: the "
            "strategies' labels); costs in "
            f"{psa.attrs.get('currency', '')} {psa.attrs.get('price_year', '')}, effects in "
            f"{ {'qalys': 'QALYs', 'life_years': 'life years'}.get(effect, effect)}, per "
            "person, discounted.\n\nIn R:\n")
    if fmt == "bcea":
        return head + (
            'e <- as.matrix(read.csv("e.csv", check.names = FALSE))\n'
            'c <- as.matrix(read.csv("c.csv", check.names = FALSE))\n'
            'he <- BCEA::bcea(e, c, ref = 1, interventions = colnames(e))\n'
            '# EVPPI: inp <- read.csv("parameters.csv"); BCEA::evppi(he, names(inp)[1:2], inp)\n')
    return head + (
        'cost <- read.csv("cost.csv", check.names = FALSE)\n'
        'effectiveness <- read.csv("effectiveness.csv", check.names = FALSE)\n'
        'parameters <- read.csv("parameters.csv", check.names = FALSE)\n'
        'psa <- dampack::make_psa_obj(cost, effectiveness, parameters, '
        'strategies = names(cost), currency = "$")\n')


def run_fit(fit_file: str | Path, *, out: str | Path | None = None, force: bool = False,
            allow_unconverged: bool = False, draws: int | None = None, tune: int | None = None,
            chains: int | None = None, seed: int | None = None,
            target_accept: float | None = None) -> tuple[FitResult, Path]:
    """Fit a fit file's model with PyMC and write its posterior, summary and figures into
    ``out`` (default ``results/<fit name>/``; a ``.nc`` path writes the posterior alone).
    An existing ``out`` is refused before sampling unless ``force``.

    Returns
    -------
    (FitResult, Path)
        The result and the folder (or file) written.
    """
    from vbhc_model.fitting.run import fit
    from vbhc_model.fitting.spec import load_fit_file

    target = Path(out) if out is not None else default_folder(
        FitResult, load_fit_file(Path(fit_file))[0].name)
    refuse_existing(target, force)
    result = fit(fit_file, allow_unconverged=allow_unconverged, draws=draws, tune=tune,
                 chains=chains, seed=seed, target_accept=target_accept)
    return result, write(result, target, force=force)


def calibration_target(calibration_file: str | Path, out: str | Path | None = None) -> Path:
    """Where ``vbhc calibrate`` writes: ``out``, or ``results/<calibration name>/``."""
    from vbhc_model.pipeline.calibrate import calibration_name

    return Path(out) if out is not None else default_folder(CalibrationResult,
                                                            calibration_name(calibration_file))


def run_calibrate(calibration_file: str | Path, *, out: str | Path | None = None,
                  force: bool = False,
                  allow_unconverged: bool = False) -> tuple[CalibrationResult, Path]:
    """Calibrate scenario parameters to observed targets and write the posterior and its
    summary into ``out`` (default ``results/<calibration name>/``; a ``.nc`` path writes the
    posterior alone). An existing ``out`` is refused before any model run unless ``force``.

    Returns
    -------
    (CalibrationResult, Path)
    """
    from vbhc_model.pipeline.calibrate import calibrate

    target = calibration_target(calibration_file, out)
    refuse_existing(target, force)
    result = calibrate(calibration_file, allow_unconverged=allow_unconverged)
    return result, write(result, target, force=force)


def run_update(fit_file: str | Path, data: str | Path, *,
               scenarios: Sequence[str | Path] | None = None, draws: int = 2_000,
               seed: int | None = None, out: str | Path | None = None,
               force: bool = False, fit_draws: int | None = None,
               fit_tune: int | None = None,
               fit_chains: int | None = None) -> tuple[UpdateResult, Path]:
    """Refit with the rows of ``data`` appended, rerun the scenarios that use the fit, and
    write the refit posterior and the comparison into ``out`` (default
    ``results/<fit name>_update/``). The shipped posterior is left as it is.
    ``fit_draws``, ``fit_tune`` and ``fit_chains`` override the fit file's sampling settings
    for the refit (a borderline R-hat or ESS needs a longer run, not an edited fit file).

    Returns
    -------
    (UpdateResult, Path)

    Raises
    ------
    vbhc_model.fitting.run.ConvergenceError
        The refit failed the convergence gate (exit code 3); the message says which options
        sample longer.
    """
    from vbhc_model.fitting.run import FIT_ADVICE, ConvergenceError
    from vbhc_model.fitting.spec import load_fit_file
    from vbhc_model.pipeline.update import update

    target = Path(out) if out is not None else default_folder(
        UpdateResult, load_fit_file(Path(fit_file))[0].name)
    refuse_existing(target, force)
    sampling = {k: v for k, v in (("draws", fit_draws), ("tune", fit_tune),
                                  ("chains", fit_chains)) if v is not None}
    try:
        result = update(fit_file, data, scenarios=[Path(p) for p in scenarios] if scenarios
                        else None, draws=draws, seed=seed, fit_kwargs=sampling)
    except ConvergenceError as exc:
        # vbhc fit's advice names options update does not have: update's own instead
        raise ConvergenceError(f"{str(exc).replace(FIT_ADVICE, '').rstrip()}\nTo sample the "
                               "refit longer without editing the fit "
                               "file: vbhc update ... --fit-draws N --fit-tune N "
                               "(--fit-chains N)") from None
    return result, write(result, target, force=force)


def validate(paths: Sequence[str | Path], *, draws: int = 0,
             seed: int | None = None) -> ValidationResult:
    """Check scenario files: schema, references, the base case's numbers and, with
    ``draws``, the numbers of that many sampled PSA draws."""
    from vbhc_model.pipeline.validate import validate as check

    return check(paths, draws=draws, seed=seed)


def init_scenario(name: str, *, source: str | Path | None = None,
                  folder: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Copy a shipped scenario (``source``: a name such as ``pain_course_au`` or
    ``reference/thr_dmhee``, or a scenario file; default the chronic-pain scenario) to
    ``folder/NAME.yaml`` [``./NAME/``] with every file it names by a relative path
    (posteriors, tables of samples, patient tables, uniforms) and the fit files of its
    posteriors, at the same relative paths, so that the copy runs wherever it is. A folder
    that exists and is not empty is refused. Returns the new scenario file and the files
    copied with it.
    """
    from vbhc_model.scenario.copying import copy_scenario

    return copy_scenario(name, source, folder)


def _names(text: str | Sequence[str]) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (a list is kept, stripped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s.strip()]

