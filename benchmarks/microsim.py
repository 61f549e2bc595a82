"""Benchmark: the microsimulation engine on a 4-state model, beside a vectorised numpy
reference and a plain per-patient loop, and the cost of its compiled kernels.

The model of issue 13's speed target: healthy, sick, sicker, dead; 100,000 patients x 30
cycles x 2 strategies (one batch column: the base case). It times, in one run:

- engine: :class:`vbhc_model.engines.microsim.MicrosimEngine` on both strategies (random
  numbers, inverse CDF, counts and the shared accumulation) with its numba kernels, the median
  of ``--repeat`` runs after one warm-up (warm: the kernels are compiled and loaded);
- engine, numpy path: the same engine with ``compiled=False`` (numpy's Philox generator and a
  vectorised binary search; the engine as it was before the kernels, same results);
- vectorised numpy reference: the straightforward numpy approach, all patients at once, per
  cycle ``rng.random(n)`` and the row lookup ``(u[:, None] > cumsum[s, :-1]).sum(1)``, then
  the occupancy (``np.bincount``) times the payoffs, discounted; median of ``--repeat``;
- loop: a plain Python loop over patients and cycles (one uniform per step, the inverse CDF by
  a walk along the row, payoffs added per step), timed on ``--loop-patients`` patients and
  scaled linearly to the same size.

All are reported as individual-cycles per second (patients x cycles x strategies / seconds).
Issue 13's targets: the engine at least 5x the reference and at least 1e8 per second (<= 60 ms
for this model).

Compile costs (``--no-compile-costs`` skips them): two fresh interpreters share an empty
``NUMBA_CACHE_DIR``; the first imports numba, imports the kernel module and runs the engine on
a 10-patient model (so compiles and writes the cache), the second does the same with the cache
written (so loads the machine code). A cohort run pays none of it (numba is imported only by
the microsimulation; tests/test_startup.py).

Usage: python benchmarks/microsim.py [--patients 100000] [--repeat 7] [--loop-patients 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from vbhc_model.allocator import tune_allocator
from vbhc_model.engines.base import EngineInputs, Outputs, PatientStreams
from vbhc_model.engines.corrections import discount_factors, quadrature_terms
from vbhc_model.engines.microsim import DEFAULT_CHUNK, MicrosimEngine

N_CYCLES = 30
#: Transition matrices of the two strategies (healthy, sick, sicker, dead).
MATRICES = {
    "standard": np.array([[0.845, 0.15, 0.0, 0.005],
                          [0.5, 0.38, 0.105, 0.015],
                          [0.0, 0.0, 0.95, 0.05],
                          [0.0, 0.0, 0.0, 1.0]]),
    "new": np.array([[0.885, 0.11, 0.0, 0.005],
                     [0.55, 0.34, 0.095, 0.015],
                     [0.0, 0.0, 0.95, 0.05],
                     [0.0, 0.0, 0.0, 1.0]]),
}
#: Per-cycle cost and QALY in each state (channels: cost, qaly).
VALUES = np.array([[2_000.0, 1.0], [4_000.0, 0.75], [15_000.0, 0.5], [0.0, 0.0]])
RATES = np.array([0.03, 0.03])


def engine_inputs(name: str, n_patients: int) -> EngineInputs:
    P = MATRICES[name][:, :, None]
    V = VALUES[:, :, None]
    terms = quadrature_terms(N_CYCLES, 1.0)
    start = np.array([[1.0], [0.0], [0.0], [0.0]])
    return EngineInputs(start, lambda k: P, lambda k: V, terms,
                        discount_factors(terms.time, RATES), n_cycles=N_CYCLES,
                        patients=PatientStreams(1, np.array([0]), n_patients))


def run_engine(engine: MicrosimEngine, n_patients: int) -> dict[str, np.ndarray]:
    return {name: engine.run(engine_inputs(name, n_patients), Outputs()).discounted[0]
            for name in MATRICES}


def run_loop(n_patients: int, seed: int = 1) -> dict[str, np.ndarray]:
    """The slow obvious version: each patient, each cycle, in Python."""
    rng = random.Random(seed)
    out = {}
    for name, P in MATRICES.items():
        rows = [list(np.cumsum(r)) for r in P]
        values = VALUES.tolist()
        total = [0.0, 0.0]
        for _ in range(n_patients):
            s = 0
            for k in range(1, N_CYCLES + 1):
                u = rng.random()
                row = rows[s]
                s = 0
                while s < len(row) - 1 and row[s] <= u:
                    s += 1
                d = 1.0 / 1.03**k
                total[0] += values[s][0] * d
                total[1] += values[s][1] * d
        out[name] = np.array(total) / n_patients
    return out


def run_reference(n_patients: int, seed: int = 1) -> dict[str, np.ndarray]:
    """The vectorised numpy reference: every patient at once, one cycle at a time."""
    out = {}
    disc = 1.0 / (1.0 + RATES[None, :]) ** np.arange(1, N_CYCLES + 1)[:, None]  # [cycle, ch]
    for name, P in MATRICES.items():
        rng = np.random.default_rng(seed)  # the same numbers under both strategies
        cum = np.cumsum(P, axis=1)[:, :-1]
        s = np.zeros(n_patients, dtype=np.intp)
        total = np.zeros(2)
        for k in range(N_CYCLES):
            u = rng.random(n_patients)
            s = (u[:, None] > cum[s]).sum(axis=1)
            occupancy = np.bincount(s, minlength=len(P)) / n_patients
            total += occupancy @ VALUES * disc[k]
        out[name] = total
    return out


COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
import vbhc_model.engines.microsim_kernel
t2 = time.perf_counter()
import sys
sys.path.insert(0, {bench!r})
from microsim import MicrosimEngine, run_engine
t3 = time.perf_counter()
run_engine(MicrosimEngine(), 10)
t4 = time.perf_counter()
run_engine(MicrosimEngine(), 10)
t5 = time.perf_counter()
print(json.dumps({{"import numba": t1 - t0, "import kernel module": t2 - t1,
                  "first run (10 patients)": t4 - t3, "second run": t5 - t4}}))
"""


