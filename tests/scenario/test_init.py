"""Issue 11 (FH3): scenarios that travel. ``vbhc init`` copies a shipped scenario with the files
it uses; ``package:NAME`` names a shipped file wherever the scenario is; a scenario copied alone
says what to do."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.readers.posterior import package_file, resolve
from vbhc_model.scenario import load_scenario

runner = CliRunner()


def test_init_copies_a_shipped_scenario_with_its_files_and_the_copy_runs(tmp_path,
                                                                          monkeypatch):
    folder = tmp_path / "work" / "ours"
    res = runner.invoke(app, ["init", "ours", "--from", "pain_course_au", "--dir", str(folder)])
    assert res.exit_code == 0, res.output
    assert (folder / "ours.yaml").read_bytes() == (SCENARIOS / "pain_course_au.yaml").read_bytes()
    for rel in ("fits/pain_course.nc", "fits/pain_course.yaml"):  # the posterior and its fit
        assert (folder / rel).read_bytes() == (SCENARIOS / rel).read_bytes()
    assert "fits/pain_course.nc" in res.output and f"vbhc run {folder / 'ours.yaml'}" in res.output
    ok = runner.invoke(app, ["validate", str(folder / "ours.yaml"), "--draws", "50"])
    assert ok.exit_code == 0, ok.output
    run = runner.invoke(app, ["run", str(folder / "ours.yaml"), "--draws", "50",
                              "--out", str(tmp_path / "r")])
    assert run.exit_code == 0, run.output
    # the default scenario, into ./NAME/ by default: all four posteriors and their fit files
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init", "cp"])
    assert res.exit_code == 0, res.output
    copied = sorted(p.relative_to(tmp_path / "cp").as_posix()
                    for p in (tmp_path / "cp").rglob("*") if p.is_file())
    assert copied == ["cp.yaml", "fits/ipp_engagement.nc", "fits/ipp_engagement.yaml",
                      "fits/ipp_opioids.nc", "fits/ipp_opioids.yaml", "fits/ipp_utilisation.nc",
                      "fits/ipp_utilisation.yaml", "fits/resolve.nc", "fits/resolve.yaml"]
    assert load_scenario(tmp_path / "cp" / "cp.yaml").name == "cp"


@pytest.mark.parametrize("args, message", [
    (["init", "a b"], "'a b': a scenario name is letters, digits"),
    (["init", "x", "--from", "nope"], "--from nope: no such scenario file, nor a shipped "
                                      "scenario of that name (shipped: chronic_pain_us"),
])
def test_init_refuses_bad_names_and_sources(tmp_path, args, message):
    res = runner.invoke(app, [*args, "--dir", str(tmp_path / "d")])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "d").exists()


def test_init_never_writes_into_a_folder_that_holds_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("mine")
    res = runner.invoke(app, ["init", "x", "--dir", str(tmp_path / "d")])
    assert res.exit_code == 2 and "already exists and is not an empty folder" in res.output
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["mine.txt"]
    (tmp_path / "e").mkdir()  # an empty folder is fine
    assert runner.invoke(app, ["init", "x", "--from", "reference/thr_dmhee", "--dir",
                               str(tmp_path / "e")]).exit_code == 0
    assert [p.name for p in (tmp_path / "e").iterdir()] == ["x.yaml"]  # THR names no files


def test_a_scenario_copied_alone_says_what_to_do_and_package_paths_travel(tmp_path):
    shutil.copy(SCENARIOS / "pain_course_au.yaml", tmp_path / "pain_course_au.yaml")
    res = runner.invoke(app, ["validate", str(tmp_path / "pain_course_au.yaml")])
    assert res.exit_code == 2
    assert "posterior file 'fits/pain_course.nc' not found" in res.output
    assert "'vbhc init NAME --from pain_course_au'" in res.output
    assert "write 'file: package:fits/pain_course.nc'" in res.output
    assert f"--out {tmp_path / 'fits' / 'pain_course.nc'}" in res.output
    assert "run 'vbhc fit' on its fit file first" not in res.output  # the old, wrong advice
    # package: finds the shipped file wherever the scenario is
    text = (tmp_path / "pain_course_au.yaml").read_text()
    (tmp_path / "moved.yaml").write_text(text.replace("file: fits/", "file: package:fits/"))
    res = runner.invoke(app, ["validate", str(tmp_path / "moved.yaml")])
    assert res.exit_code == 0, res.output
    assert resolve("package:fits/resolve.nc", str(tmp_path / "x.yaml")) == \
        SCENARIOS / "fits" / "resolve.nc" == package_file("fits/resolve.nc")
    (tmp_path / "gone.yaml").write_text(text.replace("file: fits/", "file: package:fits/no_"))
    res = runner.invoke(app, ["validate", str(tmp_path / "gone.yaml")])
    assert res.exit_code == 2 and "package: names a file shipped with vbhc_model" in res.output
