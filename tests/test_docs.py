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


def test_the_shipped_stepped_care_strategy_is_what_the_chronic_pain_page_says(tmp_path):
    """docs/chronic-pain-model.md: painTRAINER's non-responders (still in hicp at 3 months,
    about 73%) get coach-led CBT, with the later natural improvement and a share of RESOLVE's
    excess response (the step's parameters); without those parameters it gains more."""
    import yaml

    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.simulate import simulate
    from vbhc_model.scenario import default_scenario_path

    assert "## Stepped care and rurality" in (DOCS / "chronic-pain-model.md").read_text()
    scenario = default_scenario_path()
    sc = load_scenario(scenario)
    out = simulate(sc, base_draws(sc)).isel(draw=0)
    hours = out["clinician_hours"].sel(role="health_coach")
    share = float(hours.sel(strategy="stepped_care") / hours.sel(strategy="coach_cbt"))
    assert 0.6 < share < 0.85
    assert abs(float(out["stepped_up"].sel(strategy="stepped_care")) - share) < 0.02
    assert float(out["qalys"].sel(strategy="stepped_care")) > float(
        out["qalys"].sel(strategy="paintrainer"))
    # the optimistic bound: the step's target exactly as coach-led CBT for new patients
    data = yaml.safe_load(scenario.read_text())
    data["strategies"]["stepped_care"]["steps"][0].pop("parameters")
    text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "optimistic.yaml"
    path.write_text(text.replace("file: fits/", f"file: {scenario.parent / 'fits'}/"))
    opt = load_scenario(path)
    bound = simulate(opt, base_draws(opt)).isel(draw=0)
    assert float(bound["qalys"].sel(strategy="stepped_care")) > float(
        out["qalys"].sel(strategy="stepped_care"))
