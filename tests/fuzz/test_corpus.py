"""The pinned fuzz corpus (tests/data/fuzz_corpus/cases.yaml): each case that once crashed,
hung or was read wrongly gives its expected exit code, with no traceback, in bounded time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.fuzz.targets import TIMEOUT, invoke

CORPUS = Path(__file__).resolve().parents[1] / "data" / "fuzz_corpus"
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())


def _params() -> list:
    return [pytest.param(case, id=Path(case["file"]).stem) for case in CASES]


def test_every_corpus_file_is_a_case():
    listed = {c["file"] for c in CASES}
    main = {p.name for p in CORPUS.iterdir() if p.name != "cases.yaml"}
    support = {p.name for p in CORPUS.glob("*.csv")} - listed  # tables a case's scenario reads
    assert main - support == listed


@pytest.mark.parametrize("case", _params())
def test_corpus_case(case, tmp_path):
    path, timeout = CORPUS / case["file"], case.get("timeout", TIMEOUT)
    out = str(tmp_path / "out")
    if case["command"] == "analyse":
        outcomes = [invoke("corpus", ["analyse", str(path), "--wtp", "20000", "--out", out],
                           timeout)]
    else:
        draws = ["--draws", "50"] if case["command"] == "draws" else []
        outcomes = [invoke("corpus", ["validate", str(path), *draws], timeout)]
        if outcomes[0].code == 0:
            outcomes.append(invoke("corpus", ["run", str(path), "--out", out], timeout))
    last = outcomes[-1]
    for o in outcomes:
        assert o.kind in ("ok",), f"{o.kind}, exit {o.code}: {' '.join(o.args)}\n{o.output}"
    assert last.code == case["exit"], f"exit {last.code}: {' '.join(last.args)}\n{last.output}"
    if case["exit"] == 2:
        assert path.name in last.output or str(path) in last.output, last.output
