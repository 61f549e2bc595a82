"""Posterior draws from fitted models, as PSA distributions of scenario parameters.

A parameter may say ``posterior: {file: fits/resolve.nc, variable: rr_coach}``: its PSA draws
are then taken from the ``posterior`` group of that NetCDF file (what ``vbhc fit`` writes, an
ArviZ-compatible file: variables with dims ``chain`` x ``draw`` and maybe more, chosen with
``select``). Parameters that name the same file share one posterior draw per PSA draw, so
their correlation is kept. Reading needs xarray and h5netcdf only, never PyMC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError

GROUP = "posterior"
SAMPLE_DIMS = ("chain", "draw")


class PosteriorError(VbhcError):
    """A posterior file or variable that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Posterior:
    """The flattened draws (chain-major) of every variable wanted from one file."""

    path: Path
    n: int
    values: dict[tuple[str, tuple], np.ndarray]

    def get(self, variable: str, select: dict | None = None) -> np.ndarray:
        """The flattened draws of ``variable`` at ``select``."""
        return self.values[(variable, _key(select))]


def resolve(file: str, scenario_file: str | None) -> Path:
    """A posterior path relative to the scenario file's folder (absolute paths as given)."""
    p = Path(file)
    if p.is_absolute() or not scenario_file:
        return p
    return Path(scenario_file).resolve().parent / p


def _key(select: dict | None) -> tuple:
    return tuple(sorted((select or {}).items()))


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime: float, wanted: tuple[tuple[str, tuple], ...]) -> Posterior:
    import xarray as xr

    try:
        ds = xr.open_dataset(path, group=GROUP, engine="h5netcdf")
    except FileNotFoundError:
        raise PosteriorError(f"{path}: posterior file not found") from None
    except OSError as exc:
        raise PosteriorError(f"{path}: cannot read a '{GROUP}' group from it ({exc}); is it "
                             "the .nc file written by 'vbhc fit'?") from None
    with ds:
        missing_dims = [d for d in SAMPLE_DIMS if d not in ds.dims]
        if missing_dims:
            raise PosteriorError(f"{path}: the '{GROUP}' group has no {missing_dims[0]!r} "
                                 "dimension; expected draws by chain and draw")
        values = {}
        for variable, select in wanted:
            values[(variable, select)] = _variable(ds, path, variable, dict(select))
        n = ds.sizes["chain"] * ds.sizes["draw"]
    return Posterior(Path(path), n, values)


def _variable(ds, path: str, variable: str, select: dict) -> np.ndarray:
    if variable not in ds.data_vars:
        import difflib

        close = difflib.get_close_matches(variable, [str(v) for v in ds.data_vars], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            f"; it has {', '.join(sorted(map(str, ds.data_vars)))}"
        raise PosteriorError(f"{path}: no variable {variable!r} in the posterior{hint}")
    da = ds[variable]
    for dim, label in select.items():
        if dim not in da.dims:
            raise PosteriorError(f"{path}: variable {variable!r} has no dimension {dim!r} "
                                 f"(it has {', '.join(da.dims)})")
        labels = [str(x) for x in da[dim].values]
        if str(label) not in labels:
            raise PosteriorError(f"{path}: {variable}[{dim}] has no {label!r}; it has "
                                 f"{', '.join(labels)}")
        da = da.isel({dim: labels.index(str(label))})
    extra = [d for d in da.dims if d not in SAMPLE_DIMS]
    if extra:
        raise PosteriorError(f"{path}: variable {variable!r} has dimension(s) "
                             f"{', '.join(extra)} besides chain and draw; choose one value "
                             f"with 'select: {{{extra[0]}: ...}}'")
    arr = da.transpose(*SAMPLE_DIMS).values.astype(float).reshape(-1)
    if not np.isfinite(arr).all():
        raise PosteriorError(f"{path}: variable {variable!r} has non-finite draws")
    return arr


def read_posterior(path: Path, wanted: list[tuple[str, dict | None]]) -> Posterior:
    """Read ``[(variable, select)]`` from a posterior file (cached while the file is
    unchanged).

    Raises
    ------
    PosteriorError
        Missing file, group, variable or label; a variable with dimensions left to select.
    """
    path = Path(path)
    if not path.exists():
        raise PosteriorError(f"{path}: posterior file not found")
    key = tuple(sorted({(v, _key(s)) for v, s in wanted}))
    return _read(str(path.resolve()), path.stat().st_mtime, key)


def draw_indices(u: np.ndarray, n_posterior: int) -> np.ndarray:
    """Posterior draw index for each uniform number: every posterior draw equally likely.

    Examples
    --------
    >>> draw_indices(np.array([0.0, 0.49, 0.5, 0.999999]), 2).tolist()
    [0, 0, 1, 1]
    """
    return np.minimum((u * n_posterior).astype(np.int64), n_posterior - 1)
