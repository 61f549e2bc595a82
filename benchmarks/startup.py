"""Benchmark: start-up, as whole-command wall times in fresh processes.

Each command and each reference import runs in a new Python process, ``--repeat`` rounds
after one warm-up round (file cache, bytecode), the cases interleaved within a round so that
load from other jobs falls on all of them alike; the figure is the median, with the range
beside it. The targets (issue 12) are ratios to importing the libraries in the same run, as
machines differ by about 2x:

- a base case of scenarios/reference/thr_dmhee.yaml at most 1.5x ``import numpy, xarray``;
- ``vbhc run --draws 10000`` of the default scenario at most 2.5x
  ``import numpy, scipy.stats, xarray``.

``vbhc --help`` and ``vbhc validate`` are timed too (they should stay light). With
``--breakdown``, the THR base case and the 10,000-draw run are also run under
``python -X importtime`` once each and the import time is summed by top-level package.
``--write`` replaces the startup section of docs/benchmarks.md.

Usage: python -m benchmarks.startup [--repeat 7] [--breakdown] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THR = ROOT / "scenarios" / "reference" / "thr_dmhee.yaml"
PY = sys.executable
VBHC = str(Path(sys.executable).with_name("vbhc"))

REF_XR = "import numpy, xarray"
REF_STATS = "import numpy, scipy.stats, xarray"


def cases(out: Path) -> dict[str, list[str]]:
    """label -> command line"""
    return {
        REF_XR: [PY, "-c", REF_XR],
        REF_STATS: [PY, "-c", REF_STATS],
        "vbhc --help": [VBHC, "--help"],
        "vbhc validate thr_dmhee.yaml": [VBHC, "validate", str(THR)],
        "vbhc run thr_dmhee.yaml (base case)": [VBHC, "run", str(THR), "--out",
                                                str(out / "thr"), "--force"],
        "vbhc run --draws 10000 (default scenario)": [VBHC, "run", "--draws", "10000",
                                                      "--out", str(out / "psa"), "--force"],
    }


#: (label, command, reference, at most): the issue's targets.
TARGETS = [
    ("THR base case", "vbhc run thr_dmhee.yaml (base case)", REF_XR, 1.5),
    ("default --draws 10000", "vbhc run --draws 10000 (default scenario)", REF_STATS, 2.5),
]

#: Packages whose import time the breakdown reports (the rest is summed as "other").
PACKAGES = ("numpy", "xarray", "pandas", "scipy", "dask", "distributed", "h5py", "h5netcdf",
            "matplotlib", "pymc", "pydantic", "pydantic_core", "yaml", "typer", "rich",
            "threadpoolctl", "vbhc_model")


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def breakdown(cmd: list[str]) -> dict[str, float]:
    """Import time (self, seconds) summed by top-level package, from ``-X importtime``."""
    exe = [PY, "-X", "importtime", *([VBHC] if cmd[0] == VBHC else []), *cmd[1:]]
    err = subprocess.run(exe, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True).stderr
    sums: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        top = name.strip().split(".")[0]
        key = top if top in PACKAGES else "other"
        sums[key] = sums.get(key, 0.0) + int(self_us) / 1e6
    return sums


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in
                         ("numpy", "scipy", "xarray", "dask", "h5netcdf", "pydantic", "typer"))
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, {versions}; "
            f"vbhc_model {metadata.version('vbhc_model')}")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--breakdown", action="store_true", help="import time by package")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbhc_startup_") as tmp:
        commands = cases(Path(tmp))
        times: dict[str, list[float]] = {label: [] for label in commands}
        for round_ in range(args.repeat + 1):  # round 0 warms up
            for label, cmd in commands.items():
                t = wall(cmd)
                if round_:
                    times[label].append(t)
            if round_:
                print(f"round {round_}: " + ", ".join(f"{times[k][-1]:.2f}" for k in commands),
                      flush=True)
        parts = ({name: breakdown(commands[cmd]) for name, cmd, _, _ in TARGETS}
                 if args.breakdown else {})
    med = {label: statistics.median(t) for label, t in times.items()}
    table = ["| command | median (s) | range (s) |", "|---|---:|---:|"]
    table += [f"| `{label}` | {fmt_s(med[label])} | {fmt_s(min(t))} to {fmt_s(max(t))} |"
              for label, t in times.items()]
    verdicts = []
    for name, cmd, ref, limit in TARGETS:
        ratio = med[cmd] / med[ref]
        verdicts.append(f"- {name}: {fmt_s(med[cmd])} s / {fmt_s(med[ref])} s (`{ref}`) = "
                        f"**{ratio:.2f}x** (target at most {limit}x: "
                        f"{'met' if ratio <= limit else 'NOT met'})")
    lines = [
        (f"Measured {dt.date.today().isoformat()} on {machine()}; wall time of each command "
         f"in a fresh process, median of {args.repeat} interleaved rounds after a warm-up "
         "round (`python -m benchmarks.startup --write`)."),
        "",
        *table,
        "",
        "Targets (issue 12), as ratios of medians:",
        "",
        *verdicts,
    ]
    if parts:
        keys = sorted({k for p in parts.values() for k in p},
                      key=lambda k: -max(p.get(k, 0.0) for p in parts.values()))
        lines += ["", ("Import time by package (`-X importtime`, self times summed, one run, "
                       "the figure helper process included; `-` not imported):"), "",
                  "| package | " + " | ".join(parts) + " |",
                  "|---|" + "---:|" * len(parts)]
        for k in keys:
            lines.append(f"| {k} | " + " | ".join(
                f"{p[k] * 1e3:,.0f} ms" if k in p else "-" for p in parts.values()) + " |")
        lines.append("| total | " + " | ".join(f"{sum(p.values()) * 1e3:,.0f} ms"
                                               for p in parts.values()) + " |")
    body = "\n".join(lines)
    print("\n" + body)
    if args.write:
        from benchmarks.docs_section import write_section

        write_section("startup", "Start-up (`benchmarks/startup.py`)", body)


if __name__ == "__main__":
    main()
