"""Writing results atomically: a result is either complete or absent, never half-written.

Every result folder is filled in a work folder beside it (``OUT.vbhc-work/``, locked while a
command writes, so two commands never interleave) and renamed into place when complete; its
marker (``.vbhc_result``) lists the files vbhc wrote, and ``--force`` replaces a folder only
when every file in it is listed there. A run killed outright (kill -9, power cut) leaves at most
that work folder, which the next command writing the same folder cleans up (``vbhc run
--resume`` continues a PSA from the chunks it holds).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vbhc_model.errors import VbhcError


class OutputExistsError(VbhcError):
    """The output directory exists and ``force`` was not given, or ``force`` was given for a
    folder vbhc did not write."""


class OutputError(VbhcError):
    """The output cannot be written there: no space, read-only, no such folder, a file where a
    folder goes, a name too long, or another command writing it."""


#: The file that marks a folder as a result vbhc wrote (so ``--force`` may replace it); it
#: lists the files vbhc wrote there.
MARKER = ".vbhc_result"
#: What vbhc writes into a results folder (the written line of the CLI leaves out the marker).
RESULT_NAMES = frozenset({
    MARKER, "outcomes.nc", "summary.csv", "summary_columns.csv", "psa.nc", "psa_summary.nc", "psa_curves.nc",
    "figures", "dsa.nc", "two_way.nc", "evppi.nc", "posterior.nc", "posterior_summary.csv",
    "comparison.csv", "patients.nc", "subgroups.csv", "subgroups_columns.csv",
    "psa_montecarlo.nc", "variants.nc", "variants.csv", "report", "report.html", "prices.csv", "plan.nc", "plan.csv", "plan_dashboard.csv",
    "report.xlsx",
})
#: The work folder beside a result ``OUT``: ``OUT.vbhc-work``.
WORK_SUFFIX = ".vbhc-work"
#: The longest file name (bytes) of common file systems (ext4, XFS, tmpfs, APFS, NTFS).
NAME_MAX = 255
#: ``vbhc export``'s folders (BCEA's and dampack's layouts).
RESULT_NAMES |= {"c.csv", "e.csv", "cost.csv", "effectiveness.csv", "parameters.csv",
                 "README.txt"}


def write_directory(out: Path, write: Callable[[Path], None], *, force: bool = False) -> Path:
    """Write a results directory atomically.

    ``write(tmp)`` fills a folder in the work folder beside ``out`` (:func:`work_folder`);
    only when it returns is that folder renamed to ``out``. An existing ``out`` is replaced
    only with ``force``.

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
    OutputError
        It cannot be written (no space left, read-only, ...): nothing was written.
    """
    out = Path(out)
    refuse_existing(out, force)
    with work_folder(out) as work:
        tmp = work / "result"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()  # not mkdtemp: a results folder gets the umask's mode, not 0700
            write(tmp)
            _mark(tmp)
            # Again at the end: another command may have written ``out`` meanwhile.
            refuse_existing(out, force)
            if out.exists():
                old = work / "old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(out, old)
                os.replace(tmp, out)
                shutil.rmtree(old)
            else:
                os.replace(tmp, out)
        except OSError as exc:
            raise output_error(exc, out) from None
    return out


def output_error(exc: OSError, out: Path) -> OutputError:
    """A located message for an operating-system error while writing ``out``."""
    why = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
           errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted", errno.ENAMETOOLONG: "file name too long",
           errno.ENOTDIR: "a file where a folder goes", errno.ENOENT: "no such folder",
           errno.EIO: "input/output error"}.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"{why}: {out}; nothing was written")


def write_netcdf(dataset, path: Path) -> None:
    """Write a Dataset (or DataTree) to NetCDF-4 (h5netcdf), via a temporary file renamed
    into place."""

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        dataset.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except OSError as exc:
        _forget_failed_files(exc)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def _forget_failed_files(exc: BaseException) -> None:
    """Mark the h5netcdf files a failed write left half-closed as closed.

    When HDF5 cannot close a file (no space left: its last write fails), h5netcdf's
    ``File.close`` raises before marking the file closed; its finaliser then closes it again
    and HDF5 reads freed memory: a segmentation fault at exit (issue 11). The files are found
    in the frames of the error; the operating system closes their descriptors at exit.
    """
    try:
        import h5netcdf
    except ImportError:  # pragma: no cover - h5netcdf is a dependency
        return
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            root = getattr(value, "_root", None) if not isinstance(value, h5netcdf.File) \
                else value
            if isinstance(root, h5netcdf.File):
                root._closed = True
        tb = tb.tb_next


def _mark(folder: Path) -> None:
    """Write the marker that says vbhc wrote ``folder`` (with what, when, and its files)."""
    import datetime as dt

    import vbhc_model

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    (folder / MARKER).write_text(json.dumps({
        "written_by": f"vbhc_model {vbhc_model.__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "files": files}, indent=1))


def add_to_marker(folder: Path, files: list[str]) -> None:
    """List ``files`` (relative to ``folder``) in its marker: a command that adds files to a
    result vbhc wrote (``vbhc voi``)."""
    marker = Path(folder) / MARKER
    listed = _listed(Path(folder))
    if listed is None:
        return
    data = json.loads(marker.read_text())
    data["files"] = sorted(listed | set(files))
    tmp = marker.with_name(f"{MARKER}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, marker)


def _listed(folder: Path) -> set[str] | None:
    """The files ``folder``'s marker lists, or None without a readable marker."""
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return {str(f) for f in files} if isinstance(files, list) else None


