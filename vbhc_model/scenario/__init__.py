"""Scenario files: the schema, the safe expression language, loading and errors."""

from importlib.resources import files
from pathlib import Path

from vbhc_model.scenario.loader import load_scenario
from vbhc_model.scenario.schema import Scenario

DEFAULT_SCENARIO = "chronic_pain_us.yaml"


def default_scenario_path() -> Path:
    """The default chronic-pain scenario shipped inside the package."""
    return Path(str(files("vbhc_model.scenarios") / DEFAULT_SCENARIO))


__all__ = ["Scenario", "default_scenario_path", "load_scenario"]
