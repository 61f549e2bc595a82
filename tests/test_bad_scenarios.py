"""Every file in tests/data/bad_scenarios/ is one user mistake with its expected message.

Each file's first line is ``# expect: REGEX`` (optionally a second ``# expect-also: REGEX``).
``vbhc validate`` and ``vbhc run`` must both exit with code 2, print a message naming the file
and matching the regex, show no traceback, and write nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vbhc_model.cli import app

CORPUS = Path(__file__).parent / "data" / "bad_scenarios"
FILES = sorted(CORPUS.glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines()[:3]:
        m = re.match(r"#\s*expect(?:-also)?:\s*(.+)$", line)
        if m:
            found.append(m.group(1).strip())
    return found


def test_corpus_is_large_enough():
    assert len(FILES) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_reports_the_mistake(path: Path):
    patterns = expectations(path)
    assert patterns, f"{path.name} has no '# expect:' line"
    result = CliRunner().invoke(app, ["validate", str(path)])
    output = result.output
    assert result.exit_code == 2, output
    assert path.name in output
    assert "Traceback" not in output and "internal error" not in output
    for pattern in patterns:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_run_refuses_and_writes_nothing(path: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    output = result.output
    assert result.exit_code == 2, output
    assert re.search(expectations(path)[0], output)
    assert not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_run_into_existing_directory_leaves_it_untouched(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "marker.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["run", "--out", str(out)])
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["marker.txt"]
    assert (out / "marker.txt").read_text() == "keep me"
