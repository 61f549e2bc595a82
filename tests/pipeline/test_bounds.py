"""Bounded work and honest progress (issue 11): sizes that cannot finish are refused before
anything runs, with a message saying what to change; long commands report progress on a
terminal, and nothing on a stderr that is not one."""

from __future__ import annotations

import io
import time

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import ROOT
from vbhc_model import api, cli
from vbhc_model.cli import app
from vbhc_model.errors import ScenarioError
from vbhc_model.pipeline import chunk
from vbhc_model.scenario import load_scenario
from vbhc_model.scenario.schema import MAX_CYCLES

HIV = ROOT / "scenarios" / "reference" / "hiv_chancellor_1997.yaml"
THR = ROOT / "scenarios" / "reference" / "thr_dmhee.yaml"
SMALL = ROOT / "tests" / "data" / "stepped" / "small.yaml"
runner = CliRunner()


def _with_cycles(tmp_path, n: int):
    path = tmp_path / "long.yaml"
    path.write_text(HIV.read_text().replace("n_cycles: 20", f"n_cycles: {n}"))
    return path


def test_too_many_cycles_are_refused_at_once_with_what_to_do(tmp_path):
    t0 = time.perf_counter()
    result = runner.invoke(app, ["validate", str(_with_cycles(tmp_path, 100_000))])
    assert result.exit_code == 2, result.output
    assert "long.yaml, line 22: settings.n_cycles: 100000 cycles is more than the 6,000" \
        in result.output
    assert "use a longer cycle_length" in result.output and "Traceback" not in result.output
    assert time.perf_counter() - t0 < 10
    assert load_scenario(_with_cycles(tmp_path, MAX_CYCLES)).settings.n_cycles == MAX_CYCLES


def test_the_memory_estimate_grows_with_the_chunk_and_the_columns():
    sc = load_scenario(SMALL)
    assert chunk.chunk_bytes(sc, 2000) == 2 * chunk.chunk_bytes(sc, 1000)
    sub = sum(s.tunnel for s in sc.states.values())
    assert chunk.chunk_bytes(sc, 1) == 8 * chunk.columns(sc) * (sub * sub + 2 * sub)
    micro = sc.with_settings(engine="microsim", patients=1000)
    assert chunk.chunk_bytes(micro, 1) == chunk.chunk_bytes(sc, 1) + 8 * chunk.columns(sc) * 1000
    assert chunk.memory_bytes() > 2**20


def test_a_chunk_larger_than_memory_is_refused_before_the_run(tmp_path, monkeypatch):
    need = chunk.chunk_bytes(load_scenario(THR), 1000)
    monkeypatch.setattr(chunk, "memory_bytes", lambda: need // 4)
    out = tmp_path / "r"
    result = runner.invoke(app, ["run", str(THR), "--draws", "1000", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "a chunk of 1,000 draws would hold about" in result.output
    assert "run with --chunk-size 125 (results do not depend on it)" in result.output
    assert not out.exists()
    ok = runner.invoke(app, ["run", str(THR), "--draws", "1000", "--chunk-size", "125",
                             "--out", str(out)])
    assert ok.exit_code == 0, ok.output


def _recorder():
    calls = []
    return calls, lambda done, total: calls.append((done, total))


def _check_progress(calls, total):
    assert calls, "no progress reported"
    assert calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))


def test_compare_reports_draws_over_all_variants(tmp_path):
    doc = yaml.safe_load(SMALL.read_text())
    doc["variants"] = {"cheap": {"parameters": {"c_sick": 500}},
                       "dear": {"parameters": {"c_sick": 2000}}}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    calls, progress = _recorder()
    api.compare_variants(path, draws=40, out=tmp_path / "c", progress=progress)
    _check_progress(calls, 3 * 40)
    calls, progress = _recorder()
    api.compare_variants(path, out=tmp_path / "c0", progress=progress)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_plan_and_voi_report_progress(tmp_path):
    calls, progress = _recorder()
    api.run_plan(None, draws=30, out=tmp_path / "p", progress=progress)
    _check_progress(calls, 30)
    out = tmp_path / "r"
    assert runner.invoke(app, ["run", str(THR), "--draws", "300", "--out", str(out)]).exit_code == 0
    calls, progress = _recorder()
    api.run_voi(out, params="cons,ageC", groups=["lngamma,lnrrNP1"], progress=progress)
    assert calls == [(1, 3), (2, 3), (3, 3)]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_is_drawn_only_on_a_terminal(monkeypatch, tty):
    err = _Tty() if tty else io.StringIO()
    monkeypatch.setattr(cli.sys, "stderr", err)
    with cli._progress(1, "EVPPI") as progress:
        progress(1, 4)
        progress(4, 4)
    text = err.getvalue()
    assert ("EVPPI" in text and "100%" in text) if tty else text == ""


def test_no_stray_progress_line_on_a_stderr_that_is_not_a_terminal(tmp_path):
    result = runner.invoke(app, ["run", str(HIV), "--draws", "20", "--out", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "PSA draws" not in result.output


def test_run_scenario_refuses_too_many_cycles_in_python_too(tmp_path):
    with pytest.raises(ScenarioError, match="more than the 6,000"):
        load_scenario(_with_cycles(tmp_path, MAX_CYCLES + 1))
