"""What the fuzzer runs: mutants of shipped files through the command line, in-process.

Each target writes one mutant into a :class:`Workspace` (a copy of the shipped scenarios and
test data, so relative references resolve) and runs it through ``vbhc`` with typer's
``CliRunner`` (fit files: loaded and their PyMC model built, never sampled). An
:class:`Outcome` is ``ok`` when the exit code is 0, 2 or 3 with no traceback, and otherwise a
``traceback``, a ``bad_exit`` (1: "internal error") or a ``hang`` (over the time bound).
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from tests.fuzz.mutate import csv_mutant, yaml_mutant
from tests.pipeline.test_replay import HAND  # a microsimulation replaying u.csv

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {0, 2, 3}
#: Seconds one command may take before it counts as a hang.
TIMEOUT = 60

#: Shipped scenarios mutated (the fast ones more often), relative to the workspace.
SCENARIOS = [
    "scenarios/reference/hiv_chancellor_1997.yaml",
    "scenarios/reference/hiv_chancellor_1997_lshtm.yaml",
    "scenarios/reference/hiv_chancellor_1997_heemod.yaml",
    "scenarios/reference/thr_dmhee.yaml",
    "tests/data/stepped/small.yaml",
    "tests/data/population/two_attributes.yaml",
    "scenarios/pain_course_au.yaml",
    "scenarios/chronic_pain_us.yaml",
]
WEIGHTS = [4, 2, 2, 3, 3, 2, 1, 1]
FITS = ["scenarios/fits/pain_course.yaml", "scenarios/fits/resolve.yaml",
        "scenarios/fits/ipp_engagement.yaml", "scenarios/fits/ipp_opioids.yaml",
        "scenarios/fits/ipp_utilisation.yaml"]


class Hang(BaseException):
    """Raised by the alarm; a BaseException, so the CLI's last line of defence lets it by."""


@dataclass(frozen=True)
class Outcome:
    target: str
    kind: str  # ok, traceback, bad_exit, hang
    code: int | None
    seconds: float
    args: tuple[str, ...]
    output: str

    @property
    def failed(self) -> bool:
        return self.kind != "ok"


