"""``vbhc validate``: scenario files checked as a run would check them, every issue at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vbhc_model import dims
from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.parameters.draws import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.results import FileCheck, ValidationResult
from vbhc_model.scenario import load_scenario
from vbhc_model.scenario.checks import outside_notes


def validate(paths: Iterable[str | Path], *, draws: int = 0,
             seed: int | None = None) -> ValidationResult:
    """Load each scenario file (schema, references) and run its base case (the numbers:
    probabilities, rows summing to one, values); with ``draws``, also sample that many PSA
    draws and check every one, so a distribution that makes a probability negative is found
    here rather than in the middle of a PSA. A file's issues do not stop the others.

    Returns
    -------
    ValidationResult
        One :class:`~vbhc_model.results.FileCheck` per file, in order. An issue found in a
        sampled draw names the draw and the values its varying parameters took.
    """
    checks = []
    for path in paths:
        try:
            sc = load_scenario(path)
            simulate(sc, base_draws(sc))
            if draws:
                _check_draws(sc, draws, seed)
        except ScenarioError as exc:
            checks.append(FileCheck(Path(path), False, issues=tuple(exc.issues)))
            continue
        checks.append(FileCheck(Path(path), True, len(sc.strategies), len(sc.states),
                                len(sc.parameters), notes=tuple(outside_notes(sc))))
    return ValidationResult(tuple(checks))


def _check_draws(scenario, n: int, seed: int | None) -> None:
    """Simulate ``n`` sampled draws; an issue of one draw gets that draw's parameter values."""
    from vbhc_model.parameters.sampling import check_draws, sample_draws

    check_draws(scenario, n)
    sample = sample_draws(scenario, n, seed=seed)
    try:
        simulate(scenario, sample)
    except ScenarioError as exc:
        raise ScenarioError([_with_values(i, sample) for i in exc.issues]) from None


def _with_values(issue: Issue, sample) -> Issue:
    """The issue with the values its draw's varying parameters took (at most ten)."""
    if issue.draw is None:
        return issue
    values = np.asarray(sample.values)
    varying = [j for j in range(values.shape[1]) if np.ptp(values[:, j]) > 0]
    names = [str(p) for p in sample[dims.PARAMETER].values]
    shown = ", ".join(f"{names[j]} = {values[issue.draw, j]:.6g}" for j in varying[:10])
    more = f", and {len(varying) - 10} more" if len(varying) > 10 else ""
    text = f"; in sampled draw {issue.draw}: {shown}{more}" if varying else ""
    return dataclasses.replace(issue, message=issue.message + text)
