"""Benchmark: PSA chunks in-process vs on a 2-worker dask LocalCluster, with dask's default
worker MALLOC_TRIM_THRESHOLD_ (65536, with vbhc_model.allocator turned off in the workers) and
as vbhc_model starts them (no dask trim; the engine fixes glibc's thresholds itself).

Times exclude cluster start-up (reported separately). --write replaces the scaleout section
of docs/benchmarks.md. Usage: python -m benchmarks.scaleout [--draws 100000] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from distributed import Client

from benchmarks.cohort import machine
from benchmarks.docs_section import write_section
from vbhc_model.allocator import tune_allocator
from vbhc_model.pipeline.psa import run_psa, simulate_chunk
from vbhc_model.pipeline.scaleout import local_cluster, run_task
from vbhc_model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def on_cluster(sc, draws: int, chunk: int, trim: int | None) -> tuple[float, float]:
    t0 = time.perf_counter()
    cluster = local_cluster(2, trim)
    client = Client(cluster)
    src = sc.source
    client.gather(client.map(run_task, [src.text] * 2, [src.file] * 2, [0, 1], [1, 1], [1, 1],
                             ["mc", "mc"], [2, 2], pure=False))  # warm up both workers
    t1 = time.perf_counter()
    futures = [client.submit(run_task, src.text, src.file, s, min(chunk, draws - s), 1, "mc",
                             draws, pure=False) for s in range(0, draws, chunk)]
    client.gather(futures)
    t2 = time.perf_counter()
    client.close()
    cluster.close()
    return t2 - t1, t1 - t0


def main() -> None:
    tune_allocator()  # as the CLI does: keep freed arrays (vbhc_model.allocator)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    rows = ["| model | draws | in-process (s) | LocalCluster 2 workers, dask default trim (s) "
            "| LocalCluster 2 workers, as vbhc_model starts them (s) | cluster start (s) |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, path in (("THR", "scenarios/reference/thr_dmhee.yaml"),
                        ("chronic pain (default)", "scenarios/chronic_pain_us.yaml")):
        sc = load_scenario(ROOT / path)
        simulate_chunk(sc, 0, 10, 1, "mc", 10)
        t0 = time.perf_counter()
        run_psa(sc, args.draws, seed=1, chunk_size=args.chunk)
        inproc = time.perf_counter() - t0
        trim, start = on_cluster(sc, args.draws, args.chunk, 65536)
        notrim, _ = on_cluster(sc, args.draws, args.chunk, None)
        rows.append(f"| {label} | {args.draws:,} | {inproc:.2f} | {trim:.2f} | {notrim:.2f} "
                    f"| {start:.1f} |")
        print(rows[-1], flush=True)
    body = "\n".join([f"Measured {dt.date.today().isoformat()} on {machine()}; one run each, "
                      f"chunks of {args.chunk:,} draws (`python -m benchmarks.scaleout "
                      "--write`).", "", *rows])
    if args.write:
        write_section("scaleout", "Scale-out on dask.distributed (`benchmarks/scaleout.py`)",
                      body)

if __name__ == "__main__":
    main()