def foreign_files(path: Path) -> list[str]:
    """The files in ``path`` that vbhc did not write, relative to it, in order: every file its
    marker does not list (all of them without a marker), symbolic links and special files;
    the ``report/`` folder inside a marked result is judged by its own marker (any other
    folder, marked or not, by the result's: earlier results kept in one folder are the
    user's).

    Examples
    --------
    >>> d = Path(tempfile.mkdtemp())
    >>> foreign_files(d)
    []
    >>> _ = (d / "keep.txt").write_text("mine")
    >>> foreign_files(d)
    ['keep.txt']
    """
    path = Path(path)
    listed = _listed(path)
    found: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = prefix + entry.name
            if entry.is_symlink():
                found.append(rel)
            elif entry.is_dir():
                # the report vbhc writes into a result has a marker of its own; any other
                # folder with a marker (an earlier result inside a folder of results) is the
                # user's: never replaced as part of this one
                if listed is not None and prefix == "" and entry.name == "report" and \
                        (Path(entry.path) / MARKER).is_file():
                    found.extend(rel + "/" + f for f in foreign_files(Path(entry.path)))
                else:
                    walk(Path(entry.path), rel + "/")
            elif not entry.is_file() or listed is None or rel not in listed | {MARKER}:
                found.append(rel)

    walk(path, "")
    return found


