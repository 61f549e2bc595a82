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
from vbhc_model.defaults import PLANE_POINTS as MAX_POINTS  # noqa: E402 (per strategy)
from vbhc_model.report.table import money, short_label  # noqa: E402


def _labels(ds: xr.Dataset) -> list[str]:
    if "strategy_label" in ds.coords:
        return [str(v) for v in ds["strategy_label"].values]
    return [str(v) for v in ds[dims.STRATEGY].values]


#: How an effect variable is named on an axis: (one, several).
EFFECT_UNITS = {"qalys": ("QALY", "QALYs"), "life_years": ("life year", "life years")}


def units(ds: xr.Dataset, effect: str | None = None) -> tuple[str, str, str]:
    """``(money, per effect, effects)`` for axis labels, from a result's attrs: ``"USD 2025"``,
    ``"USD 2025 per QALY"``, ``"QALYs"`` (the currency and price year when the result carries
    them; plain "cost" units otherwise)."""
    cost = money(ds.attrs) or "cost units"
    name = effect or str(ds.attrs.get("effect", "qalys"))
    one, several = EFFECT_UNITS.get(name, (name.replace("_", " "), name.replace("_", " ")))
    return cost, f"{cost} per {one}", several


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
        # rasterized: thousands of points stay light in the SVG; colour C<s> as in every
        # other figure (a strategy keeps its colour whichever is the reference)
        ax.scatter(de, dc, s=4, alpha=0.3, label=labels[s], rasterized=True, color=f"C{s}")
        ax.scatter(de.mean(), dc.mean(), s=70, marker="X", color=f"C{s}", edgecolor="black")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    money, _, effects = units(psa, effect)
    # the willingness-to-pay lines: below a line a strategy is cost-effective at that threshold
    x_lo, x_hi = ax.get_xlim()
    y_lo, y_hi = ax.get_ylim()
    xs = np.array([x_lo, x_hi])
    for i, lam in enumerate(np.atleast_1d(psa.attrs.get("wtp", []))):
        ax.plot(xs, lam * xs, color="0.35", lw=0.9, ls=("--", ":", "-.")[i % 3],
                label=f"{float(lam):,.0f} {money} per {EFFECT_UNITS.get(effect, (effect,))[0]}")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel(f"incremental {effects} vs {labels[reference]}")
    ax.set_ylabel(f"incremental cost ({money})")
    ax.set_title("Cost-effectiveness plane (X: means)")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    return fig


