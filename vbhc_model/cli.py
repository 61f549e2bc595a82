"""The ``vbhc`` command line: thin, options in, the public API called, results printed.

A user's mistake (a :class:`~vbhc_model.errors.VbhcError`) is printed as a message with exit
code 2; anything else is a bug in vbhc_model and says so (exit 1; ``VBHC_DEBUG=1`` shows the
traceback).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

import vbhc_model
from vbhc_model.allocator import tune_allocator
from vbhc_model.defaults import CHUNK_SIZE
from vbhc_model.errors import ScenarioError, VbhcError

app = typer.Typer(
    name="vbhc",
    help="Cost-effectiveness and value modelling of health programmes (Markov cohort).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help text is plain: "[default ...]" in an option's help is text, not rich markup (which
    # swallowed it and left a stray " .").
    rich_markup_mode="markdown",
)

USER_ERROR = 2


class EngineName(str, enum.Enum):
    cohort = "cohort"
    microsim = "microsim"


class Sampling(str, enum.Enum):
    mc = "mc"
    lhs = "lhs"
    sobol = "sobol"


class Metamodel(str, enum.Enum):
    gam = "gam"
    gp = "gp"


_METHOD_HELP = "EVPPI metamodel: spline regression (gam) or Gaussian process (gp, slower)."


def _user_errors(func):
    """Turn user errors into a message and exit code 2, and bugs into a clear report."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            if not getattr(func, "sets_process_itself", False):
                _process_settings()
            return func(*args, **kwargs)
        except VbhcError as exc:
            n = len(exc.issues) if isinstance(exc, ScenarioError) else 1
            typer.echo(f"error: {exc}" if n == 1 else f"{n} errors:\n{exc}", err=True)
            raise typer.Exit(getattr(exc, "exit_code", USER_ERROR)) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing was written", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if os.environ.get("VBHC_DEBUG"):
                raise
            typer.echo(
                f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in vbhc_model "
                f"{vbhc_model.__version__}; please report it with the command and scenario "
                "(set VBHC_DEBUG=1 for the traceback).",
                err=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _sets_process_itself(func):
    """Mark a command that calls :func:`_process_settings` itself, later than the others
    (``run``: after forking its figure helper)."""
    func.sets_process_itself = True
    return func


def _process_settings() -> None:
    """What only an entry point may set for the whole process: glibc's malloc thresholds
    (vbhc_model.allocator) and xarray's questions to dask left until dask is used
    (vbhc_model.lazy_dask). Run before each command, after its options are parsed (so not for
    --help)."""
    from vbhc_model import lazy_dask

    tune_allocator()
    lazy_dask.install()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vbhc_model {vbhc_model.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """vbhc: run scenario files and read their value for money."""


@app.command()
@_user_errors
@_sets_process_itself
def run(
    scenario: Annotated[
        Path | None, typer.Argument(help="Scenario file (default: the chronic-pain scenario).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory [results/SCENARIO/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    trace: Annotated[
        bool, typer.Option(help="Keep the state trace and per-cycle outcomes in outcomes.nc.")
    ] = False,
    draws: Annotated[
        int, typer.Option(min=0, help="Probabilistic analysis with this many draws (0: none).")
    ] = 0,
    seed: Annotated[int | None, typer.Option(
        help="Seed of the PSA and of the microsimulation's patients [settings.seed].")] = None,
    sampling: Annotated[
        Sampling, typer.Option(help="PSA sampling: Monte Carlo, Latin hypercube or Sobol.")
    ] = Sampling.mc,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="PSA draws simulated at once (bounds memory).")
    ] = CHUNK_SIZE,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Run PSA chunks on a dask LocalCluster.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run PSA chunks on the dask cluster at this address.")
    ] = None,
    engine: Annotated[
        EngineName | None, typer.Option(help="Simulation engine [the scenario's settings.engine].")
    ] = None,
    patients: Annotated[
        int | None,
        typer.Option(min=1, help="Microsimulation patients per draw (per attribute profile or "
                                 "patient-table row) [settings.patients]."),
    ] = None,
    uniforms: Annotated[
        Path | None,
        typer.Option(help="Microsimulation: replay these uniforms (.csv or .npy, a row per "
                          "patient, a column per cycle 0..n) [settings.uniforms]."),
    ] = None,
    patient_file: Annotated[
        bool,
        typer.Option("--patient-file", help="Microsimulation: also write patients.nc, each "
                     "patient's states and totals in the base case [settings.patient_output]."),
    ] = False,
    variant: Annotated[
        str | None,
        typer.Option(help="Run this variant of the scenario (its variants: section) "
                          "[results/SCENARIO_VARIANT/]."),
    ] = None,
    resume: Annotated[bool, typer.Option(
        help="Continue a PSA that was interrupted (Ctrl-C, kill, power cut) from its finished "
             "chunks in OUT.vbhc-work/; the same scenario and options are required.")] = False,
) -> None:
    """Run a scenario: print the frontier table, write outcomes.nc and summary.csv.

    With --draws, also run the probabilistic analysis: psa.nc, psa_summary.nc, and means,
    95% intervals and probabilities of being cost-effective in summary.csv.
    """
    _psa_options(draws, seed, sampling, chunk_size, workers, scheduler, resume)
    # The figure helper is forked first, while this process is single-threaded (numpy's BLAS
    # starts threads): it imports matplotlib while the model runs.
    with _figure_helper(draws) as renderer:
        _process_settings()
        from vbhc_model import api
        from vbhc_model.report.table import format_run, written

        loaded = api.load(scenario, variant)
        target = out if out is not None else api.default_out_dir(loaded)
        api.refuse_existing(target, force)  # fail before computing, not after
        for note in api.check_psa(loaded, draws, sampling.value) if draws else []:
            typer.echo(f"note: {note}", err=True)
        for note in api.engine_notes(loaded, engine.value if engine else None, patients):
            typer.echo(f"note: {note}", err=True)
        try:
            # The PSA's part files go to the work folder beside the results (locked: no other
            # command writes there meanwhile), kept after Ctrl-C or kill -9 for --resume.
            with api.run_folder(target, resume=resume) as work, \
                    _progress(draws) as progress:
                result = api.run_scenario(loaded, trace=trace, draws=draws, seed=seed,
                                          sampling=sampling.value, chunk_size=chunk_size,
                                          progress=progress, workers=workers,
                                          scheduler=scheduler,
                                          engine=engine.value if engine else None,
                                          patients=patients, uniforms=uniforms,
                                          patient_file=patient_file, store=work / "psa",
                                          resume=resume)
                folder = api.write_run(result, target, force=force, renderer=renderer)
                text = (json.dumps(_records(result), indent=2) if as_json
                        else format_run(result) + "\n\n" + written(folder))
        except KeyboardInterrupt:
            kept = api.resumable(target)
            typer.echo(f"interrupted: nothing was written to {target}"
                       + (f"; vbhc run --resume continues from the {kept} finished chunks in "
                          f"{api.work_path(target)}" if kept else ""), err=True)
            raise typer.Exit(130) from None
    typer.echo(text)


