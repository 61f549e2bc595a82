"""The full fuzz run: many mutants per target, counted, the failing ones kept.

    PYTHONPATH=. python -m tests.fuzz.full_run --scenarios 1000 --tables 50 --workers 2 \
        --keep /tmp/fuzz_failures

``--tables`` is per table/fit target (analyse, samples, patients, uniforms, fit). Prints a
Markdown table of outcomes by target (the figures in docs/robustness.md) and, for each
failure, its target, seed, command and last lines of output; the mutant's files are copied to
``--keep``. Seeds are ``TARGET:I``, so ``random.Random("scenario:17")`` replays a case.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import random
import shutil
import tempfile
import time
from pathlib import Path

from tests.fuzz.targets import TABLE_TARGETS, TARGETS, Workspace

_WS: Workspace | None = None


def _init(root: str) -> None:
    global _WS
    _WS = Workspace(Path(tempfile.mkdtemp(dir=root)))


def _one(task: tuple[str, int]) -> tuple[str, int, list, list[str]]:
    target, i = task
    outcomes, files = TARGETS[target](_WS, random.Random(f"{target}:{i}"))
    return target, i, outcomes, [str(f) for f in files]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", type=int, default=1000)
    ap.add_argument("--tables", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=Path("fuzz_failures"))
    args = ap.parse_args()
    tasks = [("scenario", i) for i in range(args.scenarios)]
    tasks += [(t, i) for i in range(args.tables) for t in TABLE_TARGETS]
    root = tempfile.mkdtemp(prefix="vbhc_fuzz_")
    t0 = time.perf_counter()
    mutants = collections.Counter()
    kinds: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    slowest: dict[str, float] = collections.defaultdict(float)
    failures = []
    with mp.get_context("fork").Pool(args.workers, _init, (root,), maxtasksperchild=100) as pool:
        for target, i, outcomes, files in pool.imap_unordered(_one, tasks, chunksize=4):
            mutants[target] += 1
            for o in outcomes:
                kinds[target][o.kind] += 1
                codes[target][o.code] += 1
                slowest[target] = max(slowest[target], o.seconds)
                if o.failed:
                    failures.append((target, i, o))
                    keep = args.keep / f"{target}_{i}"
                    keep.mkdir(parents=True, exist_ok=True)
                    for f in files:
                        if Path(f).exists():
                            shutil.copy(f, keep)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{sum(mutants.values())} mutants in {time.perf_counter() - t0:.0f} s "
          f"({args.workers} workers)\n")
    print("| target | mutants | commands | exit 0 | exit 2 | exit 3 | tracebacks | other exit "
          "| hangs | slowest (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in TARGETS:
        k, c = kinds[t], codes[t]
        other = sum(n for code, n in c.items() if code not in (0, 2, 3, None))
        print(f"| {t} | {mutants[t]} | {sum(c.values())} | {c[0]} | {c[2]} | {c[3]} | "
              f"{k['traceback']} | {other} | {k['hang']} | {slowest[t]:.1f} |")
    for target, i, o in sorted(failures, key=lambda f: (f[0], f[1])):
        last = " | ".join(o.output.strip().splitlines()[-3:])[:300]
        print(f"\n{target}:{i} {o.kind} exit {o.code}: {' '.join(o.args)}\n  {last}")


if __name__ == "__main__":
    main()
