"""Benchmark: the microsimulation engine on a 4-state model, beside a vectorised numpy
reference and a plain per-patient loop; a two-level PSA through the pipeline; the peak memory
of a large one; and the cost of the compiled kernels.

The model of issue 13's speed targets: healthy, sick, sicker, dead; 30 annual cycles, two
strategies. Its transition matrices and payoffs are below (MATRICES, VALUES) and, as a
scenario file with distributions for a PSA, in benchmarks/four_state.yaml.

1. Engine, 100,000 patients x 30 cycles x 2 strategies (one batch column: the base case):

   - engine: :meth:`vbhc_model.engines.microsim.MicrosimEngine.run_strategies` on both
     strategies (random numbers made once per cycle and shared, inverse CDF, counts and the
     shared accumulation) with its numba kernels, as ``simulate`` runs them on one thread;
     median of ``--repeat`` runs after one warm-up (warm: the kernels compiled and loaded);
   - engine, strategy by strategy: ``MicrosimEngine.run`` on each (each makes the uniforms);
   - engine, numpy path: ``compiled=False`` (numpy's Philox generator and a vectorised binary
     search; same results);
   - vectorised numpy reference: the straightforward numpy approach, all patients at once,
     per cycle ``rng.random(n)`` and the row lookup ``(u[:, None] > cumsum[s, :-1]).sum(1)``,
     then the occupancy (``np.bincount``) times the payoffs, discounted;
   - loop: a plain Python loop over patients and cycles, timed on ``--loop-patients``
     patients and scaled linearly to the same size.

   Targets: the engine at least 5x the reference and at least 1e8 individual-cycles per
   second (<= 60 ms).

2. Two-level PSA, 100 draws x 1,000 patients of benchmarks/four_state.yaml (the same work:
   6,000,000 individual-cycles): ``run_psa`` in one chunk (sampling, model, engine, labels,
   the chunk's Dataset), ``simulate`` on the sampled draws (model, engine, labels), and the
   engine alone on 100 batch columns of MATRICES. Target: <= 50 ms.

3. ``--memory``: peak resident memory (``ru_maxrss`` of a fresh child process) of
   ``run_psa`` on benchmarks/four_state.yaml with 1,000,000 patients x 100 draws (the chunk
   of draws the pipeline chooses from the patients), beside the same run with 1,000
   patients (what the process holds anyway). Target: < 1.5 GB. About a minute.

Compile costs (``--no-compile-costs`` skips them): two fresh interpreters share an empty
``NUMBA_CACHE_DIR``; the first imports numba, imports the kernel module and runs the engine on
a 10-patient model (so compiles and writes the cache), the second does the same with the cache
written (so loads the machine code). A cohort run pays none of it (numba is imported only by
the microsimulation; tests/test_startup.py).

Usage: python benchmarks/microsim.py [--patients 100000] [--repeat 7] [--loop-patients 300]
       [--memory] [--no-compile-costs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vbhc_model.allocator import tune_allocator
from vbhc_model.engines.base import EngineInputs, Outputs, PatientStreams
from vbhc_model.engines.corrections import discount_factors, quadrature_terms
from vbhc_model.engines.microsim import DEFAULT_CHUNK, MicrosimEngine

#: The 4-state model as a scenario file (a PSA's distributions on its parameters).
SCENARIO = Path(__file__).with_name("four_state.yaml")

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


def engine_inputs(name: str, n_patients: int, batch: int = 1) -> EngineInputs:
    """One strategy's inputs; ``batch`` columns (draws 0..batch-1) of the same matrices."""
    P = np.ascontiguousarray(np.repeat(MATRICES[name][:, :, None], batch, axis=2))
    V = np.ascontiguousarray(np.repeat(VALUES[:, :, None], batch, axis=2))
    terms = quadrature_terms(N_CYCLES, 1.0)
    start = np.zeros((len(P), batch))
    start[0] = 1.0
    return EngineInputs(start, lambda k: P, lambda k: V, terms,
                        discount_factors(terms.time, RATES), n_cycles=N_CYCLES,
                        patients=PatientStreams(1, np.arange(batch), n_patients))


