"""Replace a marked section of docs/benchmarks.md with a benchmark's latest figures."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(name: str, heading: str, body: str) -> None:
    """Put ``body`` between ``<!-- name:start -->`` and ``<!-- name:end -->``; add the
    section under ``heading`` at the end of the page if it is not there yet."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text()
    if start not in text:
        text += f"\n## {heading}\n\n{start}\n{end}\n"
    a, b = text.index(start), text.index(end)
    DOC.write_text(text[:a] + start + "\n" + body + "\n" + end + text[b + len(end):])
