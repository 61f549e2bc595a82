"""PSA draws read from a CSV table of samples (a bootstrap, or another tool's PSA).

A parameter may say ``samples: {file: boot.csv, column: cost_gp}``: its PSA draws are then
rows of that column. Parameters that name the same file share one row per PSA draw, so the
joint distribution of the columns (their correlation included) is the table's. With ``pick:
random`` (the default) each PSA draw takes a row chosen by its own uniform number, every row
equally likely, so any number of draws can be run; with ``pick: in_order`` PSA draw d takes
row d, to replay another tool's PSA draw by draw (then ``--draws`` may not exceed the rows).

The file is read with pandas: a header row of column names, one row per sample, numbers only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError
from vbhc_model.parameters.posterior import draw_indices


class SamplesError(VbhcError):
    """A samples file or column that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Samples:
    """The numeric columns of one samples file."""

    path: Path
    n: int
    columns: dict[str, np.ndarray]

    def get(self, column: str) -> np.ndarray:
        if column not in self.columns:
            import difflib

            close = difflib.get_close_matches(column, list(self.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else \
                f"; it has {', '.join(self.columns)}"
            raise SamplesError(f"{self.path}: no column {column!r}{hint}")
        return self.columns[column]


@functools.lru_cache(maxsize=16)
def _read(path: str, mtime: float) -> Samples:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SamplesError(f"{path}: cannot read it as a CSV table of samples "
                           f"({type(exc).__name__}: {exc})") from None
    if frame.empty:
        raise SamplesError(f"{path}: no rows of samples below the header")
    dup = frame.columns[frame.columns.duplicated()].tolist()
    if dup:
        raise SamplesError(f"{path}: column {dup[0]!r} appears twice in the header")
    columns = {}
    for name in frame.columns:
        text = frame[name].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise SamplesError(f"{path}, line {i + 2}: column {name!r} has {text.iloc[i]!r}; "
                               "every sample must be a finite number")
        columns[str(name).strip()] = values
    return Samples(Path(path), len(frame), columns)


def read_samples(path: Path) -> Samples:
    """The samples file at ``path`` (read once while it is unchanged).

    Raises
    ------
    SamplesError
        A missing or unreadable file, an empty table, a duplicated column name, a cell that
        is not a finite number.
    """
    path = Path(path)
    if not path.is_file():
        raise SamplesError(f"{path}: samples file not found")
    return _read(str(path.resolve()), path.stat().st_mtime)


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
