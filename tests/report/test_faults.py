"""Safe writes under faults (issue 11): --force replaces only what vbhc wrote, --out edge cases,
a full disk, kill -9 and Ctrl-C, and ``vbhc run --resume``."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.report.files import (
    MARKER,
    OutputError,
    OutputExistsError,
    add_to_marker,
    foreign_files,
    refuse_existing,
    work_path,
    write_directory,
)

THR = SCENARIOS / "reference" / "thr_dmhee.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _fill(tmp: Path) -> None:
    (tmp / "figures").mkdir()
    (tmp / "figures" / "ceac.png").write_text("png")
    (tmp / "summary.csv").write_text("new")


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


# --force replaces only what vbhc wrote (F1/N1) ---------------------------------------------


@pytest.mark.parametrize("mine", ["figures/thesis.docx", "report/chapter1.docx", "notes.txt"])
def test_force_keeps_a_file_the_marker_does_not_list(tmp_path, mine):
    out = write_directory(tmp_path / "g", _fill)
    (out / mine).parent.mkdir(exist_ok=True)
    (out / mine).write_text("mine")
    with pytest.raises(OutputExistsError, match=f"holds files vbhc did not write \\({mine}\\)"):
        write_directory(out, _fill, force=True)
    assert (out / mine).read_text() == "mine" and (out / "summary.csv").read_text() == "new"


def test_force_keeps_a_users_own_summary_in_a_folder_without_marker(tmp_path):
    g = tmp_path / "g"
    (g / "figures").mkdir(parents=True)
    (g / "figures" / "thesis.docx").write_text("mine")
    (g / "summary.csv").write_text("mine")
    result = _invoke("run", THR, "--out", g, "--force")
    assert result.exit_code == 2, result.output
    assert "figures/thesis.docx, summary.csv" in result.stderr
    assert (g / "summary.csv").read_text() == "mine"
    assert (g / "figures" / "thesis.docx").read_text() == "mine"


def test_force_replaces_a_result_with_its_report_and_evppi(tmp_path):
    out = write_directory(tmp_path / "r", _fill)
    write_directory(out / "report", lambda t: (t / "report.html").write_text("r"))
    (out / "evppi.nc").write_text("added by vbhc voi")
    add_to_marker(out, ["evppi.nc"])
    assert foreign_files(out) == []
    write_directory(out, _fill, force=True)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "figures", "summary.csv"]
    (out / "report").mkdir()
    (out / "report" / "chapter1.docx").write_text("mine")  # no marker of its own
    assert foreign_files(out) == ["report/chapter1.docx"]


def test_an_empty_folder_may_be_replaced(tmp_path):
    (tmp_path / "e").mkdir()
    write_directory(tmp_path / "e", _fill, force=True)
    assert (tmp_path / "e" / "summary.csv").is_file()


# --out edge cases (F10, F7, N7): exit 2 with a located message, before the model runs --------


@pytest.fixture()
def no_model(monkeypatch):
    """The model must not run: the check comes first."""
    from vbhc_model import api

    def refuse(*args, **kwargs):
        raise AssertionError("the model ran before --out was checked")

    monkeypatch.setattr(api, "run_scenario", refuse)


@pytest.mark.parametrize("case", ["file_parent", "long_name", "long_folder", "proc", "dev_null"])
def test_out_that_cannot_be_written_exits_2_before_the_model(tmp_path, no_model, case):
    (tmp_path / "afile").write_text("x")
    out = {"file_parent": tmp_path / "afile" / "sub", "long_name": tmp_path / ("a" * 300),
           "long_folder": tmp_path / ("a" * 300) / "b", "proc": Path("/proc/x"),
           "dev_null": Path("/dev/null/x")}[case]
    if case == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc")
    result = _invoke("run", THR, "--out", out, "--force")
    assert result.exit_code == 2, result.output
    message = result.stderr
    assert "internal error" not in message
    assert {"file_parent": "afile is a file, not a folder", "long_name": "300 characters long",
            "long_folder": "300 characters long", "proc": "cannot write in /proc",
            "dev_null": "/dev/null is a file, not a folder"}[case] in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_dot_from_an_empty_folder_is_refused_before_the_model(tmp_path, monkeypatch,
                                                                  no_model):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    for args in (["--out", "."], ["--out", ".", "--force"], ["--out", "..", "--force"]):
        result = _invoke("run", THR, *args)
        assert result.exit_code == 2, result.output
        assert "is the folder you are in" in result.stderr
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_an_unwritable_folder_is_refused_before_the_model(tmp_path, monkeypatch, no_model):
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    result = _invoke("run", THR, "--out", tmp_path / "r")
    assert result.exit_code == 2, result.output
    assert f"cannot write in {tmp_path} (read-only file system)" in result.stderr


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")


def test_a_read_only_file_system_is_refused(tmp_path, no_model):
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "ro,size=1m")
    try:
        result = _invoke("run", THR, "--out", ro / "r")
        assert result.exit_code == 2, result.output
        assert "(read-only file system)" in result.stderr
    finally:
        subprocess.run(["umount", str(ro)])


# A full disk (F7) --------------------------------------------------------------------------


def test_no_space_left_exits_2_and_leaves_nothing(tmp_path, monkeypatch):
    def full(self, path=None, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "r1"
    result = _invoke("run", THR, "--draws", "40", "--chunk-size", "20", "--out", out)
    assert result.exit_code == 2, result.output
    assert f"no space left on device: {out}; nothing was written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.slow
def test_a_real_full_disk_exits_2_without_a_crash(tmp_path):
    full = tmp_path / "full"
    _mount_tmpfs(full, "size=1500k")
    try:
        done = subprocess.run([sys.executable, "-m", "vbhc_model.cli", "run", "--draws", "1000",
                               "--out", str(full / "r1")], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        assert done.returncode == 2, done.stderr  # was 139, a segmentation fault
        assert f"no space left on device: {full / 'r1'}; nothing was written" in done.stderr
        assert list(full.iterdir()) == []
    finally:
        subprocess.run(["umount", str(full)])


# Concurrent writers and interrupted replacements ------------------------------------------


def test_a_folder_another_command_is_writing_is_refused(tmp_path):
    out = tmp_path / "r"
    work = work_path(out)
    work.mkdir()
    fd = os.open(work / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another command holds it
    try:
        with pytest.raises(OutputError, match="another vbhc command is writing it"):
            write_directory(out, _fill)
    finally:
        os.close(fd)
    write_directory(out, _fill)  # once it is gone, the work folder is cleaned and removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_result_a_killed_command_was_replacing_is_put_back(tmp_path):
    out = write_directory(tmp_path / "r", _fill)
    work = work_path(out)
    work.mkdir()
    os.replace(out, work / "old")  # killed between moving the old result aside and the new in
    (work / "result").mkdir()
    with pytest.raises(OutputExistsError, match="already exists"):
        write_directory(out, _fill)
    assert (out / "summary.csv").read_text() == "new" and not work.exists()


def test_results_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        out = write_directory(tmp_path / "r", _fill)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o755  # mkdtemp gave 0700


# kill -9, Ctrl-C and --resume (F6, N8) ------------------------------------------------------


def _start(out: Path, tmp: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vbhc_model.cli", "run", "--draws", "8000", "--chunk-size", "500",
         "--out", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)})


def _wait_for_parts(out: Path, proc: subprocess.Popen, n: int = 2) -> None:
    psa = work_path(out) / "psa"
    for _ in range(1200):
        if len(list(psa.glob("part_*.nc"))) >= n or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: /proc and prctl")
def test_kill_9_leaves_no_helper_and_only_the_work_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "r"
    proc = _start(out, tmp)
    _wait_for_parts(out, proc)
    helpers = _children(proc.pid)
    assert helpers, "the figure helper was not started"
    proc.kill()
    proc.wait()
    for _ in range(100):
        if not any(Path(f"/proc/{h}").exists() and "zombie" not in _status(h) for h in helpers):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the figure helper outlived its run: {helpers}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.vbhc-work", "tmp"]
    assert list(tmp.iterdir()) == []  # nothing in $TMPDIR
    result = _invoke("run", THR, "--out", out)  # a later run into the same folder cleans it
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "tmp"]


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_keeps_the_chunks_for_resume(tmp_path):
    out = tmp_path / "r"
    proc = _start(out, tmp_path)
    _wait_for_parts(out, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert lines and lines[0].startswith(f"interrupted: nothing was written to {out}; vbhc run "
                                         "--resume continues from the"), err
    assert "Traceback" not in err
    assert not out.exists() and (work_path(out) / "psa").is_dir()


def _psa(folder: Path) -> xr.Dataset:
    with xr.open_dataset(folder / "psa.nc", engine="h5netcdf") as ds:
        return ds.load()


def _assert_identical_variables(a: xr.Dataset, b: xr.Dataset) -> None:
    assert sorted(a.variables) == sorted(b.variables)
    for name in a.variables:
        assert a[name].dims == b[name].dims and a[name].dtype == b[name].dtype, name
        assert a[name].values.tobytes() == b[name].values.tobytes(), name


def test_resume_continues_an_interrupted_psa_bit_for_bit(tmp_path, monkeypatch):
    from vbhc_model.pipeline import psa as psa_module

    args = ["run", THR, "--draws", "800", "--chunk-size", "200"]
    whole = _invoke(*args, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output

    real, calls = psa_module.simulate_chunk, []

    def interrupted(*a, **k):  # Ctrl-C after two chunks
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(a[1])
        return real(*a, **k)

    out = tmp_path / "r"
    monkeypatch.setattr(psa_module, "simulate_chunk", interrupted)
    first = _invoke(*args, "--out", out)
    assert first.exit_code == 130, first.output
    assert "interrupted: nothing was written" in first.stderr and "2 finished chunks" in first.stderr
    assert not out.exists()
    assert len(list((work_path(out) / "psa").glob("part_*.nc"))) == 2

    other = _invoke(*args, "--seed", "7", "--out", out, "--resume")  # other settings: refused
    assert other.exit_code == 2, other.output
    assert "was made with seed" in other.stderr and "--resume" in other.stderr
    assert len(list((work_path(out) / "psa").glob("part_*.nc"))) == 2  # and kept

    calls.clear()
    monkeypatch.setattr(psa_module, "simulate_chunk", lambda *a, **k: calls.append(a[1]) or
                        real(*a, **k))
    resumed = _invoke(*args, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert calls == [400, 600]  # only the chunks that were missing
    _assert_identical_variables(_psa(tmp_path / "whole"), _psa(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "whole"]


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_psa(tmp_path):
    out, whole = tmp_path / "r", tmp_path / "whole"
    proc = _start(out, tmp_path, "--seed", "3")
    _wait_for_parts(out, proc, 3)
    proc.kill()
    proc.wait()
    assert not out.exists()
    common = ["run", "--draws", "8000", "--chunk-size", "500", "--seed", "3"]
    resumed = _invoke(*common, "--out", out, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert _invoke(*common, "--out", whole).exit_code == 0
    _assert_identical_variables(_psa(whole), _psa(out))


def test_refuse_existing_checks_the_names_first(tmp_path):
    with pytest.raises(OutputError, match="300 characters long"):
        refuse_existing(tmp_path / ("a" * 300), True)


def test_force_never_replaces_a_folder_of_earlier_results(tmp_path):
    """A folder holding earlier results (each with its own marker), but no marker of its own,
    is the user's: --force refuses it and the results stay (review of issue 11's change)."""
    from typer.testing import CliRunner

    from vbhc_model.cli import app

    runner = CliRunner()
    thr = str(Path(__file__).resolve().parents[2] / "scenarios" / "reference" / "thr_dmhee.yaml")
    for name in ("a", "b"):
        assert runner.invoke(app, ["run", thr, "--out", str(tmp_path / "results" / name)]
                             ).exit_code == 0
    res = runner.invoke(app, ["run", thr, "--out", str(tmp_path / "results"), "--force"])
    assert res.exit_code == 2, res.output
    assert (tmp_path / "results" / "a" / "summary.csv").is_file()
    assert (tmp_path / "results" / "b" / "summary.csv").is_file()


def test_a_full_disk_mid_psa_keeps_the_finished_chunks_for_resume(tmp_path, monkeypatch):
    """Review of issue 11's change: no space left after some chunks of a PSA keeps those
    chunks (the work folder), says so, and --resume then gives the uninterrupted psa.nc."""
    from vbhc_model.pipeline import psa as psa_module

    real = psa_module.run_psa
    calls = {"n": 0}

    def failing_progress(done, total):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")

    def run_psa(*args, progress=None, **kwargs):
        return real(*args, progress=failing_progress, **kwargs)

    out = tmp_path / "r1"
    monkeypatch.setattr(psa_module, "run_psa", run_psa)
    import vbhc_model.pipeline.run as run_module
    monkeypatch.setattr(run_module, "run_psa", run_psa)
    result = _invoke("run", THR, "--draws", "80", "--chunk-size", "20", "--out", out)
    assert result.exit_code == 2, result.output
    assert "no space left on device" in result.stderr and "--resume" in result.stderr
    parts = list((tmp_path / "r1.vbhc-work" / "psa").glob("part_*"))
    assert len(parts) >= 2
    monkeypatch.setattr(psa_module, "run_psa", real)
    monkeypatch.setattr(run_module, "run_psa", real)
    assert _invoke("run", THR, "--draws", "80", "--chunk-size", "20", "--out", out,
                   "--resume").exit_code == 0
    whole = tmp_path / "whole"
    assert _invoke("run", THR, "--draws", "80", "--chunk-size", "20", "--out", whole
                   ).exit_code == 0
    a, b = xr.load_dataset(out / "psa.nc"), xr.load_dataset(whole / "psa.nc")
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_resume_is_refused_when_a_file_the_scenario_reads_has_changed(tmp_path):
    """Review of issue 11's change: part files made with another posterior (a refit) are not
    mixed into the resumed PSA."""
    import json

    from vbhc_model.pipeline.psa import _check_record, _record
    from vbhc_model.scenario import load_scenario

    folder = tmp_path / "sc"
    folder.mkdir()
    (folder / "fits").mkdir()
    src = SCENARIOS / "pain_course_au.yaml"
    (folder / "pc.yaml").write_text(src.read_text())
    (folder / "fits" / "pain_course.nc").write_bytes((SCENARIOS / "fits" / "pain_course.nc")
                                                     .read_bytes())
    sc = load_scenario(folder / "pc.yaml")
    before = json.loads(json.dumps(_record(sc, 400, 1, "mc", 100, None)))
    with open(folder / "fits" / "pain_course.nc", "ab") as f:
        f.write(b"\0")  # another file now
    after = _record(sc, 400, 1, "mc", 100, None)
    with pytest.raises(Exception, match="pain_course.nc has changed"):
        _check_record(before, after, tmp_path / "out.vbhc-work" / "psa")