def compile_costs() -> list[dict[str, float]]:
    """Two fresh interpreters on one empty numba cache: compile and write, then load."""
    bench = os.path.dirname(os.path.abspath(__file__))
    code = COMPILE_PROBE.format(bench=bench)
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True)
            out.append(json.loads(res.stdout.splitlines()[-1]))
    return out


def median_time(fn, repeat: int) -> tuple[float, object]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--loop-patients", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument("--no-compile-costs", action="store_true")
    args = ap.parse_args()
    tune_allocator()
    costs = [] if args.no_compile_costs else compile_costs()  # before this process loads numba
    engine = MicrosimEngine(args.chunk)
    numpy_engine = MicrosimEngine(args.chunk, compiled=False)
    work = args.patients * N_CYCLES * len(MATRICES)  # individual-cycles

    t_engine, result = median_time(lambda: run_engine(engine, args.patients), args.repeat)
    t_numpy, result_numpy = median_time(lambda: run_engine(numpy_engine, args.patients),
                                        args.repeat)
    t_ref, ref = median_time(lambda: run_reference(args.patients), args.repeat)
    for name in MATRICES:
        np.testing.assert_array_equal(result[name], result_numpy[name])

    t0 = time.perf_counter()
    loop = run_loop(args.loop_patients)
    t_loop = (time.perf_counter() - t0) * args.patients / args.loop_patients

    print(f"4-state model, {args.patients:,} patients x {N_CYCLES} cycles x "
          f"{len(MATRICES)} strategies ({work:,} individual-cycles); "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    rows = [(f"engine, numba kernels (chunk {args.chunk:,})", t_engine),
            ("engine, numpy path (compiled=False)", t_numpy),
            ("vectorised numpy reference", t_ref),
            (f"Python loop ({args.loop_patients} patients, scaled)", t_loop)]
    print(f"medians of {args.repeat} warm runs")
    print(f"{'method':<46}{'seconds':>10}{'individual-cycles/s':>22}")
    for label, t in rows:
        print(f"{label:<46}{t:>10.4f}{work / t:>22.3e}")
    print(f"engine vs reference: {t_ref / t_engine:.1f}x (target >= 5x: "
          f"{'met' if t_ref / t_engine >= 5 else 'NOT met'}); vs its numpy path "
          f"{t_numpy / t_engine:.1f}x; vs loop {t_loop / t_engine:.0f}x; "
          f"{work / t_engine:.2e} individual-cycles/s (target >= 1e8: "
          f"{'met' if work / t_engine >= 1e8 else 'NOT met'})")
    for name in MATRICES:
        print(f"  {name}: engine cost {result[name][0]:,.0f} QALYs {result[name][1]:.4f}; "
              f"reference cost {ref[name][0]:,.0f} QALYs {ref[name][1]:.4f}; "
              f"loop ({args.loop_patients} patients) cost {loop[name][0]:,.0f} "
              f"QALYs {loop[name][1]:.4f}")
    for label, c in zip(("empty numba cache (compile)", "cache written (load)"), costs):
        print(f"fresh process, {label}: " + ", ".join(f"{k} {v:.3f} s" for k, v in c.items()))


if __name__ == "__main__":
    main()
