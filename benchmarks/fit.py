"""Benchmark: `vbhc fit` on the shipped fit files, from a cold start and warm; `vbhc calibrate`.

Cold: a new process with empty PyTensor and numba caches (PYTENSOR_FLAGS=compiledir=...,
NUMBA_CACHE_DIR=...),
so the import of PyMC and every C compilation are included. Warm: the same command again with
that directory filled. Each is the wall-clock time of the whole command (`vbhc fit FILE --out
TMP.nc --force`), median of --repeat runs. Aim (issue 4): RESOLVE converges in under 60 s from
a cold start.
--write replaces the fit section of docs/benchmarks.md.
Usage: python -m benchmarks.fit [--repeat 3] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cohort import machine
from benchmarks.docs_section import write_section

ROOT = Path(__file__).resolve().parents[1]
FITS = ["resolve", "ipp_utilisation", "ipp_opioids", "ipp_engagement", "pain_course"]
VBHC = [sys.executable, "-m", "vbhc_model.cli"]


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| command | cold start (s) | warm (s) |", "|---|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in FITS:
            cold, warm = [], []
            for r in range(args.repeat):
                env = dict(os.environ,
                           PYTENSOR_FLAGS=f"compiledir={tmp}/cache_{name}_{r}",
                           NUMBA_CACHE_DIR=f"{tmp}/numba_{name}_{r}")
                cmd = VBHC + ["fit", str(ROOT / "scenarios/fits" / f"{name}.yaml"),
                              "--out", f"{tmp}/{name}_{r}.nc", "--force"]
                cold.append(timed(cmd, env))
                warm.append(timed(cmd, env))
            lines.append(f"| `vbhc fit scenarios/fits/{name}.yaml` | "
                         f"{statistics.median(cold):.1f} | {statistics.median(warm):.1f} |")
            print(lines[-1], flush=True)
        cal = VBHC + ["calibrate", str(ROOT / "scenarios/calibration/resolve_usual_care.yaml"),
                      "--out", f"{tmp}/cal.nc", "--force"]
        t = statistics.median(timed(cal, dict(os.environ)) for _ in range(args.repeat))
        lines.append(f"| `vbhc calibrate scenarios/calibration/resolve_usual_care.yaml` "
                     f"(20,000 prior draws) | n/a | {t:.1f} |")
        print(lines[-1], flush=True)
    body = "\n".join([
        f"Measured {dt.date.today().isoformat()} on {machine()}; wall-clock of the whole "
        f"command, median of {args.repeat} runs; cold = new process, empty PyTensor and numba "
        "caches (`python -m benchmarks.fit --write`). Aim: RESOLVE under 60 s "
        "from a cold start.", "", *lines])
    if args.write:
        write_section("fit", "Fitting and calibration (`benchmarks/fit.py`)", body)


if __name__ == "__main__":
    main()
