"""Running independent array work side by side on threads.

numpy and scipy.special release the GIL inside their array loops, so independent pieces of
work on large arrays (the strategies of a model, the inverse CDFs of the parameters) run in
parallel on threads. Each piece does exactly the arithmetic it would do alone, so results do
not depend on the number of threads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Below this many draws, work runs on one thread (thread overhead would cost more).
MIN_DRAWS = 1_000
_lock = threading.Lock()


def n_threads() -> int:
    """Threads to use: ``VBHC_THREADS`` if set, else the CPUs this process may run on."""
    env = os.environ.get("VBHC_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_for(n_items: int, *, n_draws: int, threads: int | None = None) -> int:
    """The threads :func:`thread_map` uses for ``n_items`` items of ``n_draws`` draws (1:
    it calls them one after the other).

    Examples
    --------
    >>> threads_for(4, n_draws=10, threads=2), threads_for(4, n_draws=10_000, threads=2)
    (1, 2)
    """
    k = min(n_items, threads if threads is not None else n_threads())
    return 1 if k <= 1 or n_draws < MIN_DRAWS else k


def thread_map(fn: Callable[[T], R], items: Iterable[T], *, n_draws: int,
               threads: int | None = None, sizes: Sequence[float] | None = None) -> list[R]:
    """``[fn(x) for x in items]``, on threads when there is enough work.

    ``sizes`` (one per item, optional): the larger items start first (longest processing
    time first), so that unequal items share the threads evenly. Results keep the items'
    order, and the first item (in order) whose call raises re-raises its exception.

    Examples
    --------
    >>> thread_map(abs, [-1, 2, -3], n_draws=10)
    [1, 2, 3]
    """
    items = list(items)
    k = threads_for(len(items), n_draws=n_draws, threads=threads)
    if k <= 1:
        return [fn(x) for x in items]
    order = range(len(items)) if sizes is None else \
        sorted(range(len(items)), key=lambda i: -sizes[i])
    with ThreadPoolExecutor(k) as pool:
        futures = {i: pool.submit(fn, items[i]) for i in order}
        return [futures[i].result() for i in range(len(items))]


_controller: list = []  # [(modules loaded when made, ThreadpoolController)]


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Single-threaded BLAS inside the block. Our own threads already use the cores; OpenBLAS's
    threads on top of them oversubscribe (the engine's trace folds ran slower with both) and,
    when another process holds a core, wait for it (a least-squares fit at 10,000 draws took
    24 ms instead of 1.3 ms). threadpoolctl comes with pymc; without it, nothing changes.

    Finding the loaded BLAS libraries takes milliseconds, so the controller is kept and made
    again only when modules have been imported since."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    with _lock:
        if not _controller or _controller[0][0] != len(sys.modules):
            _controller[:] = [(len(sys.modules), ThreadpoolController())]
        controller = _controller[0][1]
    return controller.limit(limits=1, user_api="blas")
