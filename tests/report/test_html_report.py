"""``vbhc report``: one self-contained HTML file and an Excel workbook from a run's results
(issue 15): every figure inline, the tables' numbers those of summary.csv, nothing fetched from
a network, the workbook reading back to summary.csv, and the page rendering in headless
Chromium without console errors."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from vbhc_model.cli import app
from vbhc_model.report.html import CHEERS_ITEMS
from vbhc_model.scenario import default_scenario_path

runner = CliRunner()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A PSA run of the default scenario, its 5-year plan (with draws) beside it, and the
    report of both (``--plan``)."""
    root = tmp_path_factory.mktemp("report")
    out = root / "run"
    result = runner.invoke(app, ["run", "--draws", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plan", "--draws", "200", "--out", str(root / "plan")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(out), "--plan", str(root / "plan")])
    assert result.exit_code == 0, result.output
    return out


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.figures, self.external, self.cells = [], 0, [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.figures += tag == "figure"
        for k, v in attrs:
            if k in ("src", "href") and v and re.match(r"(https?:)?//", v):
                self.external.append(v)
        if tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None


def test_the_report_is_one_self_contained_page_with_every_figure(results):
    page = (results / "report" / "report.html").read_text()
    parser = _Page()
    parser.feed(page)
    svgs = sorted(p.stem for p in (results / "figures").glob("*.svg"))
    assert len(svgs) == 4 and parser.figures == len(svgs) + 1  # and the plan's figure
    assert page.count("<svg") >= len(svgs)
    assert not parser.external  # nothing fetched
    assert "script" not in parser.tags and "link" not in parser.tags
    # the decision table carries summary.csv's numbers, and the lead line names the best
    summary = pd.read_csv(results / "summary.csv")
    for _, row in summary.iterrows():
        assert f"{row['cost']:,.0f}" in parser.cells and f"{row['effect']:.4f}" in parser.cells
    assert "Highest net monetary benefit: Coach-led telehealth CBT at 50,000, 100,000 and " \
           "150,000 USD 2025 per QALY." in page
    # the CHEERS checklist: 28 items, the ones the scenario states filled, the others flagged
    for item in CHEERS_ITEMS:
        assert item in page
    assert "analyst to write" in page and "USD, price year 2025" in page
    assert "Subgroups" in page and "Parameters and their sources" in page
    assert "Value-based price" in page


def test_the_workbook_reads_back_to_summary_csv(results):
    wb = openpyxl.load_workbook(results / "report" / "report.xlsx", read_only=True)
    assert {"summary", "columns", "subgroups", "prices"} <= set(wb.sheetnames)
    rows = list(wb["summary"].iter_rows(values_only=True))
    summary = pd.read_csv(results / "summary.csv")
    assert list(rows[0]) == list(summary.columns)
    for got, (_, want) in zip(rows[1:], summary.iterrows()):
        assert got[0] == want["strategy"]
        assert got[list(summary.columns).index("cost")] == pytest.approx(want["cost"], rel=1e-12)
        assert got[list(summary.columns).index("p_ce_at_50000")] == pytest.approx(
            want["p_ce_at_50000"], rel=1e-12)


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "no outcomes.nc here; give a folder written by 'vbhc run'" in result.output
    assert not (tmp_path / "report").exists()


def test_an_existing_report_is_not_overwritten_without_force(results):
    result = runner.invoke(app, ["report", str(results)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert runner.invoke(app, ["report", str(results), "--force", "--plan",
                               str(results.parent / "plan")]).exit_code == 0


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs "
                                             "Debian's package)")
def test_the_report_renders_in_headless_chromium_without_console_errors(results):
    page = results / "report" / "report.html"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("<figure") == 5 and "CHEERS 2022 checklist" in done.stdout
    for fig in ("ce_plane", "ceac", "evpi", "expected_loss", "plan"):
        assert f'<figure id="fig-{fig}">' in done.stdout
    assert "Service plan" in done.stdout
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console


def test_a_run_with_its_trace_gets_the_markov_trace_figure(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", "--trace", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    page = (out / "report" / "report.html").read_text()
    assert '<figure id="fig-trace">' in page and "Markov trace" in page
    assert "High-impact chronic pain" in page  # the states' labels in its legend


def test_the_plan_is_in_the_page_with_plan_nc_numbers(results):
    import xarray as xr

    from vbhc_model.report.frames import unstack_stats

    page = (results / "report" / "report.html").read_text()
    plan = unstack_stats(xr.load_dataset(results.parent / "plan" / "plan.nc"))
    assert '<section id="plan"><h2>Service plan</h2>' in page
    # the lead line: the budget impact over the plan is the sum of the years' increments
    impact = float(plan["total_budget_increment_mean"].sum())
    gained = float(plan["qalys_increment_mean"].sum())
    assert (f"Over 5 years the new mix costs {float(f'{abs(impact):.3g}'):,.0f} USD 2025 "
            f"{'more' if impact > 0 else 'less'} than the current mix and gains "
            f"{gained:,.1f} QALYs") in page
    parser = _Page()
    parser.feed(page)
    # year 1's FTE needed (with its interval) and available, by the role's label
    need = [float(plan[f"fte_needed_health_coach_{b}"].sel(mix="new", calendar_year=1))
            for b in ("mean", "low", "high")]
    assert f"{need[0]:,.1f} ({need[1]:,.1f} to {need[2]:,.1f})" in parser.cells
    assert "Health coach" in parser.cells and "health_coach" not in page.split(
        '<section id="plan">')[1].split("</section>")[0]
    for text in ("Budget by calendar year", "by cost category", "Programme",
                 "mean wait (weeks)", "QALYs lost waiting", "Alternative: paintrainer instead",
                 "The quadruple aim: the new mix over the plan", "clinician",
                 "PMPM, new mix", "responding, new mix", "completion (completers / starters)",
                 "people responding in year 5 (mean over the year)"):
        assert text in page, text


def test_the_workbook_has_the_plan_tables_with_plan_nc_numbers(results):
    import xarray as xr

    from vbhc_model.report.frames import unstack_stats

    wb = openpyxl.load_workbook(results / "report" / "report.xlsx", read_only=True)
    assert {"plan_budget", "plan_categories", "plan_clinicians", "plan_patients",
            "plan_mixes", "plan_dashboard"} <= set(wb.sheetnames)
    plan = unstack_stats(xr.load_dataset(results.parent / "plan" / "plan.nc"))
    rows = list(wb["plan_budget"].iter_rows(values_only=True))
    col = {name: i for i, name in enumerate(rows[0])}
    for row in rows[1:]:
        y = row[col["calendar_year"]]
        assert row[col["budget_new"]] == pytest.approx(
            float(plan["total_budget_mean"].sel(mix="new", calendar_year=y)), rel=1e-12)
        assert row[col["increment"]] == pytest.approx(
            row[col["budget_new"]] - row[col["budget_current"]], rel=1e-9, abs=1e-6)
    # the categories inside the budget add up to the budget, year by year
    cats = pd.DataFrame(list(wb["plan_categories"].iter_rows(values_only=True))[1:],
                        columns=next(wb["plan_categories"].iter_rows(values_only=True)))
    inside = cats[cats["in_budget"]].groupby("calendar_year")["new"].sum()
    for row in rows[1:]:
        assert inside[row[col["calendar_year"]]] == pytest.approx(row[col["budget_new"]],
                                                                 rel=1e-9)
    board = list(wb["plan_dashboard"].iter_rows(values_only=True))
    assert board[0][:3] == ("aim", "measure", "value")
    assert any(r[1] == "Health coach: peak FTE needed / available" for r in board)


def test_a_plan_in_the_results_folder_is_reported_without_an_option(results, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(results, folder, ignore=shutil.ignore_patterns("report"))
    shutil.copy(results.parent / "plan" / "plan.nc", folder / "plan.nc")
    assert runner.invoke(app, ["report", str(folder)]).exit_code == 0
    assert '<section id="plan">' in (folder / "report" / "report.html").read_text()


def test_a_plan_folder_without_a_plan_or_of_another_scenario_is_a_clear_error(results,
                                                                             tmp_path):
    result = runner.invoke(app, ["report", str(results), "--plan", str(tmp_path), "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "no plan.nc here; give --plan a folder written by 'vbhc plan'" in result.output
    other = tmp_path / "other"
    fits = default_scenario_path().parent / "fits"
    scenario = tmp_path / "s.yaml"  # another file: the default scenario, a plan of 4 coaches
    scenario.write_text(default_scenario_path().read_text().replace(
        "fte_available: 2 ", "fte_available: 4 ").replace("file: fits/", f"file: {fits}/"))
    assert runner.invoke(app, ["plan", str(scenario), "--out", str(other)]).exit_code == 0
    result = runner.invoke(app, ["report", str(results), "--plan", str(other), "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2 and "plan and run the same scenario file" in result.output
    assert not (tmp_path / "r").exists()


def test_the_plan_section_reports_patients_who_gave_up_waiting_and_caseload_per_fte():
    """The half_a_coach variant's plan (a drop-out while waiting, an ASSUMPTION): the page's
    clinicians table and the workbook's plan_clinicians sheet carry plan.nc's numbers of the
    patients who gave up and the caseload per FTE."""
    import numpy as np

    from vbhc_model.pipeline.plan import plan
    from vbhc_model.report.frames import plan_summary, stack_stats, unstack_stats
    from vbhc_model.report.plan_page import plan_section, plan_tables
    from vbhc_model.scenario import load_scenario

    sc = load_scenario(default_scenario_path()).with_variant("half_a_coach")
    summary = unstack_stats(stack_stats(plan_summary(plan(sc).totals)))
    clin = plan_tables(summary, sc)["plan_clinicians"][1]
    want = summary["queue_dropped_out_health_coach_mean"].values
    assert (want > 0).all()
    np.testing.assert_allclose(clin["dropped_out"].values, want, rtol=1e-12)
    np.testing.assert_allclose(clin["caseload_per_fte"].values,
                               summary["queue_caseload_per_fte_health_coach_mean"].values,
                               rtol=1e-12)
    page = plan_section(summary, sc)
    assert "patients who gave up waiting (usual care instead)" in page
    assert "patients in the programme at a time per FTE" in page
    assert f"{want[0]:,.0f}" in page
