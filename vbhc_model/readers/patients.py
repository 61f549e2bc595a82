"""A scenario's patient table (``population: {patients: {file: ...}}``): rows of patients or
patient types, attributes as columns of numbers, an optional column of weights.

Read as the samples files are (:mod:`vbhc_model.readers.samples`: a header row of column
names, cells that are finite numbers, re-read when the file changes); errors name the file
and the column or cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbhc_model.errors import VbhcError
from vbhc_model.readers.samples import SamplesError, read_samples

__all__ = ["PatientTable", "PatientTableError", "read_patients"]


class PatientTableError(VbhcError):
    """A patient table that cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class PatientTable:
    """The rows of a patient table: ``values[row, attribute]`` and ``weights[row]`` (summing
    to one)."""

    path: Path
    attributes: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray


def read_patients(path: Path, weight: str | None = None,
                  columns: list[str] | None = None) -> PatientTable:
    """The table at ``path``: the attribute ``columns`` (default: every column but the
    weight) and the weights, normalised to sum to one (default: equal).

    Raises
    ------
    PatientTableError
        A missing or unreadable file, an unknown column, a cell that is not a finite number,
        a negative weight or weights that sum to zero.
    """
    try:
        table = read_samples(path)
        names = list(columns) if columns is not None else \
            [c for c in table.columns if c != weight]
        if not names:
            raise PatientTableError(f"{path}: no attribute columns besides the weight")
        values = np.column_stack([table.get(c) for c in names]) if table.n else \
            np.empty((0, len(names)))
        w = table.get(weight) if weight is not None else np.ones(table.n)
    except SamplesError as exc:
        hint = ("; a column that is not an attribute (an id, a name) can be left out by "
                "listing the attribute columns in 'columns:'"
                if columns is None and "not a finite number" in str(exc) else "")
        raise PatientTableError(str(exc).replace("samples file", "patient table") + hint) \
            from None
    if table.n == 0:
        raise PatientTableError(f"{path}: the patient table has no rows")
    if (w < 0).any():
        row = int(np.argmax(w < 0))
        raise PatientTableError(f"{path}: weight {w[row]:g} in row {row + 1} (line {row + 2}) "
                                f"of column {weight!r} is negative")
    if not w.sum() > 0:
        raise PatientTableError(f"{path}: the weights in column {weight!r} sum to 0")
    return PatientTable(Path(path), tuple(names), values, w / w.sum())