def is_result_folder(path: Path) -> bool:
    """Whether ``path`` is a folder that vbhc wrote and ``--force`` may replace: an empty
    folder, or one whose marker lists every file in it (:func:`foreign_files`).

    Examples
    --------
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
    return not foreign_files(path)


def refuse_existing(path: Path, force: bool, *, option: str = "choose another --out or ") -> None:
    """The one check before a command computes anything: ``path`` (a results folder, or a
    ``.nc`` file a command writes) must be writable (:func:`check_writable`) and must not
    exist unless ``force``; and ``force`` replaces only what vbhc wrote: a results folder
    (:func:`is_result_folder`), or a regular ``.nc`` file. It never replaces a folder
    holding other files, a symbolic link, a file where a folder goes, or the working folder
    or one of its parents.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false, or it is not something vbhc wrote.
    OutputError
        ``path`` cannot be written (:func:`check_writable`).
    """
    path = Path(path)
    _check_names(path)
    if path.exists() or path.is_symlink():
        _refuse(path, force, option)
    check_writable(path)


def _refuse(path: Path, force: bool, option: str) -> None:
    if path.is_dir() and not path.is_symlink():
        here, there = Path.cwd().resolve(), path.resolve()
        if here == there or there in here.parents:
            raise OutputExistsError(
                f"{path}: is the folder you are in{'' if here == there else ' or holds it'} "
                f"({there}); vbhc replaces a results folder as a whole: choose a new folder, "
                "for example --out results")
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
    others = foreign_files(path)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        why = "" if _listed(path) is not None else \
            f" (it has no readable {MARKER}, the list of the files vbhc wrote)"
        raise OutputExistsError(
            f"{path}: holds files vbhc did not write ({shown}){why}; --force replaces only a "
            "folder of results vbhc wrote, so nothing was changed: choose another --out")


def check_writable(path: Path) -> None:
    """Refuse, before any work, a ``path`` that cannot be written: a file where one of its
    folders goes, a name longer than the file system allows, a folder that cannot be written
    (read-only, no permission, ``/proc``).

    Raises
    ------
    OutputError
    """
    path = Path(path)
    _check_names(path)
    full = Path(os.path.abspath(path))
    parent = full.parent
    while not (parent.exists() or parent.is_symlink()):
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is a file, not a folder; choose another --out")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vbhc-probe-", dir=parent))
    except OSError as exc:
        why = ("it takes no new folders" if exc.errno == errno.ENOENT
               else output_error(exc, parent).args[0].split(":")[0])
        raise OutputError(f"{path}: cannot write in {parent} ({why}); choose another --out") \
            from None


def _check_names(path: Path) -> None:
    """Refuse a folder or file name longer than file systems allow (255 bytes, less the
    work folder's suffix for the last name)."""
    parts = Path(os.path.abspath(path)).parts
    for i, name in enumerate(parts):
        limit = NAME_MAX - (len(WORK_SUFFIX) if i == len(parts) - 1 else 0)
        if len(os.fsencode(name)) > limit:
            raise OutputError(f"--out: the name {name[:20]}... is {len(name)} characters long; "
                              f"at most {limit} fit there: choose a shorter --out")


#: Work folders this process holds (locked), by path: a command that holds one for its whole
#: run (``vbhc run``) writes its result through it.
_HELD: dict[Path, Path] = {}


def work_path(out: Path) -> Path:
    """The work folder beside ``out``: ``OUT.vbhc-work``."""
    full = Path(os.path.abspath(out))
    return full.with_name(full.name + WORK_SUFFIX)


@contextmanager
def work_folder(out: Path, *, keep: tuple[str, ...] = (), resume: bool = False
                ) -> Iterator[Path]:
    """The work folder beside ``out``, locked (``fcntl.flock``: released by the operating
    system however the process ends) while the block runs.

    An earlier command's work folder that nobody holds (it was killed) is cleaned first: a
    result it was replacing is put back, and everything else removed, except, with
    ``resume``, the entries named in ``keep`` (``vbhc run --resume``: the PSA's finished
    chunks). On leaving, the work folder is removed; after an interruption (Ctrl-C) the
    entries named in ``keep`` stay.

    Raises
    ------
    OutputError
        Another command is writing ``out``, or the work folder cannot be written (no space
        left, ...).
    """
    work = work_path(out)
    if work in _HELD:  # this process holds it already (the run writes its result)
        yield work
        return
    fd = _lock(work, out)
    _HELD[work] = work
    try:
        _recover(work, out)
        _clean(work, keep if resume else ())
        yield work
    except OSError as exc:  # a part file of the PSA, say: no space left
        _recover(work, out)
        # the PSA's finished chunks stay (space freed, --resume continues from them)
        chunks = [name for name in keep if (work / name).is_dir()
                  and any((work / name).glob("part_*.nc"))]
        _leave(work, fd, tuple(chunks))
        error = output_error(exc, out)
        if chunks:
            error = OutputError(f"{error}; the finished chunks of the PSA are kept in "
                                f"{work}: free some space and add --resume to continue")
        raise error from None
    except BaseException as exc:
        _recover(work, out)
        # Ctrl-C, or a refused or failed resume: what a resume needs stays
        _leave(work, fd, keep if resume or isinstance(exc, KeyboardInterrupt) else ())
        raise
    _release(work, fd)


def _leave(work: Path, fd: int, keep: tuple[str, ...]) -> None:
    """Unlock the work folder, removing all but ``keep`` (all of it if nothing is kept)."""
    _clean(work, keep)
    for name in keep:  # nothing worth resuming from
        if (work / name).is_dir() and not any((work / name).iterdir()):
            (work / name).rmdir()
    if any(e.name != "lock" for e in work.iterdir()):
        _HELD.pop(work, None)
        os.close(fd)  # unlocked; kept for --resume
    else:
        _release(work, fd)


def _clean(work: Path, keep: tuple[str, ...]) -> None:
    for entry in list(work.iterdir()):
        if entry.name != "lock" and entry.name not in keep:
            _remove(entry)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def _lock(work: Path, out: Path) -> int:
    """Make and lock ``work``; the file descriptor of its lock."""
    import fcntl

    while True:
        try:
            work.mkdir(parents=True, exist_ok=True)
            fd = os.open(work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise output_error(exc, out) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutputError(f"{out}: another vbhc command is writing it (its work folder "
                              f"{work} is locked); wait for it to finish or choose another "
                              "--out") from None
        try:  # the holder before us may have removed the folder as we opened its lock
            if os.stat(work / "lock").st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _recover(work: Path, out: Path) -> None:
    """A result a killed command was replacing (moved aside, the new one not yet in place)
    goes back to ``out``."""
    old = work / "old"
    if old.is_dir() and not (out.exists() or out.is_symlink()):
        os.replace(old, out)


def _release(work: Path, fd: int) -> None:
    """Remove the work folder (the lock last) and unlock it."""
    _HELD.pop(work, None)
    try:
        _clean(work, ())
        (work / "lock").unlink(missing_ok=True)
        work.rmdir()
    except OSError:
        pass
    finally:
        os.close(fd)