def _records(result) -> list:
    from vbhc_model.report.frames import run_records

    return run_records(result)


@contextlib.contextmanager
def _figure_helper(draws: int):
    """A helper process that draws a PSA's figures, started before the run's imports."""
    if not draws:
        yield None
        return
    from vbhc_model.report.render import Renderer

    with Renderer() as renderer:
        yield renderer


@contextlib.contextmanager
def _progress(total: int, label: str = "PSA draws"):
    """A progress bar on stderr, only on a terminal (redirected, stderr gets no stray line;
    hidden without work to count): ``progress(done, total)``; a caller's first call may set
    the total."""
    with typer.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                           hidden=not total or not _is_terminal(sys.stderr)) as bar:
        def update(done: int, of: int) -> None:
            bar.length = of  # the total is known only once the work starts (voi, compare)
            bar.update(done - bar.pos)
        yield update


def _is_terminal(stream) -> bool:
    """Whether ``stream`` is a terminal (a closed or odd stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _psa_options(draws, seed, sampling, chunk_size, workers, scheduler, resume=False) -> None:
    """PSA options need --draws; a cluster is local or remote."""
    given = [name for name, on in (("--seed", seed is not None),
                                   ("--sampling", sampling is not Sampling.mc),
                                   ("--chunk-size", chunk_size != CHUNK_SIZE),
                                   ("--workers", workers is not None),
                                   ("--scheduler", scheduler is not None),
                                   ("--resume", resume)) if on]
    if given and not draws:
        raise VbhcError(f"{given[0]} applies to the probabilistic analysis: add --draws N")
    if workers is not None and scheduler is not None:
        raise VbhcError("give --workers (a local cluster) or --scheduler (an existing one), "
                        "not both")


@app.command()
@_user_errors
def fit(
    fit_file: Annotated[Path, typer.Argument(help="Fit file (YAML): data, family, priors.")],
    out: Annotated[Path | None, typer.Option(
        help="Results directory (posterior.nc, summary.csv, figures) [results/FIT/], "
             "or a .nc file for the posterior alone.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing result.")] = False,
    allow_unconverged: Annotated[bool, typer.Option(
        help="Write the posterior even if it fails the convergence gate (marked so).")] = False,
    draws: Annotated[int | None, typer.Option(min=10, help="Draws per chain [sampling.draws].")] = None,
    tune: Annotated[int | None, typer.Option(min=0, help="Tuning steps [sampling.tune].")] = None,
    chains: Annotated[int | None, typer.Option(min=1, help="Chains [sampling.chains].")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed [sampling.seed].")] = None,
    target_accept: Annotated[float | None, typer.Option(
        min=0.51, max=0.999, help="NUTS target acceptance: higher (0.95, 0.99) takes smaller "
                                  "steps, against divergences [sampling.target_accept].")] = None,
) -> None:
    """Fit a model to trial data with PyMC and write its posterior for scenarios to use.

    Fails (exit code 3, nothing written) when R-hat > 1.01, ESS < 400 or any divergence (a
    fit file may make the gate stricter, not looser), saying what failed and what to try.
    Scenarios refuse posteriors written with --allow-unconverged. A shipped posterior is
    replaced only when named: --out scenarios/fits/NAME.nc --force.

    The custom family runs the Python file its fit file names (model: FILE.py) as it is:
    use it with trusted code only. An error raised in that file is reported as yours.
    """
    from vbhc_model.api import run_fit
    from vbhc_model.report.table import format_fit, written

    result, path = run_fit(fit_file, out=out, force=force, allow_unconverged=allow_unconverged,
                           draws=draws, tune=tune, chains=chains, seed=seed,
                           target_accept=target_accept)
    typer.echo(format_fit(result))
    if result.failures:
        typer.echo("NOT CONVERGED (written because of --allow-unconverged):\n  - "
                   + "\n  - ".join(result.failures), err=True)
    typer.echo(written(path))


@app.command()
@_user_errors
def calibrate(
    calibration_file: Annotated[Path, typer.Argument(help="Calibration file (YAML): scenario, "
                                                          "parameters with priors, targets.")],
    out: Annotated[Path | None, typer.Option(
        help="Results directory (posterior.nc, summary.csv) [results/CALIBRATION/], "
             "or a .nc file for the posterior alone.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing result.")] = False,
    allow_unconverged: Annotated[bool, typer.Option(
        help="Write the posterior even if too few effective samples.")] = False,
) -> None:
    """Calibrate scenario parameters to observed targets (sampling importance resampling over
    the vectorised cohort engine); scenarios then draw them with posterior: {file, variable}.

    Fails (exit code 3, nothing written) when the effective sample size is below the gate.
    """
    from vbhc_model.api import calibration_target, run_calibrate
    from vbhc_model.report.table import format_calibration, written

    target = calibration_target(calibration_file, out)
    replaced = target.exists()
    result, path = run_calibrate(calibration_file, out=target, force=force,
                                 allow_unconverged=allow_unconverged)
    if replaced:
        typer.echo(f"replaced the previous {target}", err=True)
    typer.echo(format_calibration(result) + "\n" + written(path))


@app.command()
@_user_errors
def update(
    fit_file: Annotated[Path, typer.Argument(help="The fit file whose posterior scenarios use.")],
    data: Annotated[Path, typer.Option(help="New rows (CSV, the fit file's columns), e.g. a "
                                            "service's routine outcomes.")],
    scenario: Annotated[list[Path] | None, typer.Option(
        help="Scenario(s) to rerun [every shipped scenario that uses the fit].")] = None,
    draws: Annotated[int, typer.Option(min=100, help="PSA draws per scenario run.")] = 2000,
    seed: Annotated[int | None, typer.Option(help="PSA seed [each scenario's].")] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory [results/FIT_update/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
    fit_draws: Annotated[int | None, typer.Option(
        min=10, help="Refit: draws per chain [the fit file's sampling.draws].")] = None,
    fit_tune: Annotated[int | None, typer.Option(
        min=0, help="Refit: tuning steps [sampling.tune].")] = None,
    fit_chains: Annotated[int | None, typer.Option(
        min=2, help="Refit: chains [sampling.chains].")] = None,
) -> None:
    """Refit with new data appended, rerun the scenarios that use the fit, report the change.

    The shipped posterior is left as it is: the updated one, its summary and the comparison
    (optimal strategy, its probability of being cost-effective and the EVPI at each WTP,
    before and after) go into the results directory.
    """
    from vbhc_model.api import run_update
    from vbhc_model.report.table import format_update, written

    result, folder = run_update(fit_file, data, scenarios=scenario, draws=draws, seed=seed,
                                out=out, force=force, fit_draws=fit_draws, fit_tune=fit_tune,
                                fit_chains=fit_chains)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(format_update(result) + "\n\n" + written(folder))


@app.command()
@_user_errors
def voi(
    results: Annotated[Path, typer.Argument(help="Results directory of a run with --draws.")],
    params: Annotated[
        str | None, typer.Option(help="Parameters for single EVPPI, comma-separated [all].")
    ] = None,
    group: Annotated[
        list[str] | None, typer.Option(help="A group of parameters a,b,c (repeatable).")
    ] = None,
    wtp: Annotated[
        list[float] | None, typer.Option(help="Willingness to pay (repeatable) [the run's].")
    ] = None,
    se: Annotated[bool, typer.Option(help="Standard errors (about 0.3 s per row).")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing evppi.nc.")] = False,
    method: Annotated[Metamodel, typer.Option(help=_METHOD_HELP)] = Metamodel.gam,
) -> None:
    """Value of information of a finished PSA: EVPI and EVPPI per person, ranked."""
    from vbhc_model.api import run_voi
    from vbhc_model.report.table import format_voi, format_voi_advice

    _check_wtp(wtp or [])
    with _progress(1, "EVPPI") as progress:
        result = run_voi(results, params=params, groups=group, wtp=wtp, se=se, force=force,
                         method=method.value, progress=progress)
    typer.echo(format_voi(result.table, result.evpi))
    advice = format_voi_advice(result)
    if advice:
        typer.echo("\n" + advice)
    typer.echo(f"\nwrote {results / 'evppi.nc'}")


def _check_wtp(wtp: list[float]) -> None:
    """--wtp values as the scenario schema takes them: from 0 to MAX_WTP (not nan)."""
    from vbhc_model.scenario.schema import MAX_WTP

    bad = [w for w in wtp if not 0 <= w <= MAX_WTP]  # also nan and inf
    if bad:
        raise VbhcError(f"--wtp must be a finite number >= 0 and at most {MAX_WTP:g}, "
                        f"got {bad[0]:g}")


@app.command()
@_user_errors
def plan(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario file [default scenario].")] = None,
    draws: Annotated[int, typer.Option(min=0, help="PSA draws for 95% intervals (0: the "
                                                   "base case).")] = 0,
    seed: Annotated[int | None, typer.Option(help="PSA seed [settings.seed].")] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory [results/SCENARIO_plan/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
    variant: Annotated[str | None, typer.Option(
        help="Plan this variant of the scenario (its variants: section).")] = None,
) -> None:
    """The scenario's service plan (its plan: section) year by year: the budget (undiscounted)
    of the new mix against the current one, per member per month, QALYs, patients starting
    each strategy, FTEs needed against available; plan.nc and plan.csv."""
    from vbhc_model.api import run_plan
    from vbhc_model.report.frames import plan_summary
    from vbhc_model.report.table import format_plan, scenario_names, written

    with _progress(draws, "PSA draws") as progress:
        result, folder = run_plan(scenario, draws=draws, seed=seed, out=out, force=force,
                                  variant=variant, progress=progress)
    typer.echo(format_plan(plan_summary(result.totals), scenario_names(result.scenario))
               + "\n\n" + written(folder))


@app.command()
@_user_errors
def report(
    results: Annotated[Path, typer.Argument(help="A results folder written by 'vbhc run'.")],
    out: Annotated[Path | None, typer.Option(help="Where to write [RESULTS/report/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing report folder.")] = False,
    plan: Annotated[Path | None, typer.Option(
        help="A folder written by 'vbhc plan' of the same scenario: the report gets its "
             "service plan [RESULTS/plan.nc if there].")] = None,
) -> None:
    """Write report.html (one self-contained file: the decision, the PSA, the figures, the
    subgroups, the service plan, the quadruple-aim outcomes, the model and its sources, a
    CHEERS 2022 checklist) and report.xlsx (the same tables) from a run's results."""
    from vbhc_model.api import make_report
    from vbhc_model.report.table import written

    folder = make_report(results, out=out, force=force, plan=plan)
    typer.echo(written(folder))


