"""The probabilistic sensitivity analysis: sampled draws run in chunks.

Each chunk of draws is sampled (from its own position in the per-draw random streams) and
simulated independently, so the result does not depend on the chunk size; only the per-draw
totals are kept (never the trace), so memory is bounded by the chunk size plus the totals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import xarray as xr

from vbhc_model import dims
from vbhc_model.defaults import CHUNK_SIZE
from vbhc_model.engines.base import Outputs
from vbhc_model.parameters.sampling import check_draws
from vbhc_model.pipeline.chunk import check_memory, draws_per_chunk, simulate_chunk
from vbhc_model.scenario.schema import Scenario


class _Keeper:
    """Collects chunk results in memory, or writes each to ``store`` as it arrives."""

    def __init__(self, store: Path | None):
        self.store = Path(store) if store is not None else None
        self.parts: dict[int, object] = {}

    def __call__(self, index: int, part: xr.Dataset) -> None:
        if self.store is None:
            self.parts[index] = part
        else:
            path = self.store / f"part_{index:06d}.nc"
            part.to_netcdf(path, engine="h5netcdf")  # scratch: removed with the result
            self.parts[index] = path

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
    keep = _Keeper(store)
    if outputs is not None and (workers or scheduler):
        raise ValueError("other outputs than the PSA's run in-process only")
    if workers or scheduler:
        from vbhc_model.pipeline.scaleout import run_chunks

        run_chunks(scenario, chunks, seed=seed, method=method, total=n_draws,
                   workers=workers, scheduler=scheduler, progress=progress, keep=keep,
                   posteriors=posteriors)
    else:
        for i, (start, n) in enumerate(chunks):
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
