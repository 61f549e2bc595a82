"""Shared fixtures: paths to the shipped scenarios and the shared validation data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
# ../shared/validation beside the repository (present on developer machines and in CI).
SHARED_VALIDATION = ROOT.parent / "shared" / "validation"


@pytest.fixture(scope="session")
def scenarios_dir() -> Path:
    return SCENARIOS


def reference(name: str) -> dict:
    """The machine-readable reference results of a published model, if present."""
    path = SHARED_VALIDATION / f"{name}.json"
    if not path.exists():
        pytest.fail(f"validation reference {path} is missing (shared/ must sit beside the repo)")
    return json.loads(path.read_text())