@app.command()
@_user_errors
def compare(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario file [default scenario].")] = None,
    draws: Annotated[int, typer.Option(
        min=0, help="PSA draws for the base case and each variant (0: none).")] = 0,
    seed: Annotated[int | None, typer.Option(
        help="PSA seed, the same for every variant [settings.seed].")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Results directory [results/SCENARIO_variants/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
) -> None:
    """Run the base case and every variant of a scenario (its variants: section) side by side:
    the strategy with the highest net monetary benefit at each threshold and the frontier of
    each; variants.csv and variants.nc."""
    from vbhc_model.api import compare_variants
    from vbhc_model.report.table import format_compare, scenario_names, written

    with _progress(1, "variants") as progress:
        result, folder = compare_variants(scenario, draws=draws, seed=seed, out=out,
                                          force=force, progress=progress)
    typer.echo(format_compare(result.table, scenario_names(result.scenario)) + "\n\n"
               + written(folder))


@app.command()
@_user_errors
def dsa(
    scenario: Annotated[Path | None, typer.Argument(help="Scenario file [default scenario].")] = None,
    wtp: Annotated[float | None, typer.Option(help="Willingness to pay [the scenario's first].")] = None,
    params: Annotated[str | None, typer.Option(help="Parameters to vary, a,b,c [all].")] = None,
    two_way: Annotated[str | None, typer.Option("--two-way", help="Two parameters A,B.")] = None,
    threshold: Annotated[str | None, typer.Option(help="Parameter for a threshold.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Strategy for --threshold.")] = None,
    out: Annotated[Path | None, typer.Option(help="Results directory [results/SCENARIO_dsa/].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
    engine: Annotated[
        EngineName | None, typer.Option(help="Simulation engine [the scenario's settings.engine].")
    ] = None,
    patients: Annotated[
        int | None,
        typer.Option(min=1, help="Microsimulation patients [settings.patients]; every "
                                 "variation meets the same patients."),
    ] = None,
) -> None:
    """Deterministic sensitivity: one-way (tornado), --two-way A,B, --threshold P --strategy S."""
    from vbhc_model.api import run_dsa
    from vbhc_model.report.table import format_dsa, written

    _check_wtp([] if wtp is None else [wtp])
    result, folder = run_dsa(scenario, wtp=wtp, params=params, two_way=two_way,
                             threshold=threshold, strategy=strategy, out=out, force=force,
                             engine=engine.value if engine else None, patients=patients)
    typer.echo(format_dsa(result) + "\n\n" + written(folder))


class ExportFormat(str, enum.Enum):
    csv = "csv"
    long = "long"
    bcea = "bcea"
    dampack = "dampack"


@app.command()
@_user_errors
def export(
    results: Annotated[Path, typer.Argument(help="Results directory of a run with --draws.")],
    format: Annotated[ExportFormat, typer.Option(
        "--format", help="csv: wide, cost_<s> and effect_<s> per draw; long: draw, strategy, "
                         "cost, effect; bcea: a folder of e.csv and c.csv for BCEA::bcea(e, c); "
                         "dampack: a folder of cost.csv, effectiveness.csv and parameters.csv "
                         "for dampack::make_psa_obj.")] = ExportFormat.csv,
    out: Annotated[Path | None, typer.Option(
        help="File (csv, long) or folder (bcea, dampack) [results/RESULTS_psa.csv, "
             "_psa_long.csv, _bcea, _dampack].")] = None,
    force: Annotated[bool, typer.Option(help="Replace an earlier export.")] = False,
) -> None:
    """Write a run's PSA draws as tables for another tool (R's BCEA or dampack, a
    spreadsheet); 'vbhc analyse' reads each layout back (docs/interop.md)."""
    from vbhc_model.api import export_psa
    from vbhc_model.report.table import written

    typer.echo(written(export_psa(results, format.value, out=out, force=force)))


@app.command()
@_user_errors
def analyse(
    table: Annotated[Path, typer.Argument(
        help="PSA table (CSV), wide or long, or a folder of matrices (BCEA's c.csv and "
             "e.csv, or dampack's cost.csv and effectiveness.csv).")],
    wtp: Annotated[list[float], typer.Option(help="Willingness to pay (repeatable).")],
    out: Annotated[Path | None, typer.Option(help="Results directory.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing results directory.")] = False,
    method: Annotated[Metamodel, typer.Option(help=_METHOD_HELP)] = Metamodel.gam,
    names: Annotated[str | None, typer.Option(
        "--map", help="Other column names: KEY=NAME,... with KEY cost, effect (prefixes in a "
                      "wide table: --map cost=c_,effect=e_; column names in a long one), "
                      "strategy, draw.")] = None,
) -> None:
    """Analyse a PSA exported from another tool: frontier, acceptability, EVPI, EVPPI."""
    from vbhc_model.api import run_analyse
    from vbhc_model.report.table import format_analyse, written

    _check_wtp(wtp)
    result, folder = run_analyse(table, wtp=wtp, out=out, force=force, method=method.value,
                                 names=names)
    if result.unpaired_columns:
        typer.echo(f"note: {result.unpaired_columns}: a cost or effect column without its "
                   "partner, read as a parameter (a strategy needs both)", err=True)
    typer.echo(format_analyse(result) + "\n\n" + written(folder))


@app.command()
@_user_errors
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    draws: Annotated[int, typer.Option(
        min=0, help="Also check this many sampled PSA draws (probabilities, rows, values).")] = 0,
    seed: Annotated[int | None, typer.Option(help="Seed of those draws [settings.seed].")] = None,
) -> None:
    """Check scenario files: schema, references, the base case's numbers (and --draws N)."""
    from vbhc_model.api import validate as check

    result = check(scenarios, draws=draws, seed=seed)
    for f in result.files:
        if f.ok:
            typer.echo(f"ok: {f.path} ({f.strategies} strategies, {f.states} states, "
                       f"{f.parameters} parameters)")
            for note in f.notes:
                typer.echo(f"  note: {note}")
    if result.issues:
        raise ScenarioError(result.issues)


@app.command()
@_user_errors
def init(
    name: Annotated[str, typer.Argument(help="Name of the new scenario (its file NAME.yaml "
                                             "and its results folder results/NAME/).")],
    source: Annotated[str | None, typer.Option(
        "--from", help="A shipped scenario (chronic_pain_us, pain_course_au, "
                       "reference/thr_dmhee, ...) or a scenario file [chronic_pain_us].")] = None,
    folder: Annotated[Path | None, typer.Option(
        "--dir", help="Folder to create (it must not exist, or be empty) [./NAME/].")] = None,
) -> None:
    """Start a scenario of your own: copy a shipped one with the files it uses (posteriors,
    tables, fit files) into a folder, so that it runs wherever it is; then edit NAME.yaml."""
    from vbhc_model.api import init_scenario

    path, files = init_scenario(name, source=source, folder=folder)
    typer.echo(f"wrote {path}" + (f" and the {len(files)} files it uses ("
                                  + ", ".join(str(f.relative_to(path.parent)) for f in files)
                                  + ")" if files else ""))
    typer.echo(f"next: edit it, then 'vbhc validate {path}' and 'vbhc run {path}'")


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors)."""
    from vbhc_model.scenario.schema import Scenario

    doc = Scenario.model_json_schema(by_alias=True)
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "vbhc_model scenario file"
    typer.echo(json.dumps(doc, indent=2))


def console() -> None:
    """The ``vbhc`` console script: run the command, then leave at once.

    A short command spends 0.1 s or more tearing the interpreter down (every imported module
    of numpy, xarray, pandas, h5py ... finalised one by one) after its work is done and its
    files are written. The console script skips that: it flushes the output, runs the exit
    handlers (``atexit``: logging, multiprocessing, weakref finalizers) and ends the process
    with the command's exit code. Every result has been written atomically before this point
    and every helper (figure process, dask cluster, threads) has been closed by the command
    itself. ``app()`` (and ``python -m vbhc_model.cli``) exits the ordinary way.
    """
    import atexit

    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):  # sys.exit("message"): the message, exit code 1
        print(code, file=sys.stderr)
        code = 1
    code = 0 if code is None else int(code)
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is not None:
        run_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
