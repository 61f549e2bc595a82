"""PSA draws read from a CSV table of samples (a bootstrap, or another tool's PSA).

A parameter may say ``samples: {file: boot.csv, column: cost_gp}``: its PSA draws are then
rows of that column. Parameters that name the same file share one row per PSA draw, so the
joint distribution of the columns (their correlation included) is the table's. With ``pick:
random`` (the default) each PSA draw takes a row chosen by its own uniform number, every row
equally likely, so any number of draws can be run; with ``pick: in_order`` PSA draw d takes
row d, to replay another tool's PSA draw by draw (then ``--draws`` may not exceed the rows).

The file is read as ``vbhc analyse`` reads other tools' tables (vbhc_model.readers.tables): a header
row of column names, one row per sample; the columns used must hold finite numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError, excerpt
from vbhc_model.readers.posterior import draw_indices
from vbhc_model.suggest import did_you_mean


class SamplesError(VbhcError):
    """A samples file or column that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Samples:
    """The columns of one samples file: numbers, or why a column is not usable."""

    path: Path
    n: int
    columns: dict[str, np.ndarray | str]

    def get(self, column: str) -> np.ndarray:
        """The samples of ``column``; an error names the file, the line and the cell when a
        cell is not a finite number (columns not asked for may hold text, e.g. an id)."""
        if column not in self.columns:
            hint = did_you_mean(column, list(self.columns), ignore_case=False) or \
                f"; it has {excerpt(', '.join(map(repr, self.columns)))}"
            raise SamplesError(f"{self.path}: no column {excerpt(column)!r}{hint}")
        values = self.columns[column]
        if isinstance(values, str):
            raise SamplesError(values)
        return values


@functools.lru_cache(maxsize=16)
def _read(path: str, stamp: tuple[int, int]) -> Samples:
    from vbhc_model.readers.tables import numbers, read_table  # the reader of other tools' tables

    try:
        frame = read_table(Path(path))
    except VbhcError as exc:
        raise SamplesError(str(exc)) from None
    columns: dict[str, np.ndarray | str] = {}
    for name in frame.columns:
        try:
            columns[str(name)] = numbers(frame, name, Path(path))
        except VbhcError as exc:  # reported if the column is asked for (it may be an id)
            columns[str(name)] = str(exc)
    return Samples(Path(path), len(frame), columns)


def read_samples(path: Path) -> Samples:
    """The samples file at ``path`` (read again whenever its size or time stamp changes).

    Raises
    ------
    SamplesError
        A missing or unreadable file, an empty table, a duplicated column name. (A cell that
        is not a finite number is reported when its column is asked for.)
    """
    path = Path(path)
    if not path.is_file():
        raise SamplesError(f"{path}: samples file not found")
    st = path.stat()
    return _read(str(path.resolve()), (st.st_mtime_ns, st.st_size))


def rows_for(pick: str, u: np.ndarray, draw: np.ndarray, n_rows: int, path: Path) -> np.ndarray:
    """The table row of each PSA draw: by its uniform number (``random``) or its index
    (``in_order``).

    Examples
    --------
    >>> rows_for("random", np.array([0.0, 0.6]), np.array([0, 1]), 2, Path("s.csv")).tolist()
    [0, 1]
    >>> rows_for("in_order", np.array([0.9, 0.1]), np.array([0, 1]), 2, Path("s.csv")).tolist()
    [0, 1]
    """
    if pick == "in_order":
        if draw.size and int(draw.max()) >= n_rows:
            raise SamplesError(f"{path}: has {n_rows:,} rows, and with 'pick: in_order' draw "
                               f"{int(draw.max()):,} would need row {int(draw.max()) + 1:,}; "
                               f"run at most {n_rows:,} draws or use 'pick: random'")
        return draw.astype(np.int64)
    return draw_indices(u, n_rows)
