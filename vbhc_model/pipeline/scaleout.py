"""Scale-out on dask.distributed: the PSA's chunks as tasks on a cluster.

Each task rebuilds the scenario from its YAML text (compiled expressions are closures and are
not shipped), samples its own draws from their positions in the per-draw random streams and
simulates them, so results are identical to the in-process run. Imported only when
``--workers`` or ``--scheduler`` is given.

Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in its workers by default, which makes glibc
return freed memory eagerly; the engine allocates and frees large temporaries every cycle, so
that setting costs time (measured in docs/benchmarks.md). LocalClusters here use glibc's
default instead unless ``malloc_trim`` is given, and each task then fixes glibc's thresholds
itself (vbhc_model.allocator).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path

import xarray as xr

from vbhc_model.allocator import tune_allocator
from vbhc_model.errors import VbhcError
from vbhc_model.pipeline.chunk import simulate_chunk
from vbhc_model.scenario.loader import scenario_from_text
from vbhc_model.scenario.schema import Scenario


@lru_cache(maxsize=4)
def _scenario(text: str, file: str) -> Scenario:
    return scenario_from_text(text, file)


def run_task(text: str, file: str, start: int, n: int, seed: int, method: str,
             total: int, posteriors: Mapping[Path, Path] | None = None,
             engine: tuple | None = None) -> xr.Dataset:
    """The task a worker runs: :func:`~vbhc_model.pipeline.chunk.simulate_chunk` on the
    scenario rebuilt from its YAML ``text`` (kept for the next chunks); ``engine`` is the
    (engine, patients, uniforms) of the run, which may override the file's (``vbhc run
    --engine``, ``--uniforms``); ``seed`` is the run's, for the sampling and the patient
    streams alike."""
    tune_allocator()  # a worker process is an entry point (once per process)
    scenario = _scenario(text, file)
    if engine is not None:
        scenario = scenario.with_settings(engine=engine[0], patients=engine[1],
                                          uniforms=engine[2] if len(engine) > 2 else None)
    scenario = scenario.with_settings(seed=seed)  # it keys the patient streams too
    return simulate_chunk(scenario, start, n, seed, method, total, posteriors)


def local_cluster(workers: int, malloc_trim: int | None = None):
    """A LocalCluster of single-threaded worker processes (no dashboard)."""
    import dask
    from distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # One worker process per core: each runs its strategies one after another.
    environ["VBHC_THREADS"] = "1"
    if malloc_trim is not None:  # measure dask's setting as it is: no vbhc_model.allocator
        environ["VBHC_MALLOC"] = "default"
    # The nanny writes its variables (these, and dask's own such as PYTHONHASHSEED) into this
    # process's environment to pass them on, and they would linger (later workers would
    # inherit dask's trim setting; in-process runs here would use one thread): set the trim
    # here too while the workers start, then put the environment back as it was.
    with environ_restored():
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        if malloc_trim is not None:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = str(malloc_trim)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                dashboard_address=None)


@contextlib.contextmanager
def environ_restored():
    """Put ``os.environ`` back as it was on leaving: variables added are removed, changed
    ones restored."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for k in set(os.environ) - set(saved):
            del os.environ[k]
        for k, v in saved.items():
            if os.environ.get(k) != v:
                os.environ[k] = v


def run_chunks(scenario: Scenario, chunks: list[tuple[int, int]], *, seed: int, method: str,
               total: int, workers: int | None = None, scheduler: str | None = None,
               progress: Callable[[int, int], None] | None = None,
               malloc_trim: int | None = None,
               keep: Callable[[int, xr.Dataset], None],
               posteriors: Mapping[Path, Path] | None = None) -> None:
    """Run ``(start, n)`` chunks on a LocalCluster or at ``scheduler``; ``keep(i, result)``
    receives chunk i's result as it completes."""
    from distributed import Client, as_completed

    src = scenario.source
    if src is None or not src.text:
        raise ValueError("scale-out needs a scenario loaded from a file")
    # A nanny that restarts a worker writes its variables into this process's environment
    # again: the environment is put back when the run ends, not only after the start.
    with environ_restored():
        cluster = None if scheduler else local_cluster(workers or 1, malloc_trim)
        try:
            client = Client(scheduler or cluster)
        except (OSError, TimeoutError, ValueError) as exc:  # a user's address: malformed, or
            # no scheduler answers there
            if cluster is not None:
                cluster.close()
                raise
            raise VbhcError(f"--scheduler {scheduler}: cannot reach a dask scheduler there "
                            f"({type(exc).__name__}: {exc})") from None
        try:
            s = scenario.settings
            engine = (s.engine, s.patients, s.uniforms)
            futures = [client.submit(run_task, src.text, src.file, start, n, seed, method, total,
                                     posteriors, engine, pure=False) for start, n in chunks]
            index = {f.key: i for i, f in enumerate(futures)}
            done = 0
            for future in as_completed(futures):
                i = index[future.key]
                keep(i, future.result())
                future.release()  # the worker may forget it now
                done += chunks[i][1]
                if progress is not None:
                    progress(done, total)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
