"""xarray without dask until dask is used: importing this module tells xarray so.

With dask installed, xarray imports ``dask.array`` (and scipy.sparse with it, about 0.35 s)
the first time it makes a Variable, only to ask whether the data is a dask array; and every
``to_netcdf`` asks dask which scheduler is active, which imports ``distributed`` (about
0.35 s more), only to know whether chunked data must be written with a distributed lock. A
base case of a small model takes a few milliseconds and needs neither answer: before dask is
imported there is no dask array, no dask client and no dask scheduler in use. So:

- xarray's record of dask (``namedarray.pycompat``) gives the dask array type only once
  ``dask.array`` has been imported (by scale-out, ``open_mfdataset`` for a PSA in several
  chunks, or the user), and no type before (no instance can exist);
- ``is_dask_collection`` answers "no" without importing dask for what dask's own function
  answers "no" to at its first test (a class, or an object without ``__dask_graph__``:
  numpy arrays, pandas indexes); anything else is asked of dask as before;
- the scheduler is asked of dask only once dask is imported; before, it is "none", which
  xarray treats as dask's default threaded scheduler (same lock; no chunked data to close).

Nothing else changes: the same files are written. The change is process-wide, so only entry
points make it (the ``vbhc`` command, like :func:`vbhc_model.allocator.tune_allocator`): a
program that imports vbhc_model keeps xarray as it is unless it calls :func:`install`
(idempotent; harmless if xarray has already met dask). It replaces private names of xarray
(``namedarray.pycompat``, ``namedarray.utils.is_dask_collection``,
``backends.locks.get_dask_scheduler``); if a version of xarray moves them, nothing is changed
and start-up is slower, which tests/test_startup.py notices.
"""

from __future__ import annotations

import sys


def _lazy_dask_record():
    from xarray.namedarray import pycompat

    class LazyDask(pycompat.DuckArrayModule):
        """xarray's record of dask, read from dask itself once dask has been imported."""

        def __init__(self) -> None:  # imports nothing
            self._real = None

        def _imported(self):
            if self._real is None:
                self._real = pycompat.DuckArrayModule("dask")
            return self._real

        @property
        def type(self):
            # A dask array is an instance of dask.array.core.Array: none exists before that
            # module has been imported.
            core = sys.modules.get("dask.array.core")
            array = getattr(core, "Array", None)
            return (array,) if array is not None else ()

        @property
        def module(self):
            return self._imported().module

        @property
        def version(self):
            return self._imported().version

        @property
        def available(self):
            return self._imported().available

    return pycompat, LazyDask


def install() -> None:
    """Make xarray's questions to dask lazy (idempotent).

    Examples
    --------
    >>> install()
    """
    try:
        from xarray.backends import locks, writers
        from xarray.core import utils as core_utils
        from xarray.namedarray import utils

        pycompat, lazy = _lazy_dask_record()
        cache = pycompat._cached_duck_array_modules
        scheduler = locks.get_dask_scheduler
        collection = utils.is_dask_collection
    except (ImportError, AttributeError):  # another xarray: leave it as it is
        return
    if getattr(scheduler, "_vbhc_lazy", False):
        return
    if "dask" not in cache:
        cache["dask"] = lazy()

    def get_dask_scheduler(get=None, collection=None):
        if "dask" not in sys.modules:  # no dask scheduler can be in use
            return None
        return scheduler(get, collection)

    def is_dask_collection(x) -> bool:
        if "dask" not in sys.modules and (
                isinstance(x, type) or not callable(getattr(x, "__dask_graph__", None))):
            return False  # dask.base.is_dask_collection's first test, without dask
        return collection(x)

    for new, old in ((get_dask_scheduler, scheduler), (is_dask_collection, collection)):
        new._vbhc_lazy = True
        new.__doc__ = old.__doc__
    for module, name, new, old in ((locks, "get_dask_scheduler", get_dask_scheduler, scheduler),
                                   (writers, "get_dask_scheduler", get_dask_scheduler, scheduler),
                                   (utils, "is_dask_collection", is_dask_collection, collection),
                                   (core_utils, "is_dask_collection", is_dask_collection,
                                    collection)):
        if getattr(module, name, None) is old:
            setattr(module, name, new)
