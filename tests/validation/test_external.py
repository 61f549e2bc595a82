"""External validation: replicas of four published US evaluations of chronic-pain programmes.

Issue 14. Each replica in scenarios/validation/ is run through the public API, and what
docs/validation.md ("The chronic-pain model against published evaluations") prints is checked
here: the replica's incremental QALYs (4 decimals) and costs (whole dollars) over usual care, the 95% intervals of a 500-draw PSA,
the published figure and interval they are compared with, and the verdict (inside the published
95% interval; within +-25% of the published point where no interval is published; outside).
Each row of the docs' tables is found by its label and must hold the replica's value and the
verdict computed here, so the table cannot drift from the code. Norton et al. 2015 has no
replica (only its ratio is published; docs/validation.md says why).

Sources of the published figures: Herman PM et al. Spine 2019;44(20):1456 Tables 2 and 3;
Herman PM et al. Spine 2017;42(20):1511 abstract; Smith DH et al. Med Care 2022;60(6):423
abstract (docs/research/replica-inputs.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import ROOT, SCENARIOS
from vbhc_model.api import load, run_scenario
from vbhc_model.cli import app

REPLICAS = SCENARIOS / "validation"
DOC = ROOT / "docs" / "validation.md"
MINUS = "\u2212"

# (docs label, file, variant, strategy, quantity, replica value as printed,
#  published point, published 95% interval or None)
# quantity: "qalys", "cost" (total cost in the scenario's perspective), a cost category, or
# "icer" (compared when the published figure is a ratio).
CASES = [
    # Herman 2019 (RAND), high-impact chronic pain, payer (Table 3)
    ("RAND HICP, CBT educational programme: incremental QALYs", "herman2019_rand", None, "cbt_education", "qalys", 0.0064, 0.008, (-0.04, 0.05)),
    ("RAND HICP, CBT educational programme: incremental payer cost", "herman2019_rand", None, "cbt_education", "cost", -58, -167, (-1046, 488)),
    ("RAND HICP, multidisciplinary programme: incremental QALYs", "herman2019_rand", None, "multidisciplinary", "qalys", 0.0105, 0.012, (-0.02, 0.05)),
    ("RAND HICP, multidisciplinary programme: incremental payer cost", "herman2019_rand", None, "multidisciplinary", "cost", 37, -86, (-1193, 653)),
    ("RAND HICP, CBT educational programme with coach-led CBT's RR: incremental QALYs", "herman2019_rand", "cbt_as_coach", "cbt_education", "qalys", 0.0123, 0.008, (-0.04, 0.05)),
    ("RAND HICP, CBT educational programme with coach-led CBT's RR: incremental payer cost", "herman2019_rand", "cbt_as_coach", "cbt_education", "cost", -184, -167, (-1046, 488)),
    # Herman 2019, societal columns of Table 3
    ("RAND HICP, CBT educational programme: incremental societal cost", "herman2019_rand", "societal", "cbt_education", "cost", -182, -269, (-1731, 1434)),
    ("RAND HICP, CBT educational programme: other healthcare (societal)", "herman2019_rand", "societal", "cbt_education", "back_care+back_care_oop", -157, -257, None),
    ("RAND HICP, CBT educational programme: productivity", "herman2019_rand", "societal", "cbt_education", "productivity", -102, -89, None),
    ("RAND HICP, multidisciplinary programme: incremental societal cost", "herman2019_rand", "societal", "multidisciplinary", "cost", -166, -245, (-1760, 1237)),
    ("RAND HICP, multidisciplinary programme: other healthcare (societal)", "herman2019_rand", "societal", "multidisciplinary", "back_care+back_care_oop", -258, -360, None),
    ("RAND HICP, multidisciplinary programme: productivity", "herman2019_rand", "societal", "multidisciplinary", "productivity", -168, -145, None),
    # Herman 2019, typical mix, payer (Table 2)
    ("RAND typical mix, CBT educational programme: incremental QALYs", "herman2019_rand", "typical_mix", "cbt_education", "qalys", 0.0025, 0.010, (-0.01, 0.03)),
    ("RAND typical mix, CBT educational programme: incremental payer cost", "herman2019_rand", "typical_mix", "cbt_education", "cost", 23, -197, (-692, 341)),
    ("RAND typical mix, multidisciplinary programme: incremental QALYs", "herman2019_rand", "typical_mix", "multidisciplinary", "qalys", 0.0042, 0.015, (-0.01, 0.04)),
    ("RAND typical mix, multidisciplinary programme: incremental payer cost", "herman2019_rand", "typical_mix", "multidisciplinary", "cost", 171, -172, (-699, 450)),
    # Herman 2017 (abstract)
    ("Herman 2017, group CBT: incremental QALYs", "herman2017_cbt", None, "group_cbt", "qalys", 0.0115, 0.041, (0.015, 0.067)),
    ("Herman 2017, group CBT: incremental payer cost", "herman2017_cbt", None, "group_cbt", "cost", -162, 495, None),
    ("Herman 2017, group CBT, natural course after week 24: incremental QALYs", "herman2017_cbt", "natural_course_after_26w", "group_cbt", "qalys", 0.0101, 0.041, (0.015, 0.067)),
    ("Herman 2017, group CBT, responders reach no pain: incremental QALYs", "herman2017_cbt", "responders_reach_no_pain", "group_cbt", "qalys", 0.0158, 0.041, (0.015, 0.067)),
    ("Herman 2017, group CBT, responders reach no pain: incremental payer cost", "herman2017_cbt", "responders_reach_no_pain", "group_cbt", "cost", -336, 495, None),
    # Smith 2022 (PPACT, abstract)
    ("PPACT: incremental total medical cost", "smith2022_ppact", None, "ppact", "cost", 1950, -1841, None),
    ("PPACT: ICER on pain-related costs, replication cost", "smith2022_ppact", None, "ppact", "icer", 247438, 35000, None),
    ("PPACT: ICER on pain-related costs, as-delivered cost", "smith2022_ppact", "as_delivered", "ppact", "icer", 301868, 53000, None),
    ("PPACT, difference held after week 12: incremental total medical cost", "smith2022_ppact", "no_natural_course_after_12w", "ppact", "cost", 1899, -1841, None),
    ("PPACT, difference held after week 12: ICER on pain-related costs", "smith2022_ppact", "no_natural_course_after_12w", "ppact", "icer", 190623, 35000, None),
]

# Incremental QALYs of PPACT, which Smith 2022 does not publish (printed for the record).
PPACT_QALYS = {None: 0.0079, "no_natural_course_after_12w": 0.0100}


def increments(file: str, variant: str | None, strategy: str) -> dict:
    out = run_scenario(load(REPLICAS / f"{file}.yaml", variant)).outcomes.isel(draw=0)

    def diff(x):
        return float(x.sel(strategy=strategy) - x.sel(strategy="usual_care"))

    inc = {"qalys": diff(out["qalys"]), "cost": diff(out["total_cost"])}
    for category in out["category"].values:
        inc[str(category)] = diff(out["costs"].sel(category=category))
    inc["icer"] = inc["cost"] / inc["qalys"]
    return inc


@pytest.fixture(scope="module")
def results() -> dict:
    keys = {(c[1], c[2], c[3]) for c in CASES}
    return {key: increments(*key) for key in keys}


def value(inc: dict, quantity: str) -> float:
    return sum(inc[q] for q in quantity.split("+"))


def verdict(x: float, point: float, interval) -> str:
    if interval is not None:
        return "inside" if interval[0] <= x <= interval[1] else "outside"
    return "within 25%" if abs(x - point) <= 0.25 * abs(point) else "outside"


def printed(x: float, quantity: str) -> str:
    if quantity == "icer":
        return f"{round(x):,}"
    text = f"{x:+.4f}" if quantity == "qalys" else f"{round(x):+,}"
    return text.replace("-", MINUS)


def doc_row(label: str) -> str:
    rows = [line for line in DOC.read_text().splitlines() if line.startswith(f"| {label} |")]
    assert len(rows) == 1, f"docs/validation.md: {len(rows)} rows labelled {label!r}"
    return rows[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_replica_value_and_verdict_are_what_the_docs_print(results, case):
    label, file, variant, strategy, quantity, expected, point, interval = case
    x = value(results[(file, variant, strategy)], quantity)
    if quantity == "qalys":
        assert round(x, 4) == pytest.approx(expected, abs=1e-12)
    else:
        assert round(x) == expected
    cells = [c.strip() for c in doc_row(label).strip("|").split("|")]
    assert cells[2] == printed(x, quantity), (label, cells)
    assert cells[3].startswith(verdict(x, point, interval)), (label, cells)


def test_the_published_figures_in_the_docs_are_the_ones_compared_with():
    """The published column holds the point and interval this module compares with."""
    for label, *_, quantity, _, point, interval in CASES:
        cell = [c.strip() for c in doc_row(label).strip("|").split("|")][1]
        cell = cell.replace(MINUS, "-").replace("$", "")
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]*\.?\d+", cell)]
        assert numbers[0] == point, (label, cell)
        if interval is not None:
            assert tuple(numbers[1:3]) == interval, (label, cell)


def test_ppact_qalys_printed_for_the_record(results):
    for variant, expected in PPACT_QALYS.items():
        assert round(results[("smith2022_ppact", variant, "ppact")]["qalys"], 4) == expected
    text = " ".join(DOC.read_text().split())
    assert "PPACT replica's incremental QALYs: +0.0079 (+0.0100 with the difference held)" in text


def test_figures_in_the_prose_are_the_replicas(results):
    """Numbers docs/validation.md quotes in its explanations, outside the tables."""
    text = " ".join(DOC.read_text().split())  # prose wraps lines
    rand_mdp = results[("herman2019_rand", None, "multidisciplinary")]
    assert round(rand_mdp["icer"]) == 3578 and "costs $3,578 per QALY" in text
    cbt = results[("herman2017_cbt", None, "group_cbt")]
    assert round(cbt["back_care"]) == -312 and "lower back-related costs (\u2212$312)" in text
    assert round(cbt["cost"]) == -162 and "saves $162 and gains 0.0115 QALY" in text
    assert round(495 - cbt["back_care"]) == 807 and "programme cost of about $807" in text
    ppact = results[("smith2022_ppact", None, "ppact")]
    held = results[("smith2022_ppact", "no_natural_course_after_12w", "ppact")]
    assert (round(-ppact["pain_care"]), round(-held["pain_care"])) == (195, 246)
    assert "offsets $195 ($246 with the difference held)" in text


def test_the_replicas_are_honest_about_their_results():
    """The chronic-pain section replaces 'not built yet' and names each replica and Norton."""
    section = DOC.read_text().split("## The chronic-pain model against published evaluations")[1]
    section = section.split("\n## ")[0]
    assert "not built yet" not in section
    for name in ("herman2019_rand.yaml", "herman2017_cbt.yaml", "smith2022_ppact.yaml",
                 "Norton", "no replica"):
        assert name in section, name


def test_replicas_run_from_the_cli(tmp_path: Path):
    runner = CliRunner()
    files = sorted(REPLICAS.glob("*.yaml"))
    assert [f.stem for f in files] == ["herman2017_cbt", "herman2019_rand", "smith2022_ppact"]
    result = runner.invoke(app, ["validate", *map(str, files)])
    assert result.exit_code == 0, result.output
    for f in files:
        result = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / f.stem)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / f.stem / "summary.csv").exists()


def test_every_assumption_is_uncertain_or_says_why_not():
    """House rule: an ASSUMPTION carries a distribution or a range (or says why it is fixed)."""
    for f in sorted(REPLICAS.glob("*.yaml")):
        sc = load(f)
        for name, p in sc.parameters.items():
            assert p.source.strip(), (f.name, name)
            if "ASSUMPTION" in p.source and p.value.is_constant:
                assert p.distribution or p.range or p.posterior or p.samples or p.fixed, (f.name, name)


# 95% intervals of the increments over usual care in a PSA of 500 draws (the scenario's seed),
# as printed in docs/validation.md: (file, strategy, quantity) -> (low, high).
PSA_DRAWS = 500
PSA_INTERVALS = {
    ("herman2019_rand", "cbt_education", "qalys"): (0.0015, 0.0124),
    ("herman2019_rand", "cbt_education", "cost"): (-203, 48),
    ("herman2019_rand", "multidisciplinary", "qalys"): (0.0023, 0.0217),
    ("herman2019_rand", "multidisciplinary", "cost"): (-232, 215),
    ("herman2017_cbt", "group_cbt", "qalys"): (0.0012, 0.0229),
    ("herman2017_cbt", "group_cbt", "cost"): (-489, 129),
    ("smith2022_ppact", "ppact", "qalys"): (0.0029, 0.0152),
    ("smith2022_ppact", "ppact", "cost"): (1751, 2079),
}


def test_psa_intervals_are_what_the_docs_print():
    text = DOC.read_text()
    psas = {file: run_scenario(load(REPLICAS / f"{file}.yaml"), draws=PSA_DRAWS).psa
            for file in {key[0] for key in PSA_INTERVALS}}
    for (file, strategy, quantity), (low, high) in PSA_INTERVALS.items():
        psa = psas[file]
        var = "qalys" if quantity == "qalys" else "total_cost"
        d = (psa[var].sel(strategy=strategy) - psa[var].sel(strategy="usual_care")).values
        lo, hi = np.percentile(d, [2.5, 97.5])
        digits = 4 if quantity == "qalys" else 0
        assert (round(lo, digits), round(hi, digits)) == (low, high), (file, strategy, quantity)
        cell = f"{printed(lo, quantity)} to {printed(hi, quantity)}"
        assert cell in text, cell
