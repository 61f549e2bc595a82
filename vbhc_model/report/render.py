"""Drawing a run's figures in a helper process, beside the run.

Importing matplotlib and drawing eight figure files takes longer than writing the NetCDF
results, and it needs none of the model. :class:`Renderer` starts one helper process when the
command starts (before the run's own imports), lets it import matplotlib while the model runs,
and draws the figures there while the main process writes the tables: on a 2-core machine the
figures cost almost no wall-clock time. The figures are the same as when drawn in-process
(:func:`render`), which is also what runs if the helper cannot start or dies.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

#: Draws per strategy shown on the cost-effectiveness plane: enough to show the cloud.
PLANE_POINTS = 2000

#: A figure job: figure name -> (function name in vbhc_model.report.figures, arguments).
Jobs = dict[str, tuple[str, tuple]]


def render(jobs: Jobs, folder: str | Path) -> list[str]:
    """Draw each job's figure and save it as PNG and SVG in ``folder``; return the names."""
    from vbhc_model.report import figures

    figures.write_figures({name: getattr(figures, fn)(*args) for name, (fn, args) in jobs.items()},
                          Path(folder))
    return sorted(jobs)


def _single_threaded() -> bool:
    """Whether this process has one thread, counting threads that Python did not start."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _warm_up() -> None:
    from vbhc_model.report import figures  # noqa: F401 - the import is the point


class Renderer:
    """One helper process that draws figures; use as a context manager.

    Examples
    --------
    >>> with Renderer() as r:          # doctest: +SKIP
    ...     done = r.submit(jobs, "results/x/figures")
    ...     write_tables()
    ...     done.result()
    """

    def __init__(self) -> None:
        # fork is quick and safe while this process has a single thread (at command start);
        # otherwise start a fresh interpreter.
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and _single_threaded() else "spawn"
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context(method))
        self._pool.submit(_warm_up)

    def submit(self, jobs: Jobs, folder: str | Path) -> Future:
        """Draw ``jobs`` into ``folder`` in the helper; in-process if the helper is gone."""
        if self._pool is not None:
            try:
                return _Fallback(self._pool.submit(render, jobs, str(folder)), jobs, folder)
            except (BrokenProcessPool, RuntimeError):
                self.close()
        done: Future = Future()
        done.set_result(render(jobs, folder))
        return done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Fallback:
    """A future of the helper's drawing that draws in-process if the helper died."""

    def __init__(self, future: Future, jobs: Jobs, folder: str | Path) -> None:
        self._future, self._jobs, self._folder = future, jobs, folder

    def result(self) -> list[str]:
        try:
            return self._future.result()
        except BrokenProcessPool:
            return render(self._jobs, self._folder)
