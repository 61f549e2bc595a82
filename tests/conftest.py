"""Shared fixtures: paths to the shipped scenarios and the shared validation data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
# Copies of ../shared/validation/*.json (see tests/data/validation/README.md).
VALIDATION = ROOT / "tests" / "data" / "validation"


@pytest.fixture(scope="session")
def scenarios_dir() -> Path:
    return SCENARIOS


def reference(name: str) -> dict:
    """The machine-readable reference results of a published model."""
    return json.loads((VALIDATION / f"{name}.json").read_text())
