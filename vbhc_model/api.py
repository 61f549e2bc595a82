"""The public API: what the CLI does, callable from Python.

Examples
--------
>>> from vbhc_model.api import run_scenario
>>> result = run_scenario()            # the default chronic-pain scenario
>>> str(result.table["status"].values[0])
'frontier'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from vbhc_model.analysis.summary import summarise, to_frame
from vbhc_model.io import write_directory, write_netcdf
from vbhc_model.parameters import base_draws
from vbhc_model.scenario import Scenario, default_scenario_path, load_scenario
from vbhc_model.simulate import simulate


@dataclass(frozen=True)
class RunResult:
    """A finished run: the scenario, its outcomes and the decision table."""

    scenario: Scenario
    outcomes: xr.Dataset
    table: xr.Dataset


def run_scenario(scenario: Scenario | str | Path | None = None, *, trace: bool = False) -> RunResult:
    """Run the deterministic base case of a scenario and its incremental analysis.

    Parameters
    ----------
    scenario : Scenario, path or None
        A loaded scenario, a scenario file, or None for the default chronic-pain scenario.
    trace : bool
        Keep the state trace and per-cycle outcomes.

    Returns
    -------
    RunResult
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario if scenario is not None else default_scenario_path())
    outcomes = simulate(scenario, base_draws(scenario, 1), trace=trace, per_cycle=trace)
    table = summarise(outcomes, scenario.settings.wtp, scenario.settings.effect)
    return RunResult(scenario, outcomes, table)


def default_out_dir(scenario: Scenario) -> Path:
    """``results/<scenario name>/`` in the working directory."""
    return Path("results") / scenario.name


def write_run(result: RunResult, out: str | Path | None = None, *, force: bool = False) -> Path:
    """Write ``outcomes.nc`` and ``summary.csv`` atomically into ``out``.

    Raises
    ------
    vbhc_model.io.OutputExistsError
        ``out`` exists and ``force`` is false.
    """
    out = Path(out) if out is not None else default_out_dir(result.scenario)

    def write(tmp: Path) -> None:
        write_netcdf(result.outcomes, tmp / "outcomes.nc")
        to_frame(result.table).to_csv(tmp / "summary.csv", index=False, float_format="%.10g")

    return write_directory(out, write, force=force)
