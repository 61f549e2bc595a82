"""Benchmark: the cost of history in the microsimulation (issue 13).

The 4-state model of benchmarks/four_state.yaml (100,000 patients x 30 cycles x 2
strategies, base case through ``simulate``, one thread), as shipped and with the
sick -> sicker probability depending on the time spent sick: through a time-in-state tracker
(cap 4), through a tunnel of 4 sub-states (the same model, identical results), and through
three trackers (726 combinations of their values). Median (and range) of ``--repeat`` warm
runs.

Usage: python benchmarks/trackers.py [--patients 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

MODEL = Path(__file__).with_name("four_state.yaml")
ROW = "  sick: {healthy: p_sh_tx, sick: complement, sicker: p_sx_tx, dead: p_sd}"
WITH = "  sick: {healthy: p_sh_tx, sick: complement, sicker: 'p_sx_tx * (0.8 + 0.1 * min(T, 4))', dead: p_sd}"


def variants(text: str) -> dict[str, str]:
    if ROW not in text:
        raise SystemExit(f"{MODEL}: the sick row has changed; update benchmarks/trackers.py")
    tracked = text.replace(ROW, WITH.replace("T", "t_in"))
    return {
        "no history (as shipped)": text,
        "time-in-state tracker, cap 4": tracked + "trackers:\n  t_in: {kind: time_in_state, cap: 4}\n",
        "tunnel of 4 on sick (the same model)": text.replace(
            ROW, WITH.replace("T", "time_in_state")).replace(
            'sick: {label: "Sick"}', 'sick: {label: "Sick", tunnel: 4}'),
        "3 trackers, 726 combinations": tracked + (
            "trackers:\n  t_in: {kind: time_in_state, cap: 10}\n"
            "  since: {kind: time_since, cap: 10, never: 0, event: {enter: [sick]}}\n"
            "  n: {kind: count, cap: 5, event: {enter: [sick]}}\n"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp())
    print(f"{dt.date.today()}, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; {args.patients:,} patients x 30 cycles x 2 "
          f"strategies, median (range) of {args.repeat} warm runs, one thread")
    for name, text in variants(MODEL.read_text()).items():
        path = folder / "model.yaml"
        path.write_text(text)
        sc = load_scenario(path).with_settings(engine="microsim", patients=args.patients)
        draws = base_draws(sc)
        simulate(sc, draws, threads=1)  # compile / warm
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = simulate(sc, draws, threads=1)
            times.append(time.perf_counter() - t0)
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} ms | "
              f"{min(times) * 1e3:.1f}-{max(times) * 1e3:.1f} | "
              f"{float(out['total_cost'].values[0, 1]):,.1f} |")


if __name__ == "__main__":
    main()
