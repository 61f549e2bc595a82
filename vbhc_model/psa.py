"""The probabilistic sensitivity analysis: sampled draws run in chunks.

Each chunk of draws is sampled (from its own position in the per-draw random streams) and
simulated independently, so the result does not depend on the chunk size; only the per-draw
totals are kept (never the trace), so memory is bounded by the chunk size plus the totals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.io import write_netcdf
from vbhc_model.parameters.sampling import check_draws, sample_draws
from vbhc_model.scenario.schema import Scenario
from vbhc_model.simulate import simulate

#: Per-draw totals kept from each chunk (per-cycle detail and traces are never kept).
KEEP = ("total_cost", "costs", "qalys", "life_years", "utilisation", "clinician_hours",
        "engagement")


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
            write_netcdf(part, path)
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


#: A chunk of fewer draws is simulated padded with copies of its last draw, and a draw's
#: result must not depend on the chunk it falls in: for a single draw numpy takes other paths
#: that round differently (a sum over states instead of over draws; ``pow`` where a batch
#: uses ``exp(b log a)``). Batches of 2 to 7 agreed with large chunks bit for bit on the
#: shipped scenarios (session 5); padding them too costs nothing and leaves a margin.
MIN_BATCH = 8


def simulate_chunk(scenario: Scenario, start: int, n: int, seed: int, method: str,
                   total: int) -> xr.Dataset:
    """Sample draws ``start .. start + n - 1`` and simulate them; keep the per-draw totals."""
    draws = sample_draws(scenario, n, seed=seed, method=method, start=start, total=total)
    if n < MIN_BATCH:
        padded = draws.isel({dims.DRAW: np.minimum(np.arange(MIN_BATCH), n - 1)})
        out = simulate(scenario, padded).isel({dims.DRAW: slice(0, n)})
        out.attrs["n_draws"] = n
    else:
        out = simulate(scenario, draws)
    out = out[[v for v in KEEP if v in out]].assign_coords({dims.DRAW: draws[dims.DRAW].values})
    out["parameters"] = xr.DataArray(draws.values, dims=draws.dims, coords=draws.coords,
                                     attrs={"description": "sampled parameter values"})
    return out


def run_psa(
    scenario: Scenario,
    n_draws: int,
    *,
    seed: int | None = None,
    method: str = "mc",
    chunk_size: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: Path | None = None,
) -> xr.Dataset:
    """Sample ``n_draws`` parameter draws and simulate them in chunks.

    Parameters
    ----------
    scenario : Scenario
    n_draws : int
    seed : int, optional
        Defaults to the scenario's ``settings.seed``.
    method : {"mc", "lhs", "sobol"}
    chunk_size : int
        Draws simulated at once; memory grows with it, results do not change with it.
    progress : callable, optional
        Called as ``progress(done, n_draws)`` after each chunk.
    workers : int, optional
        Run the chunks on a dask.distributed LocalCluster with this many worker processes.
    scheduler : str, optional
        Run the chunks on an existing dask.distributed cluster at this address.
    store : Path, optional
        A directory for the chunks' results: each is written there as it arrives and the
        returned Dataset reads them lazily (dask), so memory does not grow with the draws.

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
    chunks = [(start, min(chunk_size, n_draws - start)) for start in range(0, n_draws, chunk_size)]
    keep = _Keeper(store)
    if workers or scheduler:
        from vbhc_model.scaleout import run_chunks

        run_chunks(scenario, chunks, seed=seed, method=method, total=n_draws,
                   workers=workers, scheduler=scheduler, progress=progress, keep=keep)
    else:
        for i, (start, n) in enumerate(chunks):
            keep(i, simulate_chunk(scenario, start, n, seed, method, n_draws))
            if progress is not None:
                progress(start + n, n_draws)
    psa = keep.combine()
    psa.attrs.update(n_draws=n_draws, seed=seed, sampling=method, chunk_size=chunk_size,
                     analysis="probabilistic sensitivity analysis",
                     execution=f"dask ({scheduler or f'LocalCluster, {workers} workers'})"
                     if workers or scheduler else "in-process")
    return psa
