"""Uniforms supplied by a user, to replay another tool's microsimulation exactly.

A table of uniforms in [0, 1) with one row per patient and one column per cycle 0..n
(column 0 draws the starting state, column k the transition of cycle k), as

- **CSV**: a header row (any column names), then one row per patient;
- **.npy** (NumPy): ``patients x cycles``, or ``draws x patients x cycles`` to give each PSA
  draw its own table (draw d reads ``table[d]``).

Every mistake is an :class:`UniformsError` naming the file and, for a CSV, the line and the
column; a file is read again only when its size or time stamp changes.
"""

from __future__ import annotations

import csv
import functools
import math
import warnings
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError

SUFFIXES = (".csv", ".npy")


class UniformsError(VbhcError):
    """A uniforms file that cannot be replayed; the message says which and why."""


def read_uniforms(path: str | Path, n_cycles: int) -> np.ndarray:
    """The uniforms in ``path`` (read-only), ``[patient, cycle]`` or ``[draw, patient, cycle]``.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.npy`` file.
    n_cycles : int
        The scenario's cycles: the table needs ``n_cycles + 1`` columns.

    Raises
    ------
    UniformsError
        A missing or unreadable file; a CSV without rows, with rows of unequal length, or a
        cell that is not a number; an array that is not 2-D or 3-D floating point; the wrong
        number of columns; a value that is NaN or outside [0, 1).

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "u.csv"
    >>> _ = f.write_text("c0,c1\\n0.1,0.5\\n0.7,0.25\\n")
    >>> read_uniforms(f, 1).tolist()
    [[0.1, 0.5], [0.7, 0.25]]
    >>> read_uniforms(f, 2)
    Traceback (most recent call last):
    ...
    vbhc_model.readers.uniforms.UniformsError: ...u.csv: 2 columns; 2 cycles need 3, one per cycle 0..2 (column 0 draws the starting state)
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UniformsError(f"{path}: expected a .csv or .npy file of uniforms "
                            f"(one row per patient, one column per cycle)")
    if not path.is_file():
        raise UniformsError(f"{path}: uniforms file not found")
    st = path.stat()
    return _read(str(path), (st.st_mtime_ns, st.st_size), int(n_cycles))


@functools.lru_cache(maxsize=4)
def _read(path: str, stamp: tuple[int, int], n_cycles: int) -> np.ndarray:
    p = Path(path)
    table = _read_npy(p) if p.suffix.lower() == ".npy" else _read_csv(p, n_cycles)
    _check_columns(table.shape[-1], p, n_cycles)
    _check_values(table, p)
    table.setflags(write=False)
    return table


def _check_columns(n: int, path: Path, n_cycles: int) -> None:
    if n != n_cycles + 1:
        raise UniformsError(f"{path}: {n} columns; {n_cycles} cycles need {n_cycles + 1}, one "
                            f"per cycle 0..{n_cycles} (column 0 draws the starting state)")


def _bad(x: float) -> str | None:
    """Why a number is not a uniform, or None."""
    if math.isnan(x):
        return "NaN is not a uniform in [0, 1)"
    if not 0.0 <= x < 1.0:
        return f"{x!r} is outside [0, 1)"
    return None


def _check_values(table: np.ndarray, path: Path) -> None:
    ok = (table >= 0.0) & (table < 1.0)  # False for NaN
    if ok.all():
        return
    where = np.unravel_index(int(np.argmin(ok)), table.shape)
    names = ("draw", "patient", "cycle")[-table.ndim:]
    at = ", ".join(f"{n} {i}" for n, i in zip(names, where))
    n_bad = int(ok.size - ok.sum())
    raise UniformsError(f"{path}: {at}: {_bad(float(table[where]))}"
                        + (f" ({n_bad:,} such values)" if n_bad > 1 else ""))


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise UniformsError(f"{path}: not a NumPy .npy file (written by numpy.save)")
    try:
        table = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UniformsError(f"{path}: not a NumPy .npy array of uniforms ({exc})") from None
    if not isinstance(table, np.ndarray) or table.dtype.kind != "f":
        what = getattr(table, "dtype", type(table).__name__)
        raise UniformsError(f"{path}: holds {what} values; expected floating-point uniforms "
                            f"in [0, 1)")
    if table.ndim not in (2, 3) or 0 in table.shape:
        raise UniformsError(f"{path}: an array of shape {table.shape}; expected patients x "
                            f"cycles, or draws x patients x cycles (one table per PSA draw)")
    return np.array(table, dtype=np.float64)  # a copy of our own, native byte order


def _read_csv(path: Path, n_cycles: int) -> np.ndarray:
    """The rows of a CSV: numpy's reader first; on any problem the file is read again row by
    row, to say on which line and in which column it is."""
    header = _header(path)
    _check_columns(len(header), path, n_cycles)
    try:
        with warnings.catch_warnings():  # "input contained no data": said below, with the file
            warnings.simplefilter("ignore", UserWarning)
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, comments=None,
                               encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError):
        table = None
    if (table is None or table.shape[0] == 0 or table.shape[1] != len(header)
            or not ((table >= 0.0) & (table < 1.0)).all()):
        table = _read_rows(path, header)
    return table


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError as exc:
        raise UniformsError(f"{path}: is not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise UniformsError(f"{path}: cannot read it as CSV ({exc})") from None
    if not header:
        raise UniformsError(f"{path}: the file is empty (expected a header, then one row per "
                            f"patient)")
    try:
        [float(h) for h in header]
    except ValueError:
        return [h.strip() for h in header]
    raise UniformsError(f"{path}, line 1: holds numbers; the first line is a header (a name "
                        f"for each column, e.g. cycle_0,cycle_1,...), then one row per patient")


def _read_rows(path: Path, header: list[str]) -> np.ndarray:
    """The table read row by row; the first problem found is an error with its line."""
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader)
        try:
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue  # a blank line
                line = reader.line_num
                if len(row) != len(header):
                    raise UniformsError(f"{path}, line {line}: {len(row)} values; the header "
                                        f"(line 1) has {len(header)} columns")
                values = []
                for name, cell in zip(header, row):
                    try:
                        x = float(cell)
                    except ValueError:
                        what = ("empty cell, expected a number" if not cell.strip()
                                else f"{cell.strip()!r} is not a number")
                        raise UniformsError(f"{path}, line {line}, column '{name}': "
                                            f"{what}") from None
                    why = _bad(x)
                    if why:
                        raise UniformsError(f"{path}, line {line}, column '{name}': {why}")
                    values.append(x)
                rows.append(values)
        except csv.Error as exc:
            raise UniformsError(f"{path}, line {reader.line_num}: not readable as CSV "
                                f"({exc})") from None
    if not rows:
        raise UniformsError(f"{path}: no rows, only a header (expected one row per patient)")
    return np.array(rows, dtype=np.float64)
