"""``vbhc validate``: scenario files checked as a run would check them, every issue at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from vbhc_model.errors import ScenarioError
from vbhc_model.parameters.draws import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.results import FileCheck, ValidationResult
from vbhc_model.scenario import load_scenario


def validate(paths: Iterable[str | Path]) -> ValidationResult:
    """Load each scenario file (schema, references) and run its base case (the numbers:
    probabilities, rows summing to one, values). A file's issues do not stop the others.

    Returns
    -------
    ValidationResult
        One :class:`~vbhc_model.results.FileCheck` per file, in order.
    """
    checks = []
    for path in paths:
        try:
            sc = load_scenario(path)
            simulate(sc, base_draws(sc))
        except ScenarioError as exc:
            checks.append(FileCheck(Path(path), False, issues=tuple(exc.issues)))
            continue
        checks.append(FileCheck(Path(path), True, len(sc.strategies), len(sc.states),
                                len(sc.parameters)))
    return ValidationResult(tuple(checks))
