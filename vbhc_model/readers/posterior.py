"""Posterior draws from fitted models, as PSA distributions of scenario parameters.

A parameter may say ``posterior: {file: fits/resolve.nc, variable: rr_coach}``: its PSA draws
are then taken from the ``posterior`` group of that NetCDF file (what ``vbhc fit`` writes, an
ArviZ-compatible file: variables with dims ``chain`` x ``draw`` and maybe more, chosen with
``select``). Parameters that name the same file share one posterior draw per PSA draw, so
their correlation is kept. A posterior that failed the convergence gate (written with
``--allow-unconverged``) is refused. Reading needs h5netcdf only, never PyMC or xarray.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError
from vbhc_model.suggest import did_you_mean

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


#: A file named ``package:fits/resolve.nc`` in a scenario is one shipped with vbhc_model (in
#: its scenarios folder), found wherever the scenario file is.
PACKAGE_PREFIX = "package:"


def package_file(name: str) -> Path:
    """A file shipped in vbhc_model's scenarios folder: ``vbhc_model/scenarios/NAME`` in an
    installed wheel, ``scenarios/NAME`` beside the package in a checkout (where it is not:
    the wheel's path, which a "not found" message then names)."""
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "scenarios", package.parent / "scenarios"):
        if (folder / name).exists():
            return folder / name
    return package / "scenarios" / name


def resolve(file: str, scenario_file: str | None) -> Path:
    """A path a scenario file names: relative to the scenario file's folder, absolute as
    given, or ``package:NAME``, a file shipped with vbhc_model (:func:`package_file`)."""
    if file.startswith(PACKAGE_PREFIX):
        return package_file(file[len(PACKAGE_PREFIX):].lstrip("/"))
    p = Path(file)
    if not p.is_absolute() and scenario_file:
        p = Path(scenario_file).resolve().parent / p
    return p


def _key(select: dict | None) -> tuple:
    return tuple(sorted((select or {}).items()))


@dataclass(frozen=True)
class _Group:
    """A posterior group as plain arrays: variable -> (dims, values); coordinate labels."""

    variables: dict[str, tuple[tuple[str, ...], np.ndarray]]
    labels: dict[str, list[str]]


@functools.lru_cache(maxsize=32)
def _read_group(path: str, mtime: float) -> _Group:
    """Read the whole ``posterior`` group once (h5netcdf directly: no xarray overhead)."""
    import h5netcdf

    try:
        f = h5netcdf.File(path, "r")
    except OSError as exc:
        raise PosteriorError(f"{path}: cannot read it as NetCDF ({exc}); is it the .nc file "
                             "written by 'vbhc fit'?") from None
    with f:
        converged = f.attrs.get("converged", 1)
        if int(np.asarray(converged).reshape(-1)[0]) != 1:
            failures = f.attrs.get("gate_failures", "")
            raise PosteriorError(f"{path}: this posterior failed the convergence gate "
                                 f"({failures or 'converged = 0'}); it was written with "
                                 "--allow-unconverged and cannot be used for a decision: refit "
                                 "it until it converges")
        if GROUP not in f.groups:
            raise PosteriorError(f"{path}: has no '{GROUP}' group; is it the .nc file written "
                                 "by 'vbhc fit'?")
        g = f.groups[GROUP]
        variables, labels = {}, {}
        for name, var in g.variables.items():
            values = var[...]
            if name in g.dimensions:  # a coordinate
                labels[name] = [v.decode() if isinstance(v, bytes) else str(v)
                                for v in np.asarray(values).tolist()]
            else:
                variables[name] = (tuple(var.dimensions), np.asarray(values))
    missing = [d for d in SAMPLE_DIMS if not any(d in dims for dims, _ in variables.values())]
    if missing:
        raise PosteriorError(f"{path}: the '{GROUP}' group has no {missing[0]!r} dimension; "
                             "expected draws by chain and draw")
    return _Group(variables, labels)


def _variable(group: _Group, path: str, variable: str, select: dict) -> np.ndarray:
    if variable not in group.variables:
        hint = did_you_mean(variable, list(group.variables), ignore_case=False) or \
            f"; it has {', '.join(sorted(group.variables))}"
        raise PosteriorError(f"{path}: no variable {variable!r} in the posterior{hint}")
    dims, arr = group.variables[variable]
    index = []
    for dim in dims:
        if dim in SAMPLE_DIMS:
            index.append(slice(None))
        elif dim in select:
            labels = group.labels.get(dim, [str(i) for i in range(arr.shape[dims.index(dim)])])
            if str(select[dim]) not in labels:
                raise PosteriorError(f"{path}: {variable}[{dim}] has no {select[dim]!r}; it has "
                                     f"{', '.join(labels)}")
            index.append(labels.index(str(select[dim])))
        else:
            raise PosteriorError(f"{path}: variable {variable!r} has dimension(s) "
                                 f"{', '.join(d for d in dims if d not in SAMPLE_DIMS)} besides "
                                 f"chain and draw; choose one value with 'select: {{{dim}: ...}}'")
    for dim in select:
        if dim not in dims:
            raise PosteriorError(f"{path}: variable {variable!r} has no dimension {dim!r} "
                                 f"(it has {', '.join(dims)})")
    kept = [d for d in dims if d in SAMPLE_DIMS]
    if kept != list(SAMPLE_DIMS):
        raise PosteriorError(f"{path}: variable {variable!r} is not drawn by chain and draw")
    raw = np.asarray(arr[tuple(index)])
    if raw.dtype.kind not in "biuf":  # text, dates, objects: not draws
        what = "text" if raw.dtype.kind in "SUO" else f"values of type {raw.dtype}"
        raise PosteriorError(f"{path}: variable {variable!r} holds {what}, not numbers")
    out = raw.astype(float).reshape(-1)
    if not np.isfinite(out).all():
        raise PosteriorError(f"{path}: variable {variable!r} has non-finite draws")
    return out


def read_posterior(path: Path, wanted: list[tuple[str, dict | None]]) -> Posterior:
    """Read ``[(variable, select)]`` from a posterior file (the file is read once while it
    is unchanged).

    Raises
    ------
    PosteriorError
        Missing file, group, variable or label; a variable with dimensions left to select.
    """
    path = Path(path)
    if not path.exists():
        raise PosteriorError(f"{path}: posterior file not found")
    group = _read_group(str(path.resolve()), path.stat().st_mtime)
    values = {(v, _key(s)): _variable(group, str(path), v, dict(s or {})) for v, s in wanted}
    n = next(iter(values.values())).size if values else 0
    return Posterior(path, n, values)


def draw_indices(u: np.ndarray, n_posterior: int) -> np.ndarray:
    """Posterior draw index for each uniform number: every posterior draw equally likely.

    Examples
    --------
    >>> draw_indices(np.array([0.0, 0.49, 0.5, 0.999999]), 2).tolist()
    [0, 0, 1, 1]
    """
    return np.minimum((u * n_posterior).astype(np.int64), n_posterior - 1)
