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


def test_stepped_care_example_in_the_chronic_pain_page_runs(tmp_path):
    """docs/chronic-pain-model.md's stepped-care strategy, added to the default scenario as the
    page says, runs: the non-responders (still in hicp at 3 months) get coach-led CBT."""
    import numpy as np

    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.simulate import simulate
    from vbhc_model.scenario import default_scenario_path

    page = (DOCS / "chronic-pain-model.md").read_text()
    block = re.search(r"## Stepped care: an example.*?```yaml\n(.*?)```", page, re.S).group(1)
    scenario = default_scenario_path()
    text = scenario.read_text().replace("  paintrainer:\n", "  paintrainer: &paintrainer\n", 1)
    text = text.replace("file: fits/", f"file: {scenario.parent / 'fits'}/")
    text = text.replace("  ipp:\n", block + "\n  ipp:\n", 1)
    path = tmp_path / "stepped.yaml"
    path.write_text(text)
    sc = load_scenario(path)
    out = simulate(sc, base_draws(sc)).isel(draw=0)
    hours = out["clinician_hours"].sel(role="health_coach")
    # the share still in hicp at 3 months under painTRAINER steps up (about 73%)
    share = float(hours.sel(strategy="stepped") / hours.sel(strategy="coach_cbt"))
    assert 0.6 < share < 0.85
    assert float(out["qalys"].sel(strategy="stepped")) > float(
        out["qalys"].sel(strategy="paintrainer"))
    # the other strategies are untouched by the step
    shipped = load_scenario(scenario)
    plain = simulate(shipped, base_draws(shipped)).isel(draw=0)
    for name in shipped.strategies:
        np.testing.assert_array_equal(out["total_cost"].sel(strategy=name),
                                      plain["total_cost"].sel(strategy=name))
