"""Benchmark: value of information at 10,000 draws: EVPI and single-parameter EVPPI.

For the THR model and the default chronic-pain scenario, a 10,000-draw PSA is run in-process
(not timed), then timed on it:

- EVPI: ``analyse_psa`` at the scenario's WTP values (acceptability, its frontier, EVPI,
  expected loss and intervals: what ``vbhc run`` computes for psa_summary.nc);
- EVPPI per parameter, by the spline regression (``gam``) without and with a standard error
  (``n_se=100``) and by Gaussian-process regression (``gp``): ``evppi_table`` of one
  parameter at the scenario's WTP values, for every sampled parameter.

EVPI: median of --repeat runs. EVPPI: each parameter's median of --repeat runs, then the
median (and the range) over the parameters. The GP and spline EVPPI at the first WTP are
compared too, and both against the exact EVPPI of two synthetic PSAs (a weakly curved
single parameter; two interacting parameters) at 300, 1,000 and 10,000 draws.
--write replaces the voi section of docs/benchmarks.md.
Usage: python -m benchmarks.voi [--repeat 5] [--draws 10000] [--accuracy-reps 20] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
from pathlib import Path

import numpy as np

from benchmarks.cohort import machine, median_time
from benchmarks.docs_section import write_section
from vbhc_model.allocator import tune_allocator
from vbhc_model.analysis.acceptability import analyse_psa
from vbhc_model.analysis.voi import evppi, evppi_table, varying_parameters
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.scenario import load_scenario
from vbhc_model.threads import n_threads

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "THR (DMHEE ch. 4 PSA)": ROOT / "scenarios/reference/thr_dmhee.yaml",
    "chronic pain (default)": ROOT / "scenarios/chronic_pain_us.yaml",
}
VARIANTS = {  # label: evppi_table keywords
    "GAM": {"method": "gam"},
    "GAM + SE": {"method": "gam", "n_se": 100},
    "GP": {"method": "gp"},
}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f}" if seconds >= 0.01 else f"{seconds * 1e3:,.1f}"


def _one_parameter(rng: np.random.Generator, n: int):
    """A: incremental cost 100 + 60 x + 25 x^2, effect 0.012 + 0.004 tanh(2 x) (weak
    curvature), plus noise from other parameters; WTP 20,000."""
    x = rng.normal(size=n)
    costs = np.column_stack([np.zeros(n), 100 + 60 * x + 25 * x**2 + 150 * rng.normal(size=n)])
    effects = np.column_stack([np.zeros(n), 0.012 + 0.004 * np.tanh(2 * x)
                               + 0.01 * rng.normal(size=n)])
    return costs, effects, x, 20_000.0


def _inb_one(x: np.ndarray) -> np.ndarray:
    return 20_000.0 * (0.012 + 0.004 * np.tanh(2 * x)) - (100 + 60 * x + 25 * x**2)


def _two_parameters(rng: np.random.Generator, n: int):
    """B: incremental net benefit 0.3 tanh(1.5 x1 x2) + 0.2 exp(-x1^2) x2 - 0.05 plus noise
    (strong interaction); WTP 1."""
    x = rng.normal(size=(n, 2))
    effects = np.column_stack([np.zeros(n), _inb_two(x) + 0.3 * rng.normal(size=n)])
    return np.zeros((n, 2)), effects, x, 1.0


def _inb_two(x: np.ndarray) -> np.ndarray:
    return 0.3 * np.tanh(1.5 * x[:, 0] * x[:, 1]) + 0.2 * np.exp(-x[:, 0] ** 2) * x[:, 1] - 0.05


def accuracy(reps: int) -> list[str]:
    """Bias and RMSE of GAM and GP EVPPI against the exact value (from 2,000,000 draws of
    the conditional expectation) over ``reps`` simulated PSAs per size."""
    lines = ["| example | draws | exact EVPPI | GAM bias | GAM RMSE | GP bias | GP RMSE |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    big = np.random.default_rng(99)
    for label, make, inb, shape in (
            ("A: one parameter, weak curvature", _one_parameter, _inb_one, (2_000_000,)),
            ("B: two interacting parameters", _two_parameters, _inb_two, (2_000_000, 2))):
        g = inb(big.normal(size=shape))
        exact = np.maximum(g, 0).mean() - max(g.mean(), 0.0)
        for n in (300, 1_000, 10_000):
            err = {"gam": [], "gp": []}
            for rep in range(reps):
                costs, effects, x, wtp = make(np.random.default_rng(rep), n)
                for method, errors in err.items():
                    value = evppi(costs, effects, x, [wtp], method=method, seed=rep)["evppi"][0]
                    errors.append(value - exact)
            cells = [f"{np.mean(err[m]):+.3g} | {np.sqrt(np.mean(np.square(err[m]))):.3g}"
                     for m in ("gam", "gp")]
            lines.append(f"| {label} | {n:,} | {exact:.3g} | {cells[0]} | {cells[1]} |")
            print(lines[-1], flush=True)
    return lines


def time_model(label: str, path: Path, draws: int, repeat: int) -> tuple[list[str], str, str]:
    """The model's table row, its line on the aim, and its GP-against-GAM line."""
    sc = load_scenario(path)
    wtp = list(sc.settings.wtp)
    effect = sc.settings.effect
    psa = run_psa(sc, draws)
    names = varying_parameters(psa)
    t_evpi = median_time(lambda: analyse_psa(psa, wtp, effect), repeat)
    row = [label, f"{draws:,}", str(psa.sizes["strategy"]), str(len(names)), str(len(wtp)),
           ms(t_evpi)]
    print(f"{label}: EVPI {t_evpi * 1e3:.1f} ms", flush=True)
    values: dict[str, dict[str, float]] = {name: {} for name in names}
    medians = {}
    for variant, kwargs in VARIANTS.items():
        per_param = []
        for name in names:
            def one(name: str = name, kwargs: dict = kwargs):
                return evppi_table(psa, {name: [name]}, wtp, effect, **kwargs)

            per_param.append(median_time(one, repeat))
            if variant in ("GAM", "GP"):
                values[name][variant] = float(one()["evppi"][0, 0])
        medians[variant] = med = statistics.median(per_param)
        row.append(f"{ms(med)} ({ms(min(per_param))}-{ms(max(per_param))})")
        print(f"  EVPPI {variant}: median {med * 1e3:.1f} ms per parameter "
              f"({min(per_param) * 1e3:.1f}-{max(per_param) * 1e3:.1f})", flush=True)
    aim = f"{label}: " + ", ".join(f"{variant} {ms(med)} ms ({'met' if med < 0.05 else 'not met'})"
                                   for variant, med in medians.items())
    # GP against the spline regression, where the EVPPI is material (>= 1% of the EVPI)
    evpi0 = float(analyse_psa(psa, wtp[:1], effect)["evpi"][0])
    material = {n: v for n, v in values.items() if max(v.values()) >= 0.01 * evpi0}
    top = sorted(values, key=lambda n: -max(values[n].values()))[:3]
    text = f"{label}, WTP {wtp[0]:,.0f} (EVPI {evpi0:,.2f}): "
    if material:
        ratio = np.array([v["GP"] / v["GAM"] if v["GAM"] > 0 else np.inf
                          for v in material.values()])
        text += (f"GP / GAM median {np.median(ratio):.3f}, range {ratio.min():.2f}-"
                 f"{ratio.max():.2f} over the {len(material)} parameters with EVPPI at "
                 "least 1% of the EVPI; largest: ")
    else:
        text += "no single parameter has EVPPI of 1% of the EVPI; largest: "
    text += ", ".join(f"{n} {values[n]['GAM']:,.3g} (GAM) vs {values[n]['GP']:,.3g} (GP)"
                      for n in top) + "."
    print("  " + text, flush=True)
    return row, aim, text


