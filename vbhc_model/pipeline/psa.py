"""The probabilistic sensitivity analysis: sampled draws run in chunks.

Each chunk of draws is sampled (from its own position in the per-draw random streams) and
simulated independently, so the result does not depend on the chunk size; only the per-draw
totals are kept (never the trace), so memory is bounded by the chunk size plus the totals.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import xarray as xr

from vbhc_model import dims
from vbhc_model.defaults import CHUNK_SIZE
from vbhc_model.engines.base import Outputs
from vbhc_model.errors import VbhcError
from vbhc_model.parameters.sampling import check_draws
from vbhc_model.pipeline.chunk import check_memory, draws_per_chunk, simulate_chunk
from vbhc_model.scenario.schema import Scenario

#: What a PSA's part files were made with (``run.json`` beside them): a resume with other
#: settings would mix two analyses.
RUN_RECORD = "run.json"


class _Keeper:
    """Collects chunk results in memory, or writes each to ``store`` as it arrives (atomically:
    a part file is complete or absent, so a killed run can be resumed from them)."""

    def __init__(self, store: Path | None, record: dict | None = None, resume: bool = False,
                 n_chunks: int = 0):
        self.store = Path(store) if store is not None else None
        self.parts: dict[int, object] = {}
        if self.store is None:
            return
        self.store.mkdir(parents=True, exist_ok=True)
        self.record = record or {}
        file = self.store / RUN_RECORD
        if resume and file.is_file():
            _check_record(json.loads(file.read_text()), self.record, self.store)
            self.parts = {i: self._path(i) for i in range(n_chunks) if self._path(i).is_file()}
        else:
            for old in [*self.store.glob("part_*.nc"), file]:
                old.unlink(missing_ok=True)

    def _path(self, index: int) -> Path:
        return self.store / f"part_{index:06d}.nc"

    def __call__(self, index: int, part: xr.Dataset) -> None:
        if self.store is None:
            self.parts[index] = part
        else:
            from vbhc_model.report.files import write_netcdf

            file = self.store / RUN_RECORD
            if not file.is_file():  # written with the first part: what they are made with
                tmp = file.with_name(f".{RUN_RECORD}.tmp")
                tmp.write_text(json.dumps(self.record, indent=1))
                os.replace(tmp, file)
            write_netcdf(part, self._path(index))  # via a temporary file renamed into place
            self.parts[index] = self._path(index)

    def combine(self) -> xr.Dataset:
        ordered = [self.parts[i] for i in sorted(self.parts)]
        if self.store is None:
            return xr.concat(ordered, dims.DRAW, data_vars="all", coords="minimal",
                             compat="override", join="exact", combine_attrs="override")
        return xr.open_mfdataset(ordered, combine="nested", concat_dim=dims.DRAW,
                                 data_vars="all", coords="minimal", compat="override",
                                 join="exact", combine_attrs="override", engine="h5netcdf",
                                 parallel=False)


def run_psa(
    scenario: Scenario,
    n_draws: int,
    *,
    seed: int | None = None,
    method: str = "mc",
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: Path | None = None,
    posteriors: Mapping[Path, Path] | None = None,
    outputs: Outputs | None = None,
    resume: bool = False,
) -> xr.Dataset:
    """Sample ``n_draws`` parameter draws and simulate them in chunks.

    Parameters
    ----------
    scenario : Scenario
    n_draws : int
    seed : int, optional
        Defaults to the scenario's ``settings.seed``; it keys the sampling and, as the run's
        ``settings.seed``, the microsimulation's patient streams.
    method : {"mc", "lhs", "sobol"}
    chunk_size : int
        Draws simulated at once; memory grows with it, results do not change with it. A
        microsimulation cuts it so that a chunk holds at most
        :data:`vbhc_model.defaults.MICROSIM_CHUNK_STATES` patient states
        (:func:`vbhc_model.pipeline.chunk.draws_per_chunk`).
    progress : callable, optional
        Called as ``progress(done, n_draws)`` after each chunk.
    workers : int, optional
        Run the chunks on a dask.distributed LocalCluster with this many worker processes.
    scheduler : str, optional
        Run the chunks on an existing dask.distributed cluster at this address.
    store : Path, optional
        A directory for the chunks' results: each is written there as it arrives and the
        returned Dataset reads them lazily (dask), so memory does not grow with the draws.
        What the part files were made with is recorded beside them (``run.json``).
    resume : bool
        Continue from the part files in ``store`` of an earlier, interrupted call with the
        same scenario and settings (refused otherwise); only the missing chunks are run, and
        the result is identical to an uninterrupted run's.
    posteriors : mapping of Path to Path, optional
        Posterior files read in place of those the scenario names, ``{named: read}``
        (``vbhc update``).
    outputs : Outputs, optional
        What each draw keeps (default: the PSA's totals; a service plan asks for its years);
        in-process only.

    Returns
    -------
    xarray.Dataset
        The per-draw outcomes (dims ``draw`` x ``strategy`` x channel) and the sampled
        ``parameters`` (``draw`` x ``parameter``), with provenance in attrs. Identical whatever
        the chunk size and wherever the chunks run.
    """
    if n_draws < 1 or chunk_size < 1:
        raise ValueError("n_draws and chunk_size must be positive")
    check_draws(scenario, n_draws)
    seed = scenario.settings.seed if seed is None else seed
    # the seed keys the microsimulation's patient streams too (settings.seed), on every worker
    scenario = scenario.with_settings(seed=seed)
    chunk_size = draws_per_chunk(scenario, chunk_size)
    check_memory(scenario, min(chunk_size, n_draws))  # before anything runs
    chunks = [(start, min(chunk_size, n_draws - start)) for start in range(0, n_draws, chunk_size)]
    keep = _Keeper(store, _record(scenario, n_draws, seed, method, chunk_size, posteriors),
                   resume, len(chunks))
    todo = [(i, chunk) for i, chunk in enumerate(chunks) if i not in keep.parts]
    if outputs is not None and (workers or scheduler):
        raise ValueError("other outputs than the PSA's run in-process only")
    if (workers or scheduler) and todo:
        from vbhc_model.pipeline.scaleout import run_chunks

        indices = [i for i, _ in todo]
        run_chunks(scenario, [chunk for _, chunk in todo], seed=seed, method=method,
                   total=n_draws, workers=workers, scheduler=scheduler, progress=progress,
                   keep=lambda j, part: keep(indices[j], part), posteriors=posteriors)
    else:
        for i, (start, n) in todo:
            keep(i, simulate_chunk(scenario, start, n, seed, method, n_draws, posteriors,
                                   **({"outputs": outputs} if outputs is not None else {})))
            if progress is not None:
                progress(start + n, n_draws)
    psa = keep.combine()
    psa.attrs.update(n_draws=n_draws, seed=seed, sampling=method, chunk_size=chunk_size,
                     analysis="probabilistic sensitivity analysis",
                     execution=f"dask ({scheduler or f'LocalCluster, {workers} workers'})"
                     if workers or scheduler else "in-process")
    return psa


def _record(scenario: Scenario, n_draws: int, seed: int, method: str, chunk_size: int,
            posteriors: Mapping[Path, Path] | None) -> dict:
    """What a PSA's chunks depend on: the scenario file (its SHA-256 and variant), the
    contents of every file it reads (posteriors, samples, patient and uniforms tables: a
    refit changes the draws), the seed, the draws, the chunk size, the sampling, the engine
    and its patients, and vbhc_model's version."""
    import hashlib

    import vbhc_model
    from vbhc_model.scenario.checks import file_references

    def digest(path: Path) -> str | None:
        try:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            return None

    read = {str(target): digest(target) for _, _, target, _ in file_references(scenario)}
    for named, used in (posteriors or {}).items():
        read[str(named)] = digest(used)
    s = scenario.settings
    return {"scenario_sha256": scenario.source.sha256 if scenario.source else None,
            "scenario_name": scenario.name, "seed": seed, "draws": n_draws,
            "chunk_size": chunk_size, "sampling": method, "engine": s.engine,
            "patients": s.patients, "uniforms": s.uniforms,
            "posteriors": {str(k): str(v) for k, v in (posteriors or {}).items()},
            "files_sha256": read, "vbhc_model_version": vbhc_model.__version__}


def _check_record(theirs: dict, ours: dict, store: Path) -> None:
    """Refuse to resume part files made with other settings, naming the first that differs."""
    for key, value in ours.items():
        if key == "files_sha256" and theirs.get(key) != value:
            changed = sorted(f for f in set(value) | set(theirs.get(key) or {})
                             if (theirs.get(key) or {}).get(f) != value.get(f))
            raise VbhcError(
                f"--resume: {changed[0]} has changed since the unfinished run in "
                f"{store.parent} began (a refit, say): its chunks would mix two analyses; "
                "run without --resume to start again")
        if theirs.get(key) != value:
            raise VbhcError(
                f"--resume: the unfinished run in {store.parent} was made with {key} "
                f"{theirs.get(key)!r}, this one with {value!r}; resume with the same scenario "
                "and options, or run without --resume to start again")
