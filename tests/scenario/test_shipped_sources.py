"""House rule, for every shipped scenario: each parameter cites its source, and a constant
that says ASSUMPTION carries a distribution or a range (or a posterior, samples, or says why
it is fixed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbhc_model.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(p for p in SCENARIOS.rglob("*.yaml")
               if not {"fits", "calibration"} & set(p.relative_to(SCENARIOS).parts))


def test_the_shipped_scenarios_are_found():
    names = {p.relative_to(SCENARIOS).as_posix() for p in FILES}
    assert {"chronic_pain_us.yaml", "pain_course_au.yaml", "reference/thr_dmhee.yaml",
            "validation/herman2019_rand.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_every_number_cites_a_source_and_every_assumption_is_uncertain(path):
    sc = load_scenario(path)
    for name, p in sc.parameters.items():
        assert (p.source or "").strip(), f"{name}: no source"
        if "ASSUMPTION" in p.source and p.value.is_constant:
            assert (p.distribution is not None or p.range is not None or p.fixed
                    or p.posterior is not None or p.samples is not None), \
                f"{name}: an ASSUMPTION without a distribution or a range"
