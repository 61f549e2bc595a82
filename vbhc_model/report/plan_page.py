"""The service plan in the report (``vbhc report RESULTS --plan PLAN``): ``plan.nc`` as tables
of numbers (:func:`plan_tables`, the workbook's sheets) and as the page's "Service plan"
section (:func:`plan_section`: the same tables formatted for a reader, a figure, a lead line).

The plan's numbers are ``vbhc plan``'s (:func:`vbhc_model.report.frames.plan_summary`): means
over the PSA draws with 95% intervals, or the base case; nothing is recomputed here but sums
over calendar years.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import xarray as xr

from vbhc_model import dims
from vbhc_model.errors import VbhcError
from vbhc_model.report.frames import unstack_stats
from vbhc_model.report.markup import esc, html_table, inline_svg
from vbhc_model.report.table import and_list, money

__all__ = ["PLAN_CAPTION", "find_plan", "plan_section", "plan_tables"]

PLAN_CAPTION = ("Service plan by calendar year: the budget impact (the new mix's budget less "
                "the current mix's; below zero: a saving) and the clinicians (full-time "
                "equivalents) each role needs under the new mix against those available; "
                "error bars: 95% intervals over the PSA when the plan had draws.")


def find_plan(results: Path, plan: Path | None, run_attrs: dict) -> xr.Dataset | None:
    """The plan to report: ``plan/plan.nc`` when given, else ``results/plan.nc`` if there;
    None without one.

    Raises
    ------
    VbhcError
        ``plan`` holds no plan.nc, or it was planned from another scenario file (or another
        version of it) than the run.
    """
    if plan is None:
        if not (results / "plan.nc").is_file():
            return None
        plan = results
    path = Path(plan) / "plan.nc"
    if not path.is_file():
        raise VbhcError(f"{plan}: no plan.nc here; give --plan a folder written by 'vbhc plan'")
    with xr.open_dataset(path) as ds:
        summary = unstack_stats(ds.load())
    ours, theirs = run_attrs.get("scenario_sha256"), summary.attrs.get("scenario_sha256")
    if ours and theirs and ours != theirs:
        if summary.attrs.get("scenario_file") == run_attrs.get("scenario_file"):
            raise VbhcError(
                f"{path} and the run in {results} come from two versions of "
                f"{run_attrs.get('scenario_file')} (SHA-256 {theirs[:12]}... and "
                f"{ours[:12]}...): plan and run the same version")
        raise VbhcError(
            f"{path} was planned from {summary.attrs.get('scenario_file', 'another scenario')} "
            f"(SHA-256 {theirs[:12]}...), the run in {results} from "
            f"{run_attrs.get('scenario_file', 'another')} ({ours[:12]}...): plan and run the "
            "same scenario file")
    return summary


def _labels(summary: xr.Dataset, scenario) -> dict[str, dict[str, str]]:
    """Display labels of strategies, roles, cost categories and mixes (codes without a
    scenario)."""

    def pretty(code: str) -> str:
        return code.replace("_", " ").capitalize()

    out: dict[str, dict[str, str]] = {"strategy": {}, "role": {}, "category": {}, "mix": {}}
    for s in summary[dims.STRATEGY].values:
        st = scenario.strategies.get(str(s)) if scenario is not None else None
        out["strategy"][str(s)] = (st.label if st is not None and st.label else pretty(str(s)))
    roles = summary["plan_role"].values if "plan_role" in summary.dims else []
    for r in roles:
        ro = scenario.roles.get(str(r)) if scenario is not None else None
        out["role"][str(r)] = ro.label if ro is not None and ro.label else pretty(str(r))
    for k in summary.data_vars:
        if k.startswith("budget_") and k.endswith("_mean") and "_increment" not in k:
            c = k[len("budget_"):-len("_mean")]
            cat = scenario.cost_categories.get(c) if scenario is not None else None
            out["category"][c] = cat.label if cat is not None and cat.label else pretty(c)
    for m in summary["mix"].values:
        out["mix"][str(m)] = {"current": "Current mix", "new": "New mix"}.get(
            str(m), f"Alternative: {str(m).replace('_', ' ')}")
    return out


def _stat(summary: xr.Dataset, key: str, **at) -> tuple[float, float, float]:
    return tuple(float(summary[f"{key}_{b}"].sel(**at)) for b in ("mean", "low", "high"))


def plan_tables(summary: xr.Dataset, scenario=None) -> dict[str, tuple[str, pd.DataFrame]]:
    """The plan's tables as numbers, ``{sheet name: (caption, frame)}``: the budget by year,
    by cost category, the clinicians, the patients and waiting, the mixes' net benefit and
    the quadruple-aim dashboard (the workbook's ``plan_*`` sheets; the page formats them)."""
    from vbhc_model.report.frames import plan_dashboard

    lab = _labels(summary, scenario)
    cur = money(summary.attrs) or "cost units"
    years = [int(y) for y in summary["calendar_year"].values]
    out: dict[str, tuple[str, pd.DataFrame]] = {}

    rows = []
    for y in years:
        at = {"calendar_year": y}
        new, cur_mix = (_stat(summary, "total_budget", mix=m, **at) for m in ("new", "current"))
        inc = _stat(summary, "total_budget_increment", **at)
        rows.append({"calendar_year": y, "budget_new": new[0], "budget_new_low": new[1],
                     "budget_new_high": new[2], "budget_current": cur_mix[0],
                     "increment": inc[0], "increment_low": inc[1], "increment_high": inc[2],
                     "pmpm_new": _stat(summary, "pmpm", mix="new", **at)[0],
                     "pmpm_current": _stat(summary, "pmpm", mix="current", **at)[0],
                     "qalys_new": _stat(summary, "qalys", mix="new", **at)[0],
                     "qalys_increment": _stat(summary, "qalys_increment", **at)[0]})
    out["plan_budget"] = (f"Budget by calendar year ({cur}, undiscounted)", pd.DataFrame(rows))

    outside = {c.strip() for c in str(summary.attrs.get("outside_budget", "")).split(",")
               if c.strip()}
    rows = []
    for c, label in lab["category"].items():
        for y in years:
            m, lo, hi = _stat(summary, f"budget_{c}", mix="new", calendar_year=y)
            rows.append({"category": c, "label": label, "in_budget": c not in outside,
                         "calendar_year": y, "new": m, "new_low": lo, "new_high": hi,
                         "increment": _stat(summary, f"budget_{c}_increment",
                                            calendar_year=y)[0]})
    out["plan_categories"] = (f"Budget of the new mix by cost category ({cur}, undiscounted)",
                              pd.DataFrame(rows))

    rows = []
    for r, label in lab["role"].items():
        for y in years:
            need = _stat(summary, f"fte_needed_{r}", mix="new", calendar_year=y)
            row = {"role": r, "label": label, "calendar_year": y, "fte_needed": need[0],
                   "fte_needed_low": need[1], "fte_needed_high": need[2],
                   "fte_available": float(summary["fte_available"].sel(plan_role=r,
                                                                       calendar_year=y))}
            for name in ("occupancy", "caseload_per_fte", "wait_weeks", "backlog",
                         "dropped_out"):
                if f"queue_{name}_{r}_mean" in summary:
                    row[name] = float(summary[f"queue_{name}_{r}_mean"].sel(calendar_year=y))
            rows.append(row)
    if rows:
        out["plan_clinicians"] = ("Clinicians of the new mix: FTE needed (hours / productive "
                                  "hours per FTE) against available; occupancy of the places, "
                                  "caseload per FTE (patients in the programme at a time), "
                                  "mean wait (weeks), patients waiting at the year's end"
                                  + (" and who gave up waiting" if any(
                                      "dropped_out" in r for r in rows) else ""),
                                  pd.DataFrame(rows))

    start = summary["starting"]
    rows = []
    for y in years:
        row = {"calendar_year": y}
        for s, label in lab["strategy"].items():
            row[f"starting_{s}"] = float(start.sel(mix="new", calendar_year=y, strategy=s))
        if "responders_mean" in summary:
            for m in ("new", "current"):
                row[f"responders_{m}"] = float(summary["responders_mean"].sel(
                    mix=m, calendar_year=y))
        if "completing_mean" in summary:
            done, began = (float(summary[f"{k}_mean"].sel(mix="new", calendar_year=y))
                           for k in ("completing", "programme_starters"))
            row.update(completing=done, programme_starters=began,
                       completion=done / began if began > 0 else float("nan"))
        for name in ("qalys_lost_waiting", "net_benefit_lost"):
            if f"queue_{name}_mean" in summary:
                row[name] = float(summary[f"queue_{name}_mean"].sel(calendar_year=y))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.loc[:, (frame != 0).any(axis=0) | (frame.columns == "calendar_year")]
    out["plan_patients"] = ("Patients of the new mix: starting each strategy, responding "
                            "(in an improved state, on average over the year), completing a "
                            "programme, and what waiting costs", frame)

    if "net_benefit_mean" in summary:
        rows = []
        for m, label in lab["mix"].items():
            for w in summary[dims.WTP].values:
                nb = _stat(summary, "net_benefit", mix=m, wtp=w)
                gain = _stat(summary, "net_benefit_gain", mix=m, wtp=w)
                rows.append({"mix": m, "label": label, "wtp": float(w), "net_benefit": nb[0],
                             "net_benefit_low": nb[1], "net_benefit_high": nb[2],
                             "gain": gain[0], "gain_low": gain[1], "gain_high": gain[2],
                             "p_best": float(summary["p_best_mix"].sel(mix=m, wtp=w))})
        out["plan_mixes"] = (f"Net monetary benefit of each mix over the plan ({cur}, "
                             "undiscounted; QALYs and costs of waiting included)",
                             pd.DataFrame(rows))
    out["plan_dashboard"] = ("The quadruple aim: the new mix over the plan (means)",
                             plan_dashboard(summary))
    return out


def _amount(x: float) -> str:
    """A sum of money for a reader: three significant figures, in millions from a million."""
    if not math.isfinite(x):
        return "none" if math.isnan(x) else "unbounded"
    a = abs(x)
    if a >= 1e9:
        return f"{x / 1e9:,.2f} billion"
    if a >= 1e6:
        return f"{x / 1e6:,.{2 if a < 1e7 else 1}f} million"
    return f"{float(f'{x:.3g}'):,.0f}"


def _with_interval(m: float, lo: float, hi: float, fmt, psa: bool) -> str:
    """``m (lo to hi)``, the interval's shared unit word said once: 43.3 million (36.9 to
    50.4)."""
    if not psa:
        return fmt(m)
    texts = [fmt(v) for v in (m, lo, hi)]
    words = {t.rsplit(" ", 1)[-1] for t in texts if " " in t}
    if len(words) == 1 and all(t.endswith(" " + next(iter(words))) for t in texts):
        texts[1] = texts[1].rsplit(" ", 1)[0]
        texts[2] = texts[2].rsplit(" ", 1)[0]
    return f"{texts[0]} ({texts[1]} to {texts[2]})"


def _fixed(digits: int):
    return lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        "unbounded" if math.isinf(v) else f"{v:,.{digits}f}")


