"""Scenario files: the schema, the safe expression language, loading and errors."""

from pathlib import Path

from vbhc_model.scenario.loader import load_scenario
from vbhc_model.scenario.schema import Scenario

DEFAULT_SCENARIO = "chronic_pain_us.yaml"


def scenarios_dir() -> Path:
    """The folder of the shipped scenario files.

    An installed wheel has it inside the package (``vbhc_model/scenarios/``); a checkout, and
    an editable install of one, has the top-level ``scenarios/`` beside ``vbhc_model/``.
    """
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "scenarios", package.parent / "scenarios"):
        if (folder / DEFAULT_SCENARIO).is_file():
            return folder
    return package / "scenarios"  # not found: loading from it names the missing file


def default_scenario_path() -> Path:
    """The default chronic-pain scenario shipped with the package."""
    return scenarios_dir() / DEFAULT_SCENARIO


__all__ = ["Scenario", "default_scenario_path", "load_scenario", "scenarios_dir"]
