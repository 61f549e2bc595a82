"""Layers point one way: the engine imports numpy only; nothing below the CLI imports typer."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vbhc_model"


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engines_import_only_numpy():
    allowed = {"numpy", "__future__", "collections.abc", "dataclasses", "typing"}
    for path in (PACKAGE / "engines").glob("*.py"):
        extra = {n for n in imports(path) if n.split(".")[0] not in {"numpy", "vbhc_model"}}
        extra -= allowed
        inner = {n for n in imports(path) if n.startswith("vbhc_model.") and
                 not n.startswith("vbhc_model.engines")}
        assert not extra and not inner, f"{path.name} imports {extra | inner}"


def test_only_the_cli_imports_typer():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "cli.py":
            assert not any(n.startswith("typer") for n in imports(path)), path
