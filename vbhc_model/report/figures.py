"""Figures of a run: functions take results and return a matplotlib Figure (no arithmetic
beyond plotting). ``write_figures`` saves them as PNG and SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from vbhc_model import dims  # noqa: E402

MAX_POINTS = 2000  # per strategy on the CE plane; enough to show the cloud


def _labels(ds: xr.Dataset) -> list[str]:
    if "strategy_label" in ds.coords:
        return [str(v) for v in ds["strategy_label"].values]
    return [str(v) for v in ds[dims.STRATEGY].values]


def ce_plane(psa: xr.Dataset, effect: str = "qalys", reference: int = 0) -> plt.Figure:
    """Incremental cost against incremental effect of each strategy vs the reference, per draw."""
    fig, ax = plt.subplots(figsize=(7, 5))
    cost = psa["total_cost"].transpose(dims.DRAW, dims.STRATEGY).values
    eff = psa[effect].transpose(dims.DRAW, dims.STRATEGY).values
    labels = _labels(psa)
    step = max(1, cost.shape[0] // MAX_POINTS)
    for s in range(cost.shape[1]):
        if s == reference:
            continue
        dc, de = cost[::step, s] - cost[::step, reference], eff[::step, s] - eff[::step, reference]
        # rasterized: thousands of points stay light in the SVG
        cloud = ax.scatter(de, dc, s=4, alpha=0.3, label=labels[s], rasterized=True)
        ax.scatter(de.mean(), dc.mean(), s=70, marker="X", color=cloud.get_facecolor()[0][:3],
                   edgecolor="black")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    cur = psa.attrs.get("currency", "")
    ax.set_xlabel(f"incremental {effect.replace('_', ' ')} vs {labels[reference]}")
    ax.set_ylabel(f"incremental cost ({cur})")
    ax.set_title("Cost-effectiveness plane (X: means)")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    return fig


def acceptability_curves(summary: xr.Dataset) -> plt.Figure:
    """CEAC of every strategy, with the acceptability frontier."""
    fig, ax = plt.subplots(figsize=(7, 5))
    wtp = summary[dims.WTP].values
    for s, label in enumerate(_labels(summary)):
        ax.plot(wtp, summary["ceac"].values[s], marker="o", label=label)
    ax.plot(wtp, summary["ceaf"].values, color="black", lw=3, alpha=0.35,
            label="acceptability frontier")
    ax.set_ylim(0, 1)
    ax.set_xlabel("willingness to pay per unit of effect")
    ax.set_ylabel("probability cost-effective")
    ax.set_title("Cost-effectiveness acceptability curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def evpi_curve(summary: xr.Dataset) -> plt.Figure:
    """EVPI per person by willingness to pay."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(summary[dims.WTP].values, summary["evpi"].values, marker="o")
    ax.set_xlabel("willingness to pay per unit of effect")
    ax.set_ylabel("EVPI per person")
    ax.set_title("Expected value of perfect information")
    fig.tight_layout()
    return fig


def evppi_bars(table: xr.Dataset, wtp_index: int = 0, top: int = 15) -> plt.Figure:
    """EVPPI of the top parameters (or groups) at one willingness to pay."""
    t = table.isel({dims.WTP: wtp_index})
    order = np.argsort(-t["evppi"].values)[:top]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    ax.barh([str(table["group"].values[i]) for i in order][::-1], t["evppi"].values[order][::-1])
    ax.set_xlabel(f"EVPPI per person at {float(t[dims.WTP]):,.0f}")
    ax.set_title("Expected value of partial perfect information")
    fig.tight_layout()
    return fig


def write_figures(figures: dict[str, plt.Figure], folder: Path) -> None:
    """Save each figure as ``name.png`` and ``name.svg`` in ``folder``, then close it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(folder / f"{name}.png", dpi=120)
        fig.savefig(folder / f"{name}.svg")
        plt.close(fig)