def run_engine(engine: MicrosimEngine, n_patients: int,
               batch: int = 1) -> dict[str, np.ndarray]:
    """Both strategies together (shared uniforms), as ``simulate`` runs them on one thread."""
    results = engine.run_strategies([engine_inputs(name, n_patients, batch)
                                     for name in MATRICES], Outputs())
    return {name: r.discounted[0] for name, r in zip(MATRICES, results)}


def run_engine_alone(engine: MicrosimEngine, n_patients: int) -> dict[str, np.ndarray]:
    """Strategy by strategy, each making the uniforms again."""
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
    wall, _, result = timings(fn, repeat)
    return statistics.median(wall), result


def timings(fn, repeat: int) -> tuple[list[float], list[float], object]:
    """Wall-clock and CPU seconds of ``repeat`` calls after a warm-up call, and the last
    result. On a shared machine the CPU time shows what the wall-clock time would be
    without waiting for a core."""
    fn()  # warm-up
    wall, cpu, result = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return wall, cpu, result


def spread(times: list[float]) -> str:
    return (f"{statistics.median(times) * 1e3:.1f} ms ({min(times) * 1e3:.1f}-"
            f"{max(times) * 1e3:.1f})")


def two_level_psa(repeat: int, n_draws: int = 100, n_patients: int = 1_000) -> None:
    """Issue 13's target: a two-level PSA of 100 draws x 1,000 patients in <= 50 ms."""
    from vbhc_model.parameters.sampling import sample_draws
    from vbhc_model.pipeline.chunk import PSA_OUTPUTS
    from vbhc_model.pipeline.psa import run_psa
    from vbhc_model.pipeline.simulate import simulate
    from vbhc_model.scenario import load_scenario

    sc = load_scenario(SCENARIO).with_settings(engine="microsim", patients=n_patients)
    draws = sample_draws(sc, n_draws, seed=sc.settings.seed)
    engine = MicrosimEngine()
    rows = [
        ("run_psa, one chunk (sampling, model, engine, labels)",
         lambda: run_psa(sc, n_draws, chunk_size=n_draws)),
        ("simulate on the sampled draws (model, engine, labels)",
         lambda: simulate(sc, draws, outputs=PSA_OUTPUTS)),
        (f"engine alone, {n_draws} batch columns of MATRICES",
         lambda: run_engine(engine, n_patients, n_draws)),
    ]
    work = n_draws * n_patients * N_CYCLES * len(MATRICES)
    print(f"\ntwo-level PSA, {n_draws} draws x {n_patients:,} patients x {N_CYCLES} cycles x "
          f"{len(MATRICES)} strategies ({work:,} individual-cycles), {SCENARIO.name}; "
          f"medians (ranges) of {repeat} warm runs, wall-clock and CPU")
    for label, fn in rows:
        wall, cpu, _ = timings(fn, repeat)
        verdict = "" if not label.startswith("run_psa") else \
            f"  (target <= 50 ms: {'met' if statistics.median(wall) <= 0.05 else 'NOT met'})"
        print(f"  {label:<56}{spread(wall):>26}{spread(cpu):>26}{verdict}")


MEMORY_PROBE = """
import json, resource, time
from vbhc_model.allocator import tune_allocator
tune_allocator()
from vbhc_model.pipeline.chunk import draws_per_chunk
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.scenario import load_scenario
sc = load_scenario({scenario!r}).with_settings(engine="microsim", patients={patients})
t0 = time.perf_counter()
psa = run_psa(sc, {draws})
print(json.dumps({{"seconds": time.perf_counter() - t0, "chunk": draws_per_chunk(sc, 10_000),
                  "qalys": float(psa["qalys"].mean()),
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}}))
"""


