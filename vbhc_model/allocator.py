"""glibc malloc settings for the engine's array work.

The engine allocates and frees arrays of a few MB many times per run (a block of cycles x draws
for each sub-expression, a trace buffer, per-cycle temporaries). With glibc's defaults such an
array is often served by a fresh ``mmap`` (its threshold adapts, but only up to the size of the
last freed block) or carved from heap memory that was just returned to the system (the top of
the heap is trimmed once more than twice that threshold is free). Either way every page of the
new array is faulted in and zeroed by the kernel again: on this project's 2-core VM that was a
third of the THR model's simulation time (docs/benchmarks.md).

:func:`tune_allocator` fixes both thresholds so that freed arrays are kept and reused: blocks up
to :data:`MMAP_THRESHOLD` come from the heap, and free memory at the top of a heap is returned
only beyond :data:`TRIM_THRESHOLD`. The cost is that up to that much freed memory per malloc
arena (the main thread's and one per worker thread) stays counted in the process's resident
size. This is a setting of the whole process, so the library never makes it: the entry points
call :func:`tune_allocator` (once per process is enough), namely the CLI's app callback
(:mod:`vbhc_model.cli`), the scale-out worker task (:mod:`vbhc_model.pipeline.scaleout`) and
the benchmarks (``benchmarks/*.py``); a program that simulates through the API calls it
itself if it wants the same speed. Set ``VBHC_MALLOC=default`` to keep glibc's behaviour. Other
C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

#: Arrays up to this size come from the heap: 32 MiB, the largest glibc accepts for
#: M_MMAP_THRESHOLD on 64-bit systems (half its per-thread heap size).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of a heap beyond this is returned to the system: 64 MiB.
TRIM_THRESHOLD = 64 * 2**20

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
_lock = threading.Lock()
_state: dict[str, bool] = {}


def tune_allocator() -> bool:
    """Set glibc's mmap and trim thresholds (once per process).

    Returns
    -------
    bool
        True if the settings are in effect: glibc on Linux, and ``VBHC_MALLOC`` is not
        ``default``.

    Examples
    --------
    >>> isinstance(tune_allocator(), bool)
    True
    """
    with _lock:
        if "done" not in _state:
            _state["done"] = _apply()
        return _state["done"]


def _apply() -> bool:
    if os.environ.get("VBHC_MALLOC", "").strip().lower() == "default":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, ValueError):  # musl and others: no glibc mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # The mmap threshold first: setting either one turns off glibc's adaptive thresholds.
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
