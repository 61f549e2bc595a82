"""Results are written atomically, and --force replaces only what vbhc wrote (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.report.files import MARKER, OutputExistsError, refuse_existing, write_directory

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"


def _fill(tmp: Path) -> None:
    (tmp / "outcomes.nc").write_text("new")


def test_a_written_folder_carries_the_marker_and_force_replaces_it(tmp_path):
    out = write_directory(tmp_path / "r", _fill)
    assert (out / MARKER).is_file() and "outcomes.nc" in (out / MARKER).read_text()
    (out / "outcomes.nc").write_text("old")
    write_directory(out, _fill, force=True)
    assert (out / "outcomes.nc").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary left


def test_force_never_deletes_a_users_files(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    result = CliRunner().invoke(app, ["run", str(THR), "--out", str(d), "--force"])
    assert result.exit_code == 2, result.output
    assert "holds files vbhc did not write (keep.txt)" in result.stderr
    assert (d / "keep.txt").read_text() == "x" and [p.name for p in d.iterdir()] == ["keep.txt"]


def test_force_onto_a_parent_of_the_scenario_is_refused(tmp_path, monkeypatch):
    inner = tmp_path / "P" / "inner"
    inner.mkdir(parents=True)
    scenario = inner / "base.yaml"
    scenario.write_text(THR.read_text())
    monkeypatch.chdir(inner)
    result = CliRunner().invoke(app, ["run", "base.yaml", "--out", "../../P", "--force"])
    assert result.exit_code == 2, result.output
    assert scenario.read_text() == THR.read_text()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_force_onto_a_file_or_a_link_is_refused_and_leaves_nothing(tmp_path, kind):
    target = tmp_path / "t"
    if kind == "file":
        target.write_text("mine")
    else:
        (tmp_path / "real").mkdir()
        os.symlink(tmp_path / "real", target)
    with pytest.raises(OutputExistsError, match="file, not a results folder|symbolic link"):
        refuse_existing(target, True)
    result = CliRunner().invoke(app, ["run", str(THR), "--out", str(target), "--force"])
    assert result.exit_code == 2, result.output
    assert not list(tmp_path.glob(".t.*"))  # no half-written temporary, no .t.old


def test_force_refuses_a_folder_without_the_marker_even_with_vbhc_names(tmp_path):
    # A folder of vbhc's names but no marker may be a user's own summary.csv (issue 11, F1):
    # without the list of the files vbhc wrote, --force replaces nothing.
    legacy = tmp_path / "old"
    (legacy / "figures").mkdir(parents=True)
    (legacy / "outcomes.nc").write_text("old")
    (legacy / "summary.csv").write_text("old")
    with pytest.raises(OutputExistsError, match=r"\(outcomes.nc, summary.csv\) \(it has no "
                                                r"readable \.vbhc_result"):
        refuse_existing(legacy, True)
    result = CliRunner().invoke(app, ["run", str(THR), "--out", str(legacy), "--force"])
    assert result.exit_code == 2, result.output
    assert (legacy / "summary.csv").read_text() == "old" and not (legacy / MARKER).exists()


def test_force_replaces_a_named_posterior_file_but_not_a_folder_of_that_name(tmp_path):
    (tmp_path / "p.nc").write_text("old")
    refuse_existing(tmp_path / "p.nc", True)
    (tmp_path / "q.nc").mkdir()
    with pytest.raises(OutputExistsError, match="is not a file"):
        refuse_existing(tmp_path / "q.nc", True)


def test_the_written_line_leaves_out_the_marker(tmp_path):
    result = CliRunner().invoke(app, ["run", str(THR), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "wrote outcomes.nc, summary.csv, summary_columns.csv in" in result.output


def test_a_run_that_finds_its_folder_written_meanwhile_is_refused(tmp_path):
    out = tmp_path / "r"

    def slow(tmp: Path) -> None:  # another run writes ``out`` while this one computes
        _fill(tmp)
        (out / "figures").mkdir(parents=True)
        (out / "outcomes.nc").write_text("theirs")

    with pytest.raises(OutputExistsError, match="already exists"):
        write_directory(out, slow)
    assert (out / "outcomes.nc").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # our temporary is gone


def test_summary_columns_describe_every_column_with_units(tmp_path):
    import pandas as pd

    result = CliRunner().invoke(app, ["run", str(THR), "--draws", "50", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    columns = pd.read_csv(tmp_path / "o" / "summary_columns.csv", keep_default_na=False)
    assert list(columns["column"]) == list(summary.columns)
    assert (columns["description"] != "").all()
    units = dict(zip(columns["column"], columns["units"]))
    assert units["icer"] == "GBP per QALY" and units["cost"] == "GBP"