def _alarm(seconds: int):
    def handler(signum, frame):
        raise Hang(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    return old


def _call(target: str, args: tuple, fn: Callable[[], tuple[int | None, str, bool]],
          timeout: int) -> Outcome:
    """Run ``fn`` -> (exit code, output, traceback?) under an alarm and classify it."""
    t0 = time.perf_counter()
    old = _alarm(timeout)
    try:
        code, output, traced = fn()
    except Hang:
        return Outcome(target, "hang", None, time.perf_counter() - t0, args, "")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - t0
    if traced or "Traceback (most recent call last)" in output:
        kind = "traceback"
    elif code not in ALLOWED:
        kind = "bad_exit"
    else:
        kind = "ok"
    return Outcome(target, kind, code, seconds, args, output[-2000:])


def invoke(target: str, args: list[str], timeout: int = TIMEOUT) -> Outcome:
    """``vbhc ARGS`` in-process."""
    from vbhc_model.cli import app

    def fn():
        result = CliRunner().invoke(app, args)
        exc = result.exception
        traced = exc is not None and not isinstance(exc, SystemExit)
        return result.exit_code, result.output, traced

    return _call(target, tuple(args), fn, timeout)


def load_fit(target: str, path: Path, timeout: int = TIMEOUT) -> Outcome:
    """A fit file loaded and its PyMC model built (not sampled): a user error is exit 2."""
    from vbhc_model.errors import VbhcError
    from vbhc_model.fitting.families import build
    from vbhc_model.fitting.spec import load_fit_file

    def fn():
        try:
            spec, source, rows = load_fit_file(path)
            build(spec, rows, source, path.parent)
        except VbhcError as exc:
            return 2, str(exc), False
        except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
            return 1, f"{type(exc).__name__}: {exc}", True
        return 0, "", False

    return _call(target, ("fit-load", str(path)), fn, timeout)


class Workspace:
    """A copy of the shipped scenarios and the test data the targets mutate."""

    def __init__(self, root: Path):
        self.root = root
        for part in ("scenarios", "tests/data/stepped", "tests/data/population"):
            if not (root / part).exists():
                shutil.copytree(ROOT / part, root / part, symlinks=False)
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"fuzz_{stem}_{self.count}"


def _run_scenario(ws: Workspace, path: Path, target: str, draws: int = 0) -> list[Outcome]:
    """validate (with --draws), then a base-case run if it is valid."""
    args = ["validate", str(path)] + (["--draws", str(draws)] if draws else [])
    first = invoke(target, args)
    if first.failed or first.code != 0:
        return [first]
    out = ws.root / "out" / path.stem
    return [first, invoke(target, ["run", str(path), "--out", str(out), "--force"])]


def scenario(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """A mutated shipped scenario: validate, and run its base case if valid."""
    rel = rng.choices(SCENARIOS, WEIGHTS)[0]
    src = ws.root / rel
    path = src.with_name(ws.name(src.stem) + ".yaml")
    path.write_text(yaml_mutant(src.read_text(), rng), encoding="utf-8")
    return _run_scenario(ws, path, "scenario"), [path]


def _psa_table(rng: random.Random, n: int = 40) -> str:
    g = np.random.default_rng(rng.randrange(2**32))
    head = "draw,cost_usual,qalys_usual,cost_new,qalys_new,p_x,c_y"
    rows = [f"{i},{g.normal(1000, 100):.4f},{g.normal(5, .2):.6f},{g.normal(1500, 150):.4f},"
            f"{g.normal(5.1, .2):.6f},{g.uniform():.6f},{g.normal(50, 5):.4f}" for i in range(n)]
    return "\n".join([head, *rows]) + "\n"


def analyse_table(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """A mutated PSA table through ``vbhc analyse``."""
    path = ws.root / (ws.name("analyse") + ".csv")
    path.write_text(csv_mutant(_psa_table(rng), rng), encoding="utf-8")
    out = ws.root / "out" / path.stem
    return [invoke("analyse", ["analyse", str(path), "--wtp", "20000", "--out", str(out),
                               "--force"])], [path]


SAMPLE_COLUMNS = {"omrP": "omrPTHR", "rrr": "rrr", "cRev": "c_revision", "uP": "u_successP"}


def samples_table(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """THR with four parameters from a mutated samples table: validate --draws 20, run."""
    name = ws.name("samples")
    reference = ROOT / "tests/data/validation/thr_lshtm_psa_samples_first500.csv"
    head = "\n".join(reference.read_text().splitlines()[:31]) + "\n"
    (ws.root / f"{name}.csv").write_text(csv_mutant(head, rng), encoding="utf-8")
    doc = yaml.safe_load((ROOT / "scenarios/reference/thr_dmhee.yaml").read_text())
    doc.pop("joint", None)
    for column, pname in SAMPLE_COLUMNS.items():
        p = doc["parameters"][pname]
        p.pop("distribution", None)
        p["samples"] = {"file": f"{name}.csv", "column": column,
                        "pick": rng.choice(["in_order", "random"])}
    path = ws.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return _run_scenario(ws, path, "samples", draws=20), [path, ws.root / f"{name}.csv"]


PATIENTS = "rural,severity,weight\n1,0,28\n1,1,12\n0,0,42\n0,1,18\n0,1,7\n1,0,3\n"


def patient_table(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """two_attributes.yaml with a mutated patient table instead of its attribute grid."""
    name = ws.name("patients")
    (ws.root / f"{name}.csv").write_text(csv_mutant(PATIENTS, rng), encoding="utf-8")
    doc = yaml.safe_load((ROOT / "tests/data/population/two_attributes.yaml").read_text())
    doc["population"] = {"patients": {"file": f"{name}.csv", "source": "test",
                                      "weight": "weight"},
                         "subgroups": ["severity", "rural"]}
    path = ws.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return _run_scenario(ws, path, "patients"), [path, ws.root / f"{name}.csv"]


def uniforms_table(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """A microsimulation replaying a mutated uniforms table."""
    name = ws.name("uniforms")
    g = np.random.default_rng(rng.randrange(2**32))
    table = "cycle_0,cycle_1,cycle_2\n" + "".join(
        ",".join(f"{u:.6f}" for u in row) + "\n" for row in g.uniform(size=(8, 3)))
    (ws.root / f"{name}.csv").write_text(csv_mutant(table, rng), encoding="utf-8")
    path = ws.root / f"{name}.yaml"
    path.write_text(HAND.replace("uniforms: u.csv", f"uniforms: {name}.csv"))
    return _run_scenario(ws, path, "uniforms"), [path, ws.root / f"{name}.csv"]


def fit_file(ws: Workspace, rng: random.Random) -> tuple[list[Outcome], list[Path]]:
    """A mutated shipped fit file, loaded and its model built (not sampled)."""
    src = ws.root / rng.choice(FITS)
    path = src.with_name(ws.name(src.stem) + ".yaml")
    path.write_text(yaml_mutant(src.read_text(), rng), encoding="utf-8")
    return [load_fit("fit", path)], [path]


TABLE_TARGETS = {"analyse": analyse_table, "samples": samples_table, "patients": patient_table,
                 "uniforms": uniforms_table, "fit": fit_file}
TARGETS = {"scenario": scenario, **TABLE_TARGETS}