def peak_memory(n_patients: int, n_draws: int) -> dict:
    """Peak RSS (bytes; ``ru_maxrss`` of the child, read by itself at its end and, for the
    first child, by this process as ``RUSAGE_CHILDREN``) of ``run_psa`` in a fresh process,
    with its time and chunk of draws."""
    code = MEMORY_PROBE.format(scenario=str(SCENARIO), patients=n_patients, draws=n_draws)
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    out = json.loads(res.stdout.splitlines()[-1])
    out["children"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB
    return out


def memory(n_draws: int = 100) -> None:
    """Issue 13's target: 1,000,000 patients x 100 draws in chunks under 1.5 GB peak."""
    print(f"\npeak memory of run_psa, {SCENARIO.name}, {n_draws} draws "
          "(fresh child processes, ru_maxrss)")
    for n in (1_000_000, 1_000):  # largest first: RUSAGE_CHILDREN keeps the largest peak
        m = peak_memory(n, n_draws)
        target = "" if n < 1_000_000 else \
            (f" (RUSAGE_CHILDREN {m['children'] / 1e9:.3f} GB; target < 1.5 GB: "
             f"{'met' if max(m['peak'], m['children']) < 1.5e9 else 'NOT met'})")
        print(f"  {n:>9,} patients: peak {m['peak'] / 1e9:.3f} GB{target}, chunks of "
              f"{m['chunk']} draws, {m['seconds']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--loop-patients", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    ap.add_argument("--no-compile-costs", action="store_true")
    ap.add_argument("--memory", action="store_true",
                    help="also measure the peak memory of 1,000,000 patients x 100 draws")
    args = ap.parse_args()
    tune_allocator()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    if args.memory:  # first: its children's peaks must not follow the compile probes'
        memory()
    costs = [] if args.no_compile_costs else compile_costs()  # before this process loads numba
    engine = MicrosimEngine(args.chunk)
    numpy_engine = MicrosimEngine(args.chunk, compiled=False)
    work = args.patients * N_CYCLES * len(MATRICES)  # individual-cycles

    # Engine and reference alternate, so that a busy minute of a shared machine slows both.
    fns = {"engine": lambda: run_engine(engine, args.patients),
           "alone": lambda: run_engine_alone(engine, args.patients),
           "reference": lambda: run_reference(args.patients)}
    times = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    out = {k: fn() for k, fn in fns.items()}  # warm-up
    for _ in range(args.repeat):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out[k] = fn()
            cpu[k].append(time.process_time() - c0)
            times[k].append(time.perf_counter() - t0)
    t_engine, t_alone, t_ref = (statistics.median(times[k]) for k in fns)
    result, ref = out["engine"], out["reference"]
    t_numpy, result_numpy = median_time(lambda: run_engine(numpy_engine, args.patients),
                                        max(3, args.repeat // 3))
    for name in MATRICES:
        np.testing.assert_array_equal(result[name], result_numpy[name])
        np.testing.assert_array_equal(result[name], out["alone"][name])

    t0 = time.perf_counter()
    loop = run_loop(args.loop_patients)
    t_loop = (time.perf_counter() - t0) * args.patients / args.loop_patients

    print(f"4-state model, {args.patients:,} patients x {N_CYCLES} cycles x "
          f"{len(MATRICES)} strategies ({work:,} individual-cycles); "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    rows = [(f"engine, numba kernels (chunk {args.chunk:,})", t_engine, "engine"),
            ("engine, strategy by strategy (run)", t_alone, "alone"),
            ("engine, numpy path (compiled=False)", t_numpy, None),
            ("vectorised numpy reference", t_ref, "reference"),
            (f"Python loop ({args.loop_patients} patients, scaled)", t_loop, None)]
    print(f"medians of {args.repeat} warm runs (numpy path: {max(3, args.repeat // 3)}); "
          "range of the wall-clock times; median CPU time")
    print(f"{'method':<46}{'seconds':>10}{'range':>18}{'CPU s':>9}"
          f"{'individual-cycles/s':>22}")
    for label, t, k in rows:
        rng = f"{min(times[k]):.4f}-{max(times[k]):.4f}" if k else ""
        c = f"{statistics.median(cpu[k]):.4f}" if k else ""
        print(f"{label:<46}{t:>10.4f}{rng:>18}{c:>9}{work / t:>22.3e}")
    ratios = sorted(r / e for r, e in zip(times["reference"], times["engine"]))
    print(f"engine vs reference: {t_ref / t_engine:.1f}x (target >= 5x: "
          f"{'met' if t_ref / t_engine >= 5 else 'NOT met'}; run by run "
          f"{ratios[0]:.1f}-{ratios[-1]:.1f}x); vs its numpy path "
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
    two_level_psa(args.repeat)


if __name__ == "__main__":
    main()
