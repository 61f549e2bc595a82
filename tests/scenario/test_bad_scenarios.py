"""Every file in tests/data/bad_scenarios/ is one user mistake with its expected message.

Each file starts with ``# expect: REGEX`` (optionally followed by ``# expect-also: REGEX``):
regular expressions that the error output must match, naming the key path (and line, where the
file tells it) and the substance of the mistake. ``vbhc validate FILE`` and
``vbhc run FILE --out DIR`` must both exit with code 2, print a message naming the file and
matching every regex, show no traceback and no "internal error", and ``run`` must write nothing.

Files whose message the package does not give yet are listed in :data:`KNOWN_FAILURES` with the
reason; their tests are strict xfails, so a fix makes them fail until the entry is removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vbhc_model.cli import app

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_scenarios"
FILES = sorted(CORPUS.glob("*.yaml"))
GOOD = Path(__file__).resolve().parents[2] / "scenarios" / "reference" / "hiv_chancellor_1997.yaml"
USER_ERROR = 2

#: Mistakes whose message is not (yet) what it should be: file stem -> what goes wrong now.
KNOWN_FAILURES: dict[str, str] = {}


def expectations(path: Path) -> list[str]:
    """The ``# expect:`` and ``# expect-also:`` regexes at the top of ``path``."""
    found = []
    # Bytes decoded leniently: one file is deliberately not UTF-8 (after its first line).
    text = path.read_bytes().decode("utf-8", errors="replace")
    for line in text.splitlines()[:3]:
        m = re.match(r"#\s*expect(?:-also)?:\s*(.+)$", line)
        if m:
            found.append(m.group(1).strip())
    return found


def _params() -> list:
    unknown = set(KNOWN_FAILURES) - {p.stem for p in FILES}
    assert not unknown, f"KNOWN_FAILURES names files that do not exist: {sorted(unknown)}"
    return [
        pytest.param(
            p,
            id=p.stem,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[p.stem])]
            if p.stem in KNOWN_FAILURES
            else [],
        )
        for p in FILES
    ]


def _check_message(path: Path, result) -> None:
    """Exit code 2, a message on stderr naming the file and matching every expectation."""
    patterns = expectations(path)
    assert patterns, f"{path.name} has no '# expect:' line"
    everything = result.output + result.stderr  # output is stdout and stderr interleaved
    assert "Traceback" not in everything
    assert "internal error" not in everything
    assert result.exit_code == USER_ERROR, f"exit code {result.exit_code}:\n{everything}"
    assert path.name in result.stderr, f"{path.name} not named in:\n{result.stderr}"
    for pattern in patterns:
        assert re.search(pattern, result.stderr), f"{pattern!r} not in:\n{result.stderr}"


def test_corpus_is_large_enough():
    assert len(FILES) >= 30


def test_every_file_has_an_expectation_that_compiles():
    for path in FILES:
        patterns = expectations(path)
        assert patterns, f"{path.name} has no '# expect:' line"
        for pattern in patterns:
            re.compile(pattern)


@pytest.mark.parametrize("path", _params())
def test_validate_reports_the_mistake(path: Path):
    result = CliRunner().invoke(app, ["validate", str(path)])
    _check_message(path, result)


@pytest.mark.parametrize("path", _params())
def test_run_refuses_and_writes_nothing(path: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    _check_message(path, result)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial or temporary directory


def test_run_into_existing_directory_leaves_it_untouched(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "marker.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["run", str(GOOD), "--out", str(out)])
    assert result.exit_code == USER_ERROR, result.output
    assert "already exists" in result.stderr
    assert "Traceback" not in result.output
    assert [p.name for p in out.iterdir()] == ["marker.txt"]
    assert (out / "marker.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
