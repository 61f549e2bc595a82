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

runner = CliRunner()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    result = runner.invoke(app, ["run", "--draws", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", str(out)])
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
    assert parser.figures == len(svgs) == 4
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
    assert runner.invoke(app, ["report", str(results), "--force"]).exit_code == 0


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
    assert done.stdout.count("<figure") == 4 and "CHEERS 2022 checklist" in done.stdout
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console


def test_a_run_with_its_trace_gets_the_markov_trace_figure(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", "--trace", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    page = (out / "report" / "report.html").read_text()
    assert '<figure id="fig-trace">' in page and "Markov trace" in page
    assert "High-impact chronic pain" in page  # the states' labels in its legend
