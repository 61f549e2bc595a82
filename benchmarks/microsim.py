"""Benchmark: the microsimulation engine on a 4-state model, beside a plain per-patient loop.

The model of issue 13's speed target: healthy, sick, sicker, dead; 100,000 patients x 30
cycles x 2 strategies (one batch column: the base case). It times:

- engine: :class:`vbhc_model.engines.microsim.MicrosimEngine` on both strategies (random
  numbers, inverse CDF, counts and the shared accumulation), the median of ``--repeat`` runs
  after one warm-up;
- loop: a plain Python loop over patients and cycles (one uniform per step, the inverse CDF by
  a walk along the row, payoffs added per step), timed on ``--loop-patients`` patients and
  scaled linearly to the same size.

Both are reported as individual-cycles per second (patients x cycles x strategies / seconds).
No target is chased here: issue 13's 1e8 per second will need a compiled kernel.

Usage: python benchmarks/microsim.py [--patients 100000] [--repeat 5] [--loop-patients 300]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop-patients", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    args = ap.parse_args()
    tune_allocator()
    engine = MicrosimEngine(args.chunk)
    work = args.patients * N_CYCLES * len(MATRICES)  # individual-cycles

    run_engine(engine, args.patients)  # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_engine(engine, args.patients)
        times.append(time.perf_counter() - t0)
    t_engine = statistics.median(times)

    t0 = time.perf_counter()
    loop = run_loop(args.loop_patients)
    t_loop = (time.perf_counter() - t0) * args.patients / args.loop_patients

    print(f"4-state model, {args.patients:,} patients x {N_CYCLES} cycles x "
          f"{len(MATRICES)} strategies ({work:,} individual-cycles); "
          f"Python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print(f"{'method':<40}{'seconds':>10}{'individual-cycles/s':>22}")
    print(f"{f'engine (chunk {args.chunk:,}, median of {args.repeat})':<40}"
          f"{t_engine:>10.3f}{work / t_engine:>22.3e}")
    print(f"{f'Python loop ({args.loop_patients} patients, scaled)':<40}"
          f"{t_loop:>10.3f}{work / t_loop:>22.3e}")
    print(f"engine / loop speed-up: {t_loop / t_engine:.1f}x")
    for name in MATRICES:
        print(f"  {name}: engine cost {result[name][0]:,.0f} QALYs {result[name][1]:.4f}; "
              f"loop ({args.loop_patients} patients) cost {loop[name][0]:,.0f} "
              f"QALYs {loop[name][1]:.4f}")


if __name__ == "__main__":
    main()
