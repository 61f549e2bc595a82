"""Benchmark: the cohort engine, vectorised over draws, against a per-draw loop.

For the THR model and the default chronic-pain scenario, at 1, 1,000 and 10,000 draws of the
base values, it times:

- engine: ``simulate`` on all draws at once (build, trace, accumulation and labels);
- loop: the same numpy code run draw by draw (a one-draw model built and run per draw, as a
  per-draw implementation would), timed on up to ``--loop-cap`` draws and scaled linearly
  (its cost is linear in the draws by construction; the cap keeps the run short).

Each engine figure is the median of ``--repeat`` runs after two warm-up calls; the first call
(cold: a heap not yet grown to the run's size, its pages faulted in on first touch) is
reported beside it. ``--write`` replaces the cohort section of docs/benchmarks.md with the
table.

Usage: python benchmarks/cohort.py [--repeat 5] [--loop-cap 200] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import vbhc_model
from vbhc_model.allocator import tune_allocator
from vbhc_model.engines.cohort import run_cohort
from vbhc_model.engines.corrections import discount_factors, quadrature_terms
from vbhc_model.model.build import build_model
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "THR (DMHEE Ex 3.5)": ROOT / "scenarios/reference/thr_dmhee.yaml",
    "chronic pain (default)": ROOT / "scenarios/chronic_pain_us.yaml",
}
DRAWS = (1, 1_000, 10_000)


def median_time(func, repeat: int, warmup: int = 0) -> float:
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def per_draw_loop(scenario, draws) -> None:
    """Build and run a one-draw model for each draw in turn."""
    s = scenario.settings
    terms = quadrature_terms(s.n_cycles, s.cycle_length, s.within_cycle_correction,
                             s.count_start, s.discount_timing)
    for d in range(draws.sizes["draw"]):
        inputs = build_model(scenario, draws.isel(draw=[d]))
        disc = discount_factors(terms.time, inputs.rates)
        for strat in inputs.strategies:
            run_cohort(strat.start, strat.transition_at, strat.values_at, terms, disc,
                       n_cycles=s.n_cycles)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy "
            f"{np.__version__}, vbhc_model {vbhc_model.__version__}")


def main() -> None:
    tune_allocator()  # as the CLI does: keep freed arrays (vbhc_model.allocator)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop-cap", type=int, default=200)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    rows = []
    for label, path in MODELS.items():
        sc = load_scenario(path)
        for n in DRAWS:
            draws = base_draws(sc, n)
            run = functools.partial(simulate, sc, draws)
            first = median_time(run, 1)
            engine = median_time(run, args.repeat, warmup=2)
            m = min(n, args.loop_cap)
            loop_m = median_time(lambda: per_draw_loop(sc, draws.isel(draw=slice(0, m))),
                                 max(1, args.repeat if m <= 100 else 3))
            loop = loop_m * n / m
            scaled = "" if m == n else f" (timed on {m:,}, scaled)"
            rows.append((label, n, first, engine, loop, scaled))
            print(f"{label:24s} {n:>7,} draws: first {first * 1e3:9.1f} ms, "
                  f"engine {engine * 1e3:9.1f} ms, "
                  f"loop {loop * 1e3:11.1f} ms{scaled}, ratio {loop / engine:7.1f}x", flush=True)
    table = [
        ("| model | draws | engine, first call (ms) | engine (ms) | per-draw loop (ms) "
         "| loop / engine |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, n, first, engine, loop, scaled in rows:
        table.append(f"| {label} | {n:,} | {first * 1e3:,.1f} | {engine * 1e3:,.1f} "
                     f"| {loop * 1e3:,.0f}{scaled} | "
                     f"{loop / engine:,.1f}x |")
    body = "\n".join([
        f"Measured {dt.date.today().isoformat()} on {machine()}; engine: median of "
        f"{args.repeat} runs after two warm-up calls (`python benchmarks/cohort.py --write`).",
        "",
        *table,
    ])
    print("\n" + body)
    if args.write:
        from benchmarks.docs_section import write_section

        write_section("cohort", "Cohort engine (`benchmarks/cohort.py`)", body)

if __name__ == "__main__":
    main()
