"""The shipped scenario files: found in a checkout and in an installed wheel, all shipped."""

from __future__ import annotations

import tomllib

import vbhc_model.scenario as scenario_module
from tests.conftest import ROOT, SCENARIOS
from vbhc_model.scenario import default_scenario_path, load_scenario, scenarios_dir


def shipped_files() -> set:
    return {p.relative_to(SCENARIOS) for p in SCENARIOS.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_checkout_s_scenarios_folder_is_found():
    assert not SCENARIOS.is_symlink() and SCENARIOS.is_dir()
    assert scenarios_dir() == SCENARIOS
    assert default_scenario_path() == SCENARIOS / "chronic_pain_us.yaml"
    assert load_scenario(default_scenario_path()).name == "chronic_pain_us"


def test_an_installed_wheel_s_scenarios_are_found_inside_the_package(tmp_path, monkeypatch):
    """A wheel installs scenarios/ as vbhc_model/scenarios/ (setup.py's build_py)."""
    site = tmp_path / "site-packages" / "vbhc_model"
    (site / "scenario").mkdir(parents=True)
    (site / "scenarios").mkdir()
    (site / "scenarios" / "chronic_pain_us.yaml").write_text("name: x\n")
    monkeypatch.setattr(scenario_module, "__file__", str(site / "scenario" / "__init__.py"))
    assert scenarios_dir() == site / "scenarios"
    assert default_scenario_path() == site / "scenarios" / "chronic_pain_us.yaml"


def test_package_data_ships_every_scenario_file_and_nothing_generated():
    """pyproject.toml's package-data patterns cover every file in scenarios/, so the wheel has
    them all; fit figures and summaries live in docs/, not in the package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["vbhc_model.scenarios"]
    matched = {p.relative_to(SCENARIOS) for pattern in patterns for p in SCENARIOS.glob(pattern)}
    assert shipped_files() <= matched, shipped_files() - matched
    assert not [p for p in shipped_files()
                if p.name.endswith("_summary.csv") or "figures" in str(p)]
    for fit in (SCENARIOS / "fits").glob("*.yaml"):
        assert (ROOT / "docs" / "fits" / fit.stem / "summary.csv").exists(), fit.name