def main() -> None:
    tune_allocator()  # as the CLI does: keep freed arrays (vbhc_model.allocator)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--accuracy-reps", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    results = [time_model(label, path, args.draws, args.repeat) for label, path in MODELS.items()]
    table = [("| model | draws | strategies | parameters | WTP values | EVPI (ms) "
              "| EVPPI GAM (ms per parameter) | EVPPI GAM + SE, n_se=100 | EVPPI GP |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    table += ["| " + " | ".join(row) + " |" for row, _, _ in results]
    body = "\n".join([
        (f"Measured {dt.date.today().isoformat()} on {machine()}; {n_threads()} threads; "
         f"EVPI: median of {args.repeat} runs; EVPPI: the median over the sampled parameters "
         f"(range in brackets) of each parameter's median of {args.repeat} runs, all the "
         "scenario's WTP values in one pass (`python -m benchmarks.voi --write`)."),
        "",
        *table,
        "",
        ("Aim (issue 3): EVPPI under 50 ms per parameter at 10,000 draws (GAM, the spline "
         "regression, is the default method; medians over the parameters): "
         + "; ".join(aim for _, aim, _ in results) + "."),
        "",
        "GP against GAM (EVPPI per person at the first WTP, same PSA):",
        "",
        *[f"- {text}" for _, _, text in results],
        "",
        (f"Accuracy on two synthetic PSAs with a known EVPPI ({args.accuracy_reps} simulated "
         "PSAs per size; bias and root mean square error per person). A: x ~ N(0, 1), "
         "incremental cost 100 + 60x + 25x² + N(0, 150²), effect 0.012 + 0.004 tanh(2x) + "
         "N(0, 0.01²), WTP 20,000. B: x1, x2 ~ N(0, 1), incremental net benefit "
         "0.3 tanh(1.5 x1 x2) + 0.2 exp(-x1²) x2 - 0.05 + N(0, 0.3²). Exact EVPPI from "
         "2,000,000 draws of the conditional mean."),
        "",
        *accuracy(args.accuracy_reps),
    ])
    print("\n" + body)
    if args.write:
        write_section("voi", "Value of information (`benchmarks/voi.py`)", body)


if __name__ == "__main__":
    main()
