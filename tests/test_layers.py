"""The import contract: layers point one way, leaves stay leaves, no circles.

Every import in the package counts, also those inside functions (a lazy import is still a
dependency). The layers, lowest first, and the rules are in docs/architecture.md.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vbhc_model"

#: Rank of each part of the package: a module may import its own part and lower ranks only.
RANKS = {
    "dims": 0, "errors": 0, "defaults": 0, "suggest": 0, "provenance": 0, "threads": 0,
    "allocator": 0, "lazy_dask": 0, "distributions": 0, "readers": 0, "__init__": 0,
    "scenario": 1,
    "parameters": 2,
    "engines": 3, "analysis": 3,
    "model": 4,
    "results": 5,
    "report": 6,
    "fitting": 7,
    "pipeline": 8,
    "api": 9,
    "cli": 10,
}
#: Leaves: what each may import from the package besides itself.
LEAVES = {
    "engines": set(),
    "analysis": {"dims", "errors", "defaults", "threads"},
}
#: Third-party packages the engines may use.
ENGINE_LIBRARIES = {"numpy", "__future__", "collections", "dataclasses", "typing"}
#: The one exception: the microsimulation's compiled kernels live in a module of their own that
#: may import numba (and llvmlite, for a 128-bit multiply), and only engines/microsim.py imports
#: that module, inside a function, so that nothing else (a cohort run, ``import vbhc_model``)
#: pays numba's import or a compile.
KERNEL_MODULE = "vbhc_model.engines.microsim_kernel"
KERNEL_LIBRARIES = {"numba", "llvmlite"}


def part(module: str) -> str:
    """``vbhc_model.pipeline.psa`` -> ``pipeline``; ``vbhc_model`` -> ``__init__``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (``from a import b`` counts ``a.b`` when
    ``a.b`` is a module of the package, else ``a``)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                names.add(sub if sub in MODULES else node.module)
    return names


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in imports(path) if m in MODULES and m != name}
         for name, path in MODULES.items()}


def test_no_circles():
    # A package's __init__ importing its own modules is not a circle of concepts; leave those
    # edges out.
    graph = {name: {m for m in deps if not (MODULES[name].name == "__init__.py"
                                            and m.startswith(name + "."))}
             for name, deps in GRAPH.items()}
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the circle


def test_every_part_has_a_rank():
    assert {part(m) for m in MODULES} <= set(RANKS), {part(m) for m in MODULES} - set(RANKS)


def test_layers_point_one_way():
    wrong = [f"{name} -> {dep}" for name, deps in GRAPH.items() for dep in deps
             if part(dep) != part(name) and RANKS[part(dep)] > RANKS[part(name)]]
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(wrong))


def test_leaves_import_only_the_foundation():
    wrong = [f"{name} -> {dep}" for name, deps in GRAPH.items() if part(name) in LEAVES
             for dep in deps if part(dep) != part(name) and part(dep) not in LEAVES[part(name)]]
    assert not wrong, "\n".join(sorted(wrong))


def test_engines_import_only_numpy():
    for path in (PACKAGE / "engines").glob("*.py"):
        allowed = ENGINE_LIBRARIES | {"vbhc_model"}
        if module_name(path) == KERNEL_MODULE:
            allowed |= KERNEL_LIBRARIES
        extra = {n for n in imports(path) if n.split(".")[0] not in allowed}
        assert not extra, f"{path.name} imports {extra}"


def test_only_the_microsimulation_imports_its_kernels_and_only_lazily():
    importers = sorted(n for n, deps in GRAPH.items() if KERNEL_MODULE in deps)
    assert importers == ["vbhc_model.engines.microsim"], importers
    tree = ast.parse(MODULES["vbhc_model.engines.microsim"].read_text())
    top = {a.name for node in tree.body if isinstance(node, ast.Import) for a in node.names}
    top |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert KERNEL_MODULE not in top, "import the kernels inside a function, not at the top"


def test_report_never_imports_the_pipeline():
    wrong = [f"{n} -> {d}" for n, deps in GRAPH.items() if part(n) == "report"
             for d in deps if part(d) == "pipeline"]
    assert not wrong, wrong


def test_only_api_cli_and_benchmarks_import_the_pipeline():
    wrong = [f"{n} -> {d}" for n, deps in GRAPH.items()
             if part(n) not in ("pipeline", "api", "cli")
             for d in deps if part(d) == "pipeline"]
    assert not wrong, wrong


def test_only_the_cli_imports_typer():
    for name, path in MODULES.items():
        if part(name) != "cli":
            assert not any(n.startswith("typer") for n in imports(path)), path