def acceptability_curves(summary: xr.Dataset) -> plt.Figure:
    """CEAC of every strategy, with the acceptability frontier."""
    fig, ax = plt.subplots(figsize=(7, 5))
    wtp = summary[dims.WTP].values
    for s, label in enumerate(_labels(summary)):
        ax.plot(wtp, summary["ceac"].values[s], label=label)
    ax.plot(wtp, summary["ceaf"].values, color="black", lw=3, alpha=0.35,
            label="acceptability frontier")
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"willingness to pay ({units(summary)[1]})")
    ax.set_ylabel("probability cost-effective")
    ax.set_title("Cost-effectiveness acceptability curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def evpi_curve(summary: xr.Dataset) -> plt.Figure:
    """EVPI per person (and for the population, if known) by willingness to pay."""
    fig, ax = plt.subplots(figsize=(7, 4))
    wtp = summary[dims.WTP].values
    ax.plot(wtp, summary["evpi"].values)
    money, per, _ = units(summary)
    ax.set_xlabel(f"willingness to pay ({per})")
    ax.set_ylabel(f"EVPI per person ({money})")
    if "population_evpi" in summary:
        right = ax.twinx()
        right.plot(wtp, summary["population_evpi"].values, alpha=0)  # same curve, second scale
        right.set_ylabel(f"EVPI for the population ({money})")
    ax.set_title("Expected value of perfect information")
    fig.tight_layout()
    return fig


def expected_loss(summary: xr.Dataset) -> plt.Figure:
    """Expected loss of choosing each strategy, by willingness to pay (lower is better)."""
    fig, ax = plt.subplots(figsize=(7, 5))
    wtp = summary[dims.WTP].values
    for s, label in enumerate(_labels(summary)):
        ax.plot(wtp, summary["expected_loss"].values[s], label=label)
    money, per, _ = units(summary)
    ax.set_xlabel(f"willingness to pay ({per})")
    ax.set_ylabel(f"expected loss per person ({money})")
    ax.set_title("Expected loss curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def evppi_bars(table: xr.Dataset, wtp_index: int = 0, top: int = 15) -> plt.Figure:
    """EVPPI of the top parameters (or groups) at one willingness to pay."""
    t = table.isel({dims.WTP: wtp_index})
    order = np.argsort(-t["evppi"].values)[:top]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    ax.barh([short_label(str(table["group"].values[i])) for i in order][::-1],
            t["evppi"].values[order][::-1])
    if "evpi" in t:  # no EVPPI can exceed it
        ax.axvline(float(t["evpi"]), color="0.3", linestyle="--", linewidth=1)
        ax.annotate("EVPI ", (float(t["evpi"]), 0.02), xycoords=("data", "axes fraction"),
                    ha="right", va="bottom", fontsize=8, color="0.3")
    money, per, _ = units(table)
    ax.set_xlabel(f"EVPPI per person ({money}) at {float(t[dims.WTP]):,.0f} {per}")
    ax.set_title("Expected value of partial perfect information")
    fig.tight_layout()
    return fig


def trace_figure(trace: xr.DataArray, strategy_labels: list[str], state_labels: list[str],
                 cycle_length: float | None = None) -> plt.Figure:
    """The Markov trace: the share of the cohort in each state over time, one panel per
    strategy (stacked areas; a state keeps its colour in every panel)."""
    tr = trace.transpose(dims.STRATEGY, dims.CYCLE, dims.STATE).values
    n = tr.shape[0]
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows + 0.6), sharey=True,
                             squeeze=False)
    x = np.arange(tr.shape[1]) * (cycle_length or 1.0)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        ax.stackplot(x, tr[i].T, labels=state_labels, colors=[f"C{k}" for k in range(tr.shape[2])],
                     alpha=0.85)
        label = strategy_labels[i]
        ax.set_title(label if len(label) <= 40 else label[:39] + "…", fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("years" if cycle_length else "cycle", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("share of the cohort", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    ncol = min(len(labels), 2)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.suptitle("Markov trace: where the cohort is over time", fontsize=10)
    fig.tight_layout(rect=(0, 0.035 * (-(-len(labels) // ncol)) + 0.02, 1, 1))
    return fig


def plan_figure(summary: xr.Dataset, role_labels: dict[str, str], cost: str,
                intervals: bool) -> plt.Figure:
    """A service plan by calendar year (``plan.nc``): the budget impact (the new mix's budget
    less the current mix's), and each role's FTE needed against those available (95%
    intervals as error bars when the plan had draws)."""
    years = summary["calendar_year"].values
    roles = list(role_labels)
    fig, axes = plt.subplots(1, 2 if roles else 1, figsize=(9.6 if roles else 5.0, 3.6),
                             squeeze=False)
    ax = axes[0][0]
    scale, word = (1e6, "millions") if float(abs(summary["total_budget_increment_mean"]).max()
                                             ) >= 1e6 else (1e3, "thousands")
    inc = summary["total_budget_increment_mean"].values / scale
    err = None
    if intervals:
        err = np.vstack([inc - summary["total_budget_increment_low"].values / scale,
                         summary["total_budget_increment_high"].values / scale - inc])
    ax.bar(years, inc, 0.6, yerr=err, capsize=3, color=["C3" if v > 0 else "C2" for v in inc])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(years)
    ax.set_xlabel("calendar year")
    ax.set_ylabel(f"{cost} {word} (undiscounted)")
    ax.set_title("Budget impact: new mix - current mix", fontsize=10)
    if roles:
        ax = axes[0][1]
        width = 0.8 / len(roles)
        for k, role in enumerate(roles):
            x = years + (k - (len(roles) - 1) / 2) * width
            need = summary[f"fte_needed_{role}_mean"].sel(mix="new").values
            err = None
            if intervals:
                lo = summary[f"fte_needed_{role}_low"].sel(mix="new").values
                hi = summary[f"fte_needed_{role}_high"].sel(mix="new").values
                err = np.vstack([need - lo, hi - need])
            ax.bar(x, need, width, yerr=err, capsize=3, color=f"C{k + 1}",
                   label=f"{role_labels[role]}: needed")
            have = summary["fte_available"].sel(plan_role=role).values
            ax.plot(x, have, "_", markersize=22, markeredgewidth=2.5, color="black",
                    label="available" if k == 0 else None)
        ax.set_xticks(years)
        ax.set_xlabel("calendar year")
        ax.set_ylabel("full-time equivalents (FTE)")
        ax.set_title("Clinicians needed (new mix) and available", fontsize=10)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def write_figures(figures: dict[str, plt.Figure], folder: Path) -> None:
    """Save each figure as ``name.png`` and ``name.svg`` in ``folder``, then close it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        for fmt in ("png", "svg"):
            save(fig, folder / f"{name}.{fmt}", fmt)
        plt.close(fig)


def save(fig: plt.Figure, target, fmt: str) -> None:
    """Save ``fig`` as PNG (120 dpi, quick compression) or SVG. SVG text stays text, not
    outlines: selectable, read by screen readers, smaller and quicker to write."""
    if fmt == "png":
        # zlib level 1: a tenth larger than the default 6 for these plots, and their encoding
        # no longer a fifth of the time of a run's figures (measured)
        fig.savefig(target, format="png", dpi=120, pil_kwargs={"compress_level": 1})
    else:
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            fig.savefig(target, format="svg")


def tornado(one_way: xr.Dataset, top: int = 15) -> plt.Figure:
    """Tornado diagram: incremental net benefit of the base-case optimal strategy at each
    parameter's low and high value, widest swing first."""
    t = one_way.isel({dims.PARAMETER: slice(0, top)})
    names = [str(p) for p in t[dims.PARAMETER].values][::-1]
    base = one_way.attrs["base_inmb"]
    lo, hi = t["inmb_low"].values[::-1], t["inmb_high"].values[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.8))
    y = np.arange(len(names))
    ax.barh(y, lo - base, left=base, color="#4c72b0", label="parameter at low value")
    ax.barh(y, hi - base, left=base, color="#dd8452", label="parameter at high value")
    ax.axvline(base, color="black", lw=1)
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, names)
    money, per, _ = units(one_way)
    ax.set_xlabel(f"incremental net benefit ({money}) of {one_way.attrs['strategy']} vs the "
                  f"best other strategy at {one_way.attrs['wtp']:,.0f} {per}")
    ax.set_title("One-way sensitivity analysis")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def two_way_map(grid: xr.Dataset) -> plt.Figure:
    """The optimal strategy over a grid of two parameters."""
    a, b = grid["optimal"].dims
    labels = sorted(set(grid["optimal"].values.ravel()))
    codes = np.vectorize(labels.index)(grid["optimal"].values)
    fig, ax = plt.subplots(figsize=(7, 5))
    mesh = ax.pcolormesh(grid[b].values, grid[a].values, codes, shading="nearest",
                         cmap=plt.get_cmap("tab10", len(labels)), vmin=-0.5,
                         vmax=len(labels) - 0.5)
    bar = fig.colorbar(mesh, ticks=range(len(labels)))
    bar.ax.set_yticklabels(labels)
    ax.set_xlabel(b)
    ax.set_ylabel(a)
    ax.set_title(f"Optimal strategy at {grid.attrs['wtp']:,.0f}")
    fig.tight_layout()
    return fig


def fit_trace(posterior: xr.Dataset, variables: list[str]) -> plt.Figure:
    """Trace (left) and posterior histogram by chain (right) of each fitted output."""
    fig, axes = plt.subplots(len(variables), 2, figsize=(9, 1.8 * len(variables) + 0.6),
                             squeeze=False)
    for row, name in zip(axes, variables):
        values = posterior[name].transpose("chain", "draw").values
        for c, chain in enumerate(values):
            row[0].plot(chain, lw=0.4, alpha=0.8, label=f"chain {c}")
            row[1].hist(chain, bins=40, histtype="step", density=True)
        row[0].set_ylabel(name, fontsize=8)
    axes[0][0].set_title("trace")
    axes[0][1].set_title("posterior by chain")
    fig.tight_layout()
    return fig


def fit_predictive(observed: xr.Dataset, predictive: xr.Dataset) -> plt.Figure:
    """Posterior predictive check: each observed value against the 95% interval and median of
    its posterior predictive distribution."""
    names = [v for v in observed.data_vars if v in predictive.data_vars]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.6),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        obs = np.atleast_1d(observed[name].values).ravel()
        pred = predictive[name].values.reshape(-1, obs.size)
        lo, mid, hi = np.quantile(pred, [0.025, 0.5, 0.975], axis=0)
        x = np.arange(obs.size)
        ax.vlines(x, lo, hi, color="#4c72b0", lw=6, alpha=0.35, label="95% predictive interval")
        ax.scatter(x, mid, color="#4c72b0", s=20, label="predictive median")
        ax.scatter(x, obs, color="black", marker="x", s=40, label="observed")
        ax.set_xticks(x)
        ax.set_title(name, fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Posterior predictive check")
    fig.tight_layout()
    return fig
