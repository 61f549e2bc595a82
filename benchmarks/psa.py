"""Benchmark: the probabilistic analysis, and value of information at 10,000 draws.

- PSA engine time (sampling + simulation, in-process) and draws per second for the THR model
  and the default chronic-pain scenario at 1,000, 10,000 and 100,000 draws, beside a per-draw
  loop (sample one draw, build and run a one-draw model; timed on --loop-cap draws, scaled).
- EVPI, and single-parameter EVPPI per parameter (without and with standard errors), at
  10,000 draws of the default scenario.

Medians of --repeat runs. --write replaces the psa section of docs/benchmarks.md.
Usage: python benchmarks/psa.py [--repeat 3] [--loop-cap 100] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from benchmarks.cohort import machine, median_time, per_draw_loop
from benchmarks.docs_section import write_section
from vbhc_model.analysis.psa import analyse_psa
from vbhc_model.analysis.voi import evppi
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.psa import run_psa
from vbhc_model.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "THR (DMHEE ch. 4 PSA)": ROOT / "scenarios/reference/thr_dmhee.yaml",
    "chronic pain (default)": ROOT / "scenarios/chronic_pain_us.yaml",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop-cap", type=int, default=100)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| model | draws | PSA engine (s) | draws/s | per-draw loop (s) | loop / engine |",
             "|---|---:|---:|---:|---:|---:|"]
    for label, path in MODELS.items():
        sc = load_scenario(path)
        m = args.loop_cap
        loop_per_draw = median_time(
            lambda: per_draw_loop(sc, sample_draws(sc, m)), max(1, args.repeat)) / m
        for n in (1_000, 10_000, 100_000):
            chunk = 10_000
            t = median_time(lambda: run_psa(sc, n, chunk_size=chunk),
                            args.repeat if n <= 10_000 else 1)
            loop = loop_per_draw * n
            lines.append(f"| {label} | {n:,} | {t:,.2f} | {n / t:,.0f} | {loop:,.0f} (scaled) "
                         f"| {loop / t:,.0f}x |")
            print(lines[-1], flush=True)
    sc = load_scenario(MODELS["chronic pain (default)"])
    psa = run_psa(sc, 10_000)
    wtp = sc.settings.wtp
    t_evpi = median_time(lambda: analyse_psa(psa, wtp), 5)
    costs = psa["total_cost"].values
    effects = psa["qalys"].values
    x = psa["parameters"].sel(parameter="rr_resp_coach").values
    t_evppi = median_time(lambda: evppi(costs, effects, x, wtp), 5)
    t_evppi_se = median_time(lambda: evppi(costs, effects, x, wtp, n_se=100), 3)
    voi = [
        "",
        "| value of information, default scenario, 10,000 draws, 3 WTP values | time (ms) |",
        "|---|---:|",
        f"| EVPI with acceptability curves and intervals (`analyse_psa`) | {t_evpi * 1e3:,.1f} |",
        f"| EVPPI, one parameter, no SE | {t_evppi * 1e3:,.1f} |",
        f"| EVPPI, one parameter, with SE (100 simulations) | {t_evppi_se * 1e3:,.1f} |",
    ]
    print("\n".join(voi))
    body = "\n".join([
        f"Measured {dt.date.today().isoformat()} on {machine()}; medians of {args.repeat} runs "
        "(100,000 draws: one run) (`python -m benchmarks.psa --write`). In-process, chunks of "
        "10,000 draws; LocalCluster runs: benchmarks/scaleout.py.",
        "",
        *lines,
        *voi,
    ])
    if args.write:
        write_section("psa", "Probabilistic analysis and value of information "
                      "(`benchmarks/psa.py`)", body)

if __name__ == "__main__":
    main()
