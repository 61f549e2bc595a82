"""Benchmark: the probabilistic analysis at 1,000, 10,000 and 100,000 draws.

For the THR model and the default chronic-pain scenario: sampling (inverse CDFs of every
sampled parameter) and simulation (``simulate``: building the matrices, the trace, accumulation
and labels: the engine time) timed apart, then the whole PSA (``run_psa``: sampling,
simulation and assembling psa.nc's Dataset) in-process and on a 2-worker dask LocalCluster
(cluster start-up excluded and reported), beside a per-draw loop in the same run (sample one
draw, build and run a one-draw model; timed on --loop-cap draws and scaled).

Medians of --repeat runs (100,000 draws: one run). --write replaces the psa section of
docs/benchmarks.md. Value-of-information timings: benchmarks/voi.py.
Usage: python -m benchmarks.psa [--repeat 5] [--loop-cap 100] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from distributed import Client

from benchmarks.cohort import machine, median_time, per_draw_loop
from benchmarks.docs_section import write_section
from vbhc_model.allocator import tune_allocator
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.scaleout import local_cluster
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario
from vbhc_model.threads import n_threads

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "THR (DMHEE ch. 4 PSA)": ROOT / "scenarios/reference/thr_dmhee.yaml",
    "chronic pain (default)": ROOT / "scenarios/chronic_pain_us.yaml",
}
SIZES = (1_000, 10_000, 100_000)
CHUNK = 10_000


def main() -> None:
    tune_allocator()  # as the CLI does: keep freed arrays (vbhc_model.allocator)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--loop-cap", type=int, default=100)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| model | draws | sampling (s) | simulation (s) | PSA in-process (s) | draws/s "
             "| PSA on LocalCluster, 2 workers (s) | per-draw loop (s) | loop / PSA |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    starts = []
    for label, path in MODELS.items():
        sc = load_scenario(path)
        m = args.loop_cap
        loop_per_draw = median_time(
            lambda: per_draw_loop(sc, sample_draws(sc, m)), max(1, min(3, args.repeat))) / m
        rows = {}
        for n in SIZES:  # in-process first, with no cluster running beside it
            rep = args.repeat if n <= 10_000 else 1
            chunk = min(n, CHUNK)
            draws = sample_draws(sc, chunk)
            per_chunk = n // chunk
            rows[n] = (median_time(lambda: sample_draws(sc, chunk), rep, warmup=1) * per_chunk,
                       median_time(lambda: simulate(sc, draws), rep, warmup=1) * per_chunk,
                       median_time(lambda: run_psa(sc, n, chunk_size=chunk), rep,
                                   warmup=1 if n <= 10_000 else 0))
        t0 = time.perf_counter()
        cluster = local_cluster(2)
        client = Client(cluster)
        run_psa(sc, 2_000, chunk_size=1_000, scheduler=cluster.scheduler_address)  # warm up
        starts.append(time.perf_counter() - t0)
        for n in SIZES:
            rep = args.repeat if n <= 10_000 else 1
            t_sample, t_sim, t_psa = rows[n]
            t_dask = median_time(
                lambda: run_psa(sc, n, chunk_size=min(n, CHUNK),
                                scheduler=cluster.scheduler_address), rep)
            loop = loop_per_draw * n
            lines.append(
                f"| {label} | {n:,} | {t_sample:,.3f} | {t_sim:,.3f} | {t_psa:,.3f} "
                f"| {n / t_psa:,.0f} | {t_dask:,.3f} | {loop:,.0f} (scaled) | {loop / t_psa:,.0f}x |")
            print(lines[-1], flush=True)
        client.close()
        cluster.close()
    body = "\n".join([
        f"Measured {dt.date.today().isoformat()} on {machine()}; medians of {args.repeat} runs "
        f"after a warm-up call (100,000 draws: one run; the whole PSA without a warm-up); chunks of {CHUNK:,} draws; in-process runs use "
        f"{n_threads()} threads (strategies and inverse CDFs side by side), LocalCluster "
        "workers one thread each; cluster start-up and warm-up "
        f"{', '.join(f'{s:.1f}' for s in starts)} s, excluded "
        "(`python -m benchmarks.psa --write`). Sampling and simulation of 100,000 draws are "
        "ten 10,000-draw chunks' times.",
        "",
        *lines,
    ])
    if args.write:
        write_section("psa", "Probabilistic analysis (`benchmarks/psa.py`)", body)


if __name__ == "__main__":
    main()