def plan_section(summary: xr.Dataset, scenario=None) -> str:
    """The page's "Service plan" section: a lead line, the tables of :func:`plan_tables`
    formatted, and the plan figure (inline SVG)."""
    tables = plan_tables(summary, scenario)
    lab = _labels(summary, scenario)
    psa = int(summary.attrs.get("n_draws", 1)) > 1
    cur = money(summary.attrs) or "cost units"
    years = [int(y) for y in summary["calendar_year"].values]
    parts = ['<section id="plan"><h2>Service plan</h2>']
    budget = tables["plan_budget"][1]
    impact = float(budget["increment"].sum())
    gained = float(budget["qalys_increment"].sum())
    lead = (f"Over {len(years)} years the new mix costs {_amount(abs(impact))} {esc(cur)} "
            f"{'more' if impact > 0 else 'less'} than the current mix and gains "
            f"{gained:,.1f} QALYs")
    if "plan_mixes" in tables:
        mixes = tables["plan_mixes"][1]
        grouped: dict[str, list[str]] = {}
        for w, part in mixes.groupby("wtp", sort=False):
            grouped.setdefault(str(part.loc[part["net_benefit"].idxmax(), "label"]),
                               []).append(f"{w:,.0f}")
        lead += "; the most net benefit: " + "; ".join(
            f"{esc(m)} at {and_list(ws)} {esc(cur)} per QALY" for m, ws in grouped.items())
    variant = summary.attrs.get("variant")
    parts.append(f'<p class="lead">{lead}.</p>')
    parts.append(
        f"<p>{len(years)} calendar years; budgets undiscounted, as budget-impact analyses "
        f"report them (ISPOR good practice), in {esc(cur)}; per member per month (PMPM) over "
        f"{float(summary.attrs.get('members', 0)):,.0f} "
        f"{esc(summary.attrs.get('members_basis', 'members'))}; "
        + (f"means and 95% intervals over {int(summary.attrs['n_draws']):,} PSA draws"
           if psa else "the base case (no PSA draws)")
        + (f"; the scenario's variant {esc(variant)}" if variant else "")
        + ". docs/planning.md says how the plan is computed.</p>")

    def rows_of(frame, cells):
        return [cells(r) for _, r in frame.iterrows()]

    money_cell = lambda r, k: _with_interval(r[k], r[f"{k}_low"], r[f"{k}_high"],  # noqa: E731
                                             _amount, psa)
    parts.append(html_table(
        tables["plan_budget"][0],
        ["calendar year", "new mix", "current mix", "new - current", "PMPM, new mix",
         "PMPM, current mix", "QALYs gained"],
        rows_of(budget, lambda r: [str(int(r["calendar_year"])), money_cell(r, "budget_new"),
                                   _amount(r["budget_current"]), money_cell(r, "increment"),
                                   f"{r['pmpm_new']:,.2f}", f"{r['pmpm_current']:,.2f}",
                                   f"{r['qalys_increment']:,.1f}"])))
    cats = tables["plan_categories"][1]
    rows = []
    for c, part in cats.groupby("category", sort=False):
        first = part.iloc[0]
        name = esc(first["label"]) + ("" if first["in_budget"] else " (outside the budget: "
                                      "societal)")
        rows.append([name] + [_with_interval(r["new"], r["new_low"], r["new_high"], _amount,
                                             psa) for _, r in part.iterrows()])
    parts.append(html_table(tables["plan_categories"][0],
                            ["cost category"] + [f"year {y}" for y in years], rows))
    if "plan_clinicians" in tables:
        clin = tables["plan_clinicians"][1]
        one = _fixed(1)
        header = ["calendar year", "role", "FTE needed", "FTE available"]
        extra = [k for k in ("occupancy", "caseload_per_fte", "wait_weeks", "backlog",
                             "dropped_out") if k in clin]
        header += [{"occupancy": "occupancy of the places",
                    "caseload_per_fte": "patients in the programme at a time per FTE",
                    "wait_weeks": "mean wait (weeks)",
                    "backlog": "patients waiting at year end",
                    "dropped_out": "patients who gave up waiting (usual care instead)"}[k]
                   for k in extra]
        digits = {"occupancy": 2, "caseload_per_fte": 1, "wait_weeks": 1, "backlog": 0,
                  "dropped_out": 0}
        parts.append(html_table(
            tables["plan_clinicians"][0], header,
            rows_of(clin, lambda r: [str(int(r["calendar_year"])), esc(r["label"]),
                                     _with_interval(r["fte_needed"], r["fte_needed_low"],
                                                    r["fte_needed_high"], one, psa),
                                     one(r["fte_available"])]
                    + [_fixed(digits[k])(r[k]) for k in extra]),
            text_cols=(1,)))
    pat = tables["plan_patients"][1]
    starts = [c for c in pat.columns if c.startswith("starting_")]
    header = (["calendar year"] + [f"starting {lab['strategy'][c[len('starting_'):]]}"
                                   for c in starts])
    heads = {"responders_new": "responding, new mix", "responders_current":
             "responding, current mix", "completing": "completing a programme",
             "completion": "completion (completers / starters)",
             "qalys_lost_waiting": "QALYs lost waiting",
             "net_benefit_lost": f"net benefit lost waiting ({cur})"}
    shown = {"completion": lambda v: f"{v:.2f}", "qalys_lost_waiting": lambda v: f"{v:,.2f}",
             "net_benefit_lost": _amount}
    more = [k for k in heads if k in pat]
    header += [heads[k] for k in more]
    parts.append(html_table(
        tables["plan_patients"][0], header,
        rows_of(pat, lambda r: [str(int(r["calendar_year"]))] + [f"{r[c]:,.0f}" for c in starts]
                + [shown.get(k, lambda v: f"{v:,.0f}")(r[k]) for k in more])))
    if "plan_mixes" in tables:
        mixes = tables["plan_mixes"][1]
        wtps = list(dict.fromkeys(mixes["wtp"]))
        rows = []
        for m, part in mixes.groupby("mix", sort=False):
            rows.append([esc(part["label"].iloc[0])] + [
                (_with_interval(r["gain"], r["gain_low"], r["gain_high"], _amount, psa)
                 if m != "current" else "(the comparison)")
                + (f"; P(best) {r['p_best']:.2f}" if psa else "") for _, r in part.iterrows()])
        parts.append(html_table(
            tables["plan_mixes"][0] + ": the gain over the current mix"
            + ("; P(best): the probability of the most net benefit" if psa else ""),
            ["mix"] + [f"at {w:,.0f} {cur} per QALY" for w in wtps], rows))
    board = tables["plan_dashboard"][1]
    rows = [[esc(r["aim"]), esc(r["measure"]), _shown(r["value"], r["unit"], cur),
             esc(r["unit"]), esc(r["note"])]
            for _, r in board.iterrows()]
    parts.append(html_table(tables["plan_dashboard"][0],
                            ["aim", "measure", "value", "unit", "note"], rows,
                            text_cols=(0, 1, 3, 4)))
    parts.append(_figure(summary, lab, cur, psa))
    parts.append("</section>")
    return "".join(parts)


def _shown(value: float, unit: str, cur: str) -> str:
    if unit == cur:
        return _amount(value) if abs(value) >= 1000 else f"{value:,.2f}"
    if unit in ("ratio", "share"):
        return f"{value:,.2f}"
    return f"{value:,.1f}" if unit in ("QALYs", "weeks") else f"{value:,.0f}"


def _figure(summary: xr.Dataset, lab: dict, cur: str, psa: bool) -> str:
    """The plan figure, inline: budget by year (new and current mix) and FTE by role."""
    from vbhc_model.report import figures

    fig = figures.plan_figure(summary, lab["role"], cur, psa)
    buffer = io.StringIO()
    figures.save(fig, buffer, "svg")
    figures.plt.close(fig)
    return (f'<figure id="fig-plan">{inline_svg(buffer.getvalue(), PLAN_CAPTION)}'
            f"<figcaption>{esc(PLAN_CAPTION)}</figcaption></figure>")
