"""``vbhc run``: the deterministic base case, its decision table, and the probabilistic analysis.

The base case is the PSA's path with one draw at the parameters' base values, so there is one
engine, not two.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.acceptability import analyse_psa, wtp_grid
from vbhc_model.analysis.montecarlo import variance_split
from vbhc_model.analysis.price import value_based_price
from vbhc_model.analysis.subgroups import by_subgroup, has_subgroups
from vbhc_model.analysis.summary import summarise
from vbhc_model.defaults import CHUNK_SIZE
from vbhc_model.engines.base import Outputs
from vbhc_model.engines.registry import get_engine
from vbhc_model.errors import VbhcError
from vbhc_model.model.stepped import level_names
from vbhc_model.parameters.draws import base_draws, uncertain
from vbhc_model.parameters.sampling import check_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.simulate import (
    check_replay_draws,
    needs_patients,
    replay,
    simulate,
    simulate_patients,
)
from vbhc_model.results import RunResult
from vbhc_model.scenario.schema import Scenario


def check_psa(scenario: Scenario, draws: int, sampling: str) -> list[str]:
    """Refuse a PSA that cannot run (before any work), and return the notes to show before a
    PSA that would not mean what it seems (empty if none).

    Raises
    ------
    VbhcError
        More draws than a table of samples replayed in order has rows.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> check_psa(load_scenario(default_scenario_path()), 1000, "sobol")[0][:30]
    'Sobol points keep their balanc'
    """
    check_draws(scenario, draws)
    notes = []
    if not uncertain(scenario):
        file = scenario.source.file if scenario.source else scenario.name
        notes.append(f"no parameter of {file} has a distribution, joint group, posterior or "
                     "samples: every PSA draw is the base case")
    if sampling == "sobol" and draws & (draws - 1):
        lo = 1 << (draws.bit_length() - 1)
        notes.append(f"Sobol points keep their balance for a power-of-two number of draws; "
                     f"{draws:,} is not ({lo:,} or {2 * lo:,} are)")
    return notes


#: The most patient-states (patients x cycles x strategies x engagement levels) a per-patient
#: file may hold: 50 million small integers, about 50 MB (more is refused, not written).
MAX_PATIENT_STATES = 50_000_000


def check_patient_output(scenario: Scenario) -> None:
    """Refuse a per-patient file (``settings.patient_output``) that the engine cannot make or
    that would be too large, before any work.

    Raises
    ------
    ScenarioError
        The engine has no individual patients (the issue names ``settings.engine``).
    VbhcError
        More than :data:`MAX_PATIENT_STATES` states.
    """
    s = scenario.settings
    needs_patients(scenario, "patient_output", "--patient-file",
                   "has no individual patients, so it writes no per-patient file",
                   "a per-patient file")
    levels = {lv for sname in scenario.strategies for lv in level_names(scenario, sname)}
    sizes = (s.patients, s.n_cycles + 1, len(scenario.strategies), len(levels))
    total = sizes[0] * sizes[1] * sizes[2] * sizes[3]
    if total > MAX_PATIENT_STATES:
        raise VbhcError(
            f"--patient-file (settings.patient_output): {sizes[0]:,} patients x {sizes[1]:,} "
            f"cycles (0..{s.n_cycles}) x {sizes[2]} strategies x {sizes[3]} engagement levels "
            f"is {total:,} patient-states, more than the {MAX_PATIENT_STATES:,} a per-patient "
            f"file may hold: run at most {MAX_PATIENT_STATES // (total // s.patients):,} "
            f"patients (--patients), or leave the per-patient file out")


#: A microsimulation PSA simulates this many of its draws again with other patients, for the
#: split of the variance between parameters and patients.
REPLICATED_DRAWS = 50
#: Added to a draw's index to key its second set of patients (a stream no PSA draw reaches).
OTHER_PATIENTS = 1 << 40


def _variance_split(scenario: Scenario, psa) -> object:
    """A microsimulation PSA's split of the variance between parameters and patients
    (:func:`vbhc_model.analysis.montecarlo.variance_split`): its first draws simulated again
    with the same parameter values and other patients. None for the cohort."""
    if not get_engine(scenario.settings.engine).individual or psa.sizes["draw"] < 2 \
            or scenario.settings.uniforms is not None:  # replayed uniforms: no other patients
        return None
    params = psa["parameters"].isel(draw=slice(0, REPLICATED_DRAWS)).load()
    params = params.assign_coords(draw=params["draw"].values + OTHER_PATIENTS)
    effect = scenario.settings.effect
    again = simulate(scenario, params, outputs=Outputs(variables=("total_cost", effect)))
    return variance_split(psa, again, effect)


def _prices(ds: xr.Dataset, settings) -> xr.Dataset | None:
    """Value-based prices from per-draw outcomes (the base case or the PSA), or None when no
    strategy has a programme cost."""
    if "costs" not in ds or dims.CATEGORY not in ds["costs"].dims or \
            "programme" not in ds[dims.CATEGORY].values:
        return None
    order = (dims.DRAW, dims.STRATEGY)
    programme = ds["costs"].sel({dims.CATEGORY: "programme"}).transpose(*order).values
    if not (programme > 0).any():
        return None
    return value_based_price(ds["total_cost"].transpose(*order).values,
                             ds[settings.effect].transpose(*order).values, programme,
                             settings.wtp, ds[dims.STRATEGY].values)


def run(
    scenario: Scenario,
    *,
    trace: bool = False,
    draws: int = 0,
    seed: int | None = None,
    sampling: str = "mc",
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
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

    Parameters
    ----------
    scenario : Scenario
    trace : bool
        Keep the state trace and per-cycle outcomes of the base case.
    draws : int
        Number of PSA draws (0: base case only).
    seed : int, optional
        The run's seed, in place of the scenario's ``settings.seed``: it keys the PSA's
        sampling and the microsimulation's patient streams.
    sampling : {"mc", "lhs", "sobol"}
    chunk_size : int
        PSA draws simulated at once.
    progress : callable, optional
        ``progress(done, total)`` after each PSA chunk.
    workers, scheduler : optional
        Run the PSA chunks on a dask.distributed LocalCluster with this many workers, or on
        the cluster at this scheduler address; results are identical to the in-process run.
    engine, patients : optional
        Override the scenario's ``settings.engine`` (``"cohort"`` or ``"microsim"``) and
        ``settings.patients`` (the run's scenario is a copy with them changed).
    uniforms : str or Path, optional
        A file of uniforms for the microsimulation to replay, relative to the working
        directory; overrides ``settings.uniforms`` (which is relative to the scenario file).
    patient_file : bool
        Also return each patient of the base case (``RunResult.patients``; the same as
        ``settings.patient_output: true``).
    store : Path, optional
        The folder for the PSA's part files (a chunk's results each), kept by the caller
        (``vbhc run``: the work folder beside the results); by default a temporary folder
        removed with the result. Used when the PSA has more than one chunk.
    resume : bool
        Continue the PSA from the part files in ``store`` (:func:`vbhc_model.pipeline.psa.run_psa`).

    Returns
    -------
    RunResult
    """
    # the run's seed keys the PSA's sampling and the microsimulation's patients alike
    scenario = scenario.with_settings(
        engine=engine, patients=patients, seed=seed,
        uniforms=str(Path(uniforms).absolute()) if uniforms is not None else None,
        patient_output=True if patient_file else None)
    scenario, supplied = replay(scenario)
    if scenario.settings.patient_output:
        check_patient_output(scenario)
    notes: tuple[str, ...] = ()
    if draws:
        notes = tuple(check_psa(scenario, draws, sampling))
        if supplied is not None:
            check_replay_draws(scenario, supplied, draws)
    outcomes = simulate(scenario, base_draws(scenario, 1), trace=trace, per_cycle=trace)
    s = scenario.settings
    table = summarise(outcomes, s.wtp, s.effect, s.negligible_effect)
    groups = (by_subgroup(outcomes, s.wtp, s.effect, negligible=s.negligible_effect)
              if has_subgroups(outcomes) else None)
    patients = (simulate_patients(scenario, base_draws(scenario, 1))
                if s.patient_output else None)
    if not draws:
        return RunResult(scenario, outcomes, table, subgroups=groups, patients=patients,
                         prices=_prices(outcomes, s))
    # More than one chunk: results go to part files read back lazily, so memory does not grow
    # with the number of draws; the files are removed with the result.
    owned = store is None
    if draws <= chunk_size:
        store = None
    elif store is None:
        store = Path(tempfile.mkdtemp(prefix="vbhc_psa_"))
    psa = run_psa(scenario, draws, seed=seed, method=sampling, chunk_size=chunk_size,
                  progress=progress, workers=workers, scheduler=scheduler, store=store,
                  resume=resume)
    population = s.population.effective() if s.population else None
    psa_summary = analyse_psa(psa, s.wtp, s.effect, population,
                              negligible=s.negligible_effect)
    curves = analyse_psa(psa, wtp_grid(s.wtp), s.effect, population, frontier=False)
    if groups is not None:
        groups = by_subgroup(outcomes, s.wtp, s.effect, psa, s.negligible_effect)
    result = RunResult(scenario, outcomes, table, psa, psa_summary, curves, notes,
                       subgroups=groups, patients=patients,
                       montecarlo=_variance_split(scenario, psa), prices=_prices(psa, s))
    if store is not None and owned:
        weakref.finalize(result, shutil.rmtree, store, True)
    return result
