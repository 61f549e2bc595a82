"""Writing results atomically: a result is either complete or absent, never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from vbhc_model.errors import VbhcError


class OutputExistsError(VbhcError):
    """The output directory exists and ``force`` was not given, or ``force`` was given for a
    folder vbhc did not write."""


#: The file that marks a folder as a result vbhc wrote (so ``--force`` may replace it).
MARKER = ".vbhc_result"
#: What vbhc writes into a results folder: a folder holding only these (and no marker, as
#: written before markers existed) is a result too.
RESULT_NAMES = frozenset({
    MARKER, "outcomes.nc", "summary.csv", "summary_columns.csv", "psa.nc", "psa_summary.nc", "psa_curves.nc",
    "figures", "dsa.nc", "two_way.nc", "evppi.nc", "posterior.nc", "posterior_summary.csv",
    "comparison.csv", "patients.nc", "subgroups.csv", "subgroups_columns.csv",
    "psa_montecarlo.nc", "variants.nc", "variants.csv", "report", "report.html", "prices.csv", "plan.nc", "plan.csv", "plan_dashboard.csv",
    "report.xlsx",
})
#: ``vbhc export``'s folders (BCEA's and dampack's layouts).
RESULT_NAMES |= {"c.csv", "e.csv", "cost.csv", "effectiveness.csv", "parameters.csv",
                 "README.txt"}


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
        ``out`` exists and ``force`` is false, or it is not a folder of results vbhc wrote
        (:func:`refuse_existing`).
    """
    out = Path(out)
    refuse_existing(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write(tmp)
        _mark(tmp)
        # Again at the end: another run may have written ``out`` meanwhile (two runs into one
        # folder never interleave: the later one is refused, or replaces it only with force).
        refuse_existing(out, force)
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


def _mark(folder: Path) -> None:
    """Write the marker that says vbhc wrote ``folder`` (with what, when, and its files)."""
    import datetime as dt
    import json

    import vbhc_model

    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    (folder / MARKER).write_text(json.dumps({
        "written_by": f"vbhc_model {vbhc_model.__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files}, indent=1))


def is_result_folder(path: Path) -> bool:
    """Whether ``path`` is a folder that vbhc wrote and ``--force`` may replace: an empty
    folder, or one whose entries are all names vbhc writes into a results folder (a folder
    holding anything else, a user's file say, is not, marker or not).

    Examples
    --------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> is_result_folder(d)
    True
    >>> _ = (d / "keep.txt").write_text("mine")
    >>> is_result_folder(d)
    False
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    return all(entry.name in RESULT_NAMES for entry in path.iterdir())


def refuse_existing(path: Path, force: bool, *, option: str = "choose another --out or ") -> None:
    """The one check before a command computes anything: ``path`` (a results folder, or a
    ``.nc`` file a command writes) must not exist unless ``force``; and ``force`` replaces
    only what vbhc wrote: a results folder (:func:`is_result_folder`), or a regular ``.nc``
    file. It never replaces a folder holding other files, a symbolic link, or a file where a
    folder goes.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false, or it is not something vbhc wrote.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if not force:
        raise OutputExistsError(f"{path}: already exists; {option}pass --force to replace it")
    if path.is_symlink():
        raise OutputExistsError(f"{path}: is a symbolic link; --force replaces only results vbhc "
                                "wrote: choose another --out")
    if path.suffix == ".nc":
        if not path.is_file():
            raise OutputExistsError(f"{path}: is not a file; --force replaces only a NetCDF file "
                                    "vbhc wrote there: choose another --out")
        return
    if not path.is_dir():
        raise OutputExistsError(f"{path}: is a file, not a results folder; --force replaces only "
                                "results vbhc wrote: choose another --out")
    if not is_result_folder(path):
        others = sorted(e.name for e in path.iterdir() if e.name not in RESULT_NAMES)
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise OutputExistsError(
            f"{path}: holds files vbhc did not write ({shown}); --force replaces only a folder "
            "of results vbhc wrote, so nothing was changed: choose another --out")
