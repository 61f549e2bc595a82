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
import threading
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

#: A figure job: figure name -> (function name in vbhc_model.report.figures, arguments).
Jobs = dict[str, tuple[str, tuple]]


def render(jobs: Jobs, folder: str | Path) -> list[str]:
    """Draw each job's figure and save it as PNG and SVG in ``folder``; return the names."""
    from vbhc_model.report import figures

    figures.write_figures({name: getattr(figures, fn)(*args) for name, (fn, args) in jobs.items()},
                          Path(folder))
    return sorted(jobs)


def render_split(jobs: Jobs, folder: str | Path) -> list[str]:
    """:func:`render`, the jobs shared with a forked child: the helper has matplotlib
    imported, so a fork costs milliseconds and the drawing runs on both cores
    once the main process has written its tables (measured: 0.75 s -> about 0.45 s for the
    four figures of a PSA). Whatever the child did not draw (it died, or fork is not
    available) is drawn here."""
    names = sorted(jobs)
    theirs = {n: jobs[n] for n in names[1::2]}
    pid, parent = -1, os.getpid()
    # Python started no thread here; the one other thread is OpenBLAS's idle pool (numpy
    # starts it at import), which re-creates itself in a child (pthread_atfork), and the child
    # never calls BLAS. Python 3.12 warns about any fork of a process with threads.
    if theirs and hasattr(os, "fork") and threading.active_count() == 1:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:
            pid = -1
    if pid < 0:
        return render(jobs, folder)
    if pid == 0:  # the child: draw its half and leave without running any exit handler
        code = 1
        try:
            die_with_parent(parent)
            render(theirs, folder)
            code = 0
        finally:
            os._exit(code)
    render({n: jobs[n] for n in names[::2]}, folder)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        render(theirs, folder)
    return names


def die_with_parent(parent: int) -> None:
    """End this (helper) process when its parent ends, however it ends (kill -9 included).

    A pool worker waits on a pipe whose writing end it holds itself (fork), so it never sees
    its parent go and would live on, orphaned (issue 11). On Linux the kernel sends it SIGKILL
    when the parent dies (``prctl(PR_SET_PDEATHSIG)``); if the parent is already gone (it
    died before this ran), it leaves at once. Elsewhere the pool's own checks apply.
    """
    if os.getppid() != parent:
        os._exit(1)
    if not os.uname().sysname == "Linux":
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return
    if os.getppid() != parent:  # the parent died between the check and the prctl
        os._exit(1)


def _single_threaded() -> bool:
    """Whether this process has one thread, counting threads that Python did not start."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _warm_up() -> None:
    """Import matplotlib while the model runs. (Drawing warm-up figures too was measured
    slower overall: on two cores the helper's drawing slowed the PSA more than it saved.)"""
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

    def __init__(self, workers: int | None = None) -> None:
        # fork is quick and safe while this process has a single thread (at command start);
        # otherwise start a fresh interpreter. One helper by default: on two cores a second
        # one slows the run's own imports more than it speeds the drawing (measured).
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and _single_threaded() else "spawn"
        self.method = method
        n = workers or 1
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=n, mp_context=multiprocessing.get_context(method),
            initializer=die_with_parent, initargs=(os.getpid(),))
        for _ in range(n):
            self._pool.submit(_warm_up)

    def submit(self, jobs: Jobs, folder: str | Path) -> _Fallback | Future:
        """Draw ``jobs`` into ``folder`` in the helper (:func:`render_split`); if the
        helper is gone, they are drawn in-process."""
        if self._pool is not None:
            try:
                return _Fallback(self._pool.submit(render_split, jobs, str(folder)), jobs,
                                 folder)
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
    """The helper's drawing; if the helper died, the figures are drawn in-process."""

    def __init__(self, future: Future, jobs: Jobs, folder: str | Path) -> None:
        self._future, self._jobs, self._folder = future, jobs, folder

    def result(self) -> list[str]:
        try:
            self._future.result()
        except BrokenProcessPool:
            render(self._jobs, self._folder)
        return sorted(self._jobs)
