"""Writing results atomically: a result is either complete or absent, never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vbhc_model.errors import VbhcError


class OutputExistsError(VbhcError):
    """The output directory exists and ``force`` was not given."""


def write_directory(out: Path, write: Callable[[Path], None], *, force: bool = False) -> Path:
    """Write a results directory atomically.

    ``write(tmp)`` fills a temporary directory beside ``out``; only when it returns is the
    temporary directory renamed to ``out``. An existing ``out`` is replaced only with ``force``.

    Parameters
    ----------
    out : Path
        The results directory.
    write : callable
        Writes the result files into the directory it is given.
    force : bool
        Replace an existing ``out``.

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``force`` is false.
    """
    out = Path(out)
    refuse_existing(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_netcdf(dataset, path: Path) -> None:
    """Write a Dataset (or DataTree) to NetCDF-4 (h5netcdf), via a temporary file renamed
    into place."""

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        dataset.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def refuse_existing(path: Path, force: bool, *, option: str = "choose another --out or ") -> None:
    """The one check before a command computes anything: ``path`` (a results folder, or a
    file a command adds to one) must not exist unless ``force``.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    """
    if Path(path).exists() and not force:
        raise OutputExistsError(f"{path}: already exists; {option}pass --force to replace it")
