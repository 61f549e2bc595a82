"""Tests for the process-level settings of the engine: malloc thresholds and BLAS threads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from vbhc_model.threads import one_blas_thread, thread_map

GLIBC = sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION") or "")


def _tune_in_child(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VBHC_MALLOC"}
    if env_value is not None:
        env["VBHC_MALLOC"] = env_value
    code = ("from vbhc_model.allocator import tune_allocator; "
            "print(tune_allocator(), tune_allocator())")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_allocator_thresholds_are_set_once_unless_turned_off():
    assert _tune_in_child(None) == "True True"
    assert _tune_in_child("default") == "False False"


#: Run in a fresh process: the malloc thresholds are set by the entry points (the CLI, the
#: scale-out task), never by the library's simulate().
_ENTRY_POINTS = {
    "simulate": "simulate(sc, base_draws(sc))",
    "cli": ("from typer.testing import CliRunner; from vbhc_model.cli import app; "
            "r = CliRunner().invoke(app, ['run', sc.source.file, '--out', 'out']); "
            "assert r.exit_code == 0, r.output"),
    "scaleout_task": ("from vbhc_model.pipeline.scaleout import run_task; "
                      "run_task(sc.source.text, sc.source.file, 0, 2, 1, 'mc', 2)"),
}


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
@pytest.mark.parametrize(("entry", "expected"), [("simulate", "{}"), ("cli", "{'done': True}"),
                                                 ("scaleout_task", "{'done': True}")])
def test_entry_points_set_the_thresholds_and_simulate_does_not(tmp_path, entry, expected):
    code = ("from vbhc_model.scenario import load_scenario, default_scenario_path; "
            "from vbhc_model.parameters import base_draws; from vbhc_model import allocator; "
            "from vbhc_model.pipeline.simulate import simulate; "
            "sc = load_scenario(default_scenario_path()); "
            f"assert allocator._state == {{}}; {_ENTRY_POINTS[entry]}; print(allocator._state)")
    env = {k: v for k, v in os.environ.items() if k != "VBHC_MALLOC"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=env).stdout.strip()
    assert out.splitlines()[-1] == expected


def test_one_blas_thread_limits_blas_inside_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    a = np.ones((50, 50))

    def blas_threads(_):
        a @ a
        return [m["num_threads"] for m in threadpoolctl.threadpool_info()
                if m["user_api"] == "blas"]

    with one_blas_thread():
        inside = thread_map(blas_threads, range(2), n_draws=10_000, threads=2)
    assert all(n == 1 for counts in inside for n in counts)
    with one_blas_thread():  # the controller is kept: a second use is the same
        assert all(n == 1 for n in blas_threads(0))


def test_thread_map_starts_large_items_first_and_keeps_order_and_first_error():
    started: list[int] = []

    def f(x: int) -> int:
        started.append(x)
        if x in (2, 4):
            raise ValueError(f"item {x}")
        return 10 * x

    out = thread_map(f, [1, 3, 5], n_draws=10_000, threads=1, sizes=[1, 3, 5])
    assert out == [10, 30, 50]  # one thread: in order, sizes ignored
    started.clear()
    out = thread_map(f, [1, 3, 5, 7], n_draws=10_000, threads=2, sizes=[1, 3, 5, 7])
    assert out == [10, 30, 50, 70]
    assert started[:2] == [7, 5] or started[:2] == [5, 7]  # the two largest start first
    with pytest.raises(ValueError, match="item 2"):  # the first failing item in order
        thread_map(f, [1, 2, 3, 4], n_draws=10_000, threads=2, sizes=[1, 1, 1, 9])
