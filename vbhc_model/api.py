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
from vbhc_model.report.files import refuse_existing
from vbhc_model.report.write import write, write_run
from vbhc_model.results import (
    AnalyseResult,
    DsaResult,
    RunResult,
    ValidationResult,
    VoiResult,
)
from vbhc_model.scenario import Scenario, default_scenario_path, load_scenario

__all__ = [
    "RunResult", "check_psa", "default_out_dir", "load", "refuse_existing", "run_analyse",
    "run_dsa", "run_scenario", "run_voi", "validate", "write", "write_run",
]


def load(scenario: Scenario | str | Path | None = None) -> Scenario:
    """A loaded scenario, a scenario file, or None for the default chronic-pain scenario."""
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario if scenario is not None else default_scenario_path())


def default_out_dir(scenario: Scenario) -> Path:
    """``results/<scenario name>/`` in the working directory."""
    return Path("results") / scenario.name


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
) -> RunResult:
    """Run the deterministic base case of a scenario, its incremental analysis and a PSA.

    Parameters are those of :func:`vbhc_model.pipeline.run.run`; ``scenario`` may also be a
    file or None (the default chronic-pain scenario). Write the result with
    :func:`write_run`.

    Returns
    -------
    RunResult
    """
    from vbhc_model.pipeline.run import run

    return run(load(scenario), trace=trace, draws=draws, seed=seed, sampling=sampling,
               chunk_size=chunk_size, progress=progress, workers=workers, scheduler=scheduler)


def run_voi(results: str | Path, *, params: str | Sequence[str] | None = None,
            groups: Sequence[str | Sequence[str]] | None = None,
            wtp: Sequence[float] | None = None, se: bool = False, force: bool = False,
            method: str = "gam") -> VoiResult:
    """EVPI and EVPPI of the PSA in a results folder; writes ``evppi.nc`` and its figure there.

    ``params`` and each group may be comma-separated names (as on the command line).
    """
    from vbhc_model.pipeline.voi import voi

    refuse_existing(Path(results) / "evppi.nc", force, option="")
    result = voi(results, params=_names(params) if params else None,
                 groups=[_names(g) for g in groups or []], wtp=wtp, se=se, method=method)
    write(result, force=force)
    return result


def run_dsa(scenario: Scenario | str | Path | None = None, *, wtp: float | None = None,
            params: str | Sequence[str] | None = None,
            two_way: str | Sequence[str] | None = None, threshold: str | None = None,
            strategy: str | None = None, out: str | Path | None = None,
            force: bool = False) -> tuple[DsaResult, Path]:
    """One-way analysis (with tornado), and optionally a two-way map and a threshold; writes
    ``dsa.nc`` (and ``two_way.nc``) and the figures into ``out``.

    Returns
    -------
    (DsaResult, Path)
        The result and the folder written.
    """
    from vbhc_model.pipeline.dsa import run_dsa as dsa

    scenario = load(scenario)
    target = Path(out) if out is not None else Path("results") / f"{scenario.name}_dsa"
    refuse_existing(target, force)
    result = dsa(scenario, wtp=wtp, names=_names(params) if params else None,
                 pair=_names(two_way) if two_way else None, threshold_of=threshold,
                 strategy=strategy)
    return result, write(result, target, force=force)


def run_analyse(table: str | Path, *, wtp: Sequence[float], out: str | Path | None = None,
                force: bool = False, method: str = "gam") -> tuple[AnalyseResult, Path]:
    """The analyses of a PSA exported from another tool (CSV): frontier on means,
    acceptability, EVPI, and EVPPI of each parameter column. Writes ``summary.csv``,
    ``psa_summary.nc``, ``evppi.nc`` (if parameters) and figures into ``out``.

    Returns
    -------
    (AnalyseResult, Path)
        The result and the folder written.
    """
    from vbhc_model.pipeline.analyse import analyse

    target = Path(out) if out is not None else Path("results") / f"{Path(table).stem}_analysis"
    if wtp:
        refuse_existing(target, force)
    result = analyse(table, wtp=wtp, method=method)
    return result, write(result, target, force=force)


def validate(paths: Sequence[str | Path]) -> ValidationResult:
    """Check scenario files: schema, references, and the base case's numbers."""
    from vbhc_model.pipeline.validate import validate as check

    return check(paths)


def _names(text: str | Sequence[str]) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (a list is kept, stripped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s.strip()]

