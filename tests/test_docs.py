"""The examples in the documentation run."""

from __future__ import annotations

import re
from pathlib import Path

from vbhc_model.api import run_scenario
from vbhc_model.scenario import load_scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_minimal_scenario_in_the_format_reference_runs(tmp_path):
    text = (DOCS / "scenario-format.md").read_text()
    block = re.search(r"## A minimal complete scenario\n\n```yaml\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "minimal.yaml"
    path.write_text(block)
    result = run_scenario(load_scenario(path))
    assert set(result.table["strategy"].values) == {"standard", "new"}


def test_readme_links_exist():
    readme = (DOCS.parent / "README.md").read_text()
    for target in re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (DOCS.parent / target).exists(), target


def test_fitting_guide_links_exist():
    """docs/fitting.md links the shipped fits' summaries and figures in docs/fits/."""
    text = (DOCS / "fitting.md").read_text()
    targets = re.findall(r"\]\(((?:fits|calibration)/[^)]+)\)", text)
    assert targets
    for target in targets:
        assert (DOCS / target).exists(), target
