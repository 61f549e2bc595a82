"""``vbhc report``: one self-contained HTML file (and an Excel workbook) from a results folder.

The report is for a reader who does not open NetCDF: the decision (the strategy of highest net
monetary benefit, the frontier), the probabilistic analysis, the figures (inline SVG, their
text as text), the decision in each subgroup, the quadruple-aim outcomes, the model (its
strategies, states and every parameter with its source) and a CHEERS 2022 checklist filled from
the scenario where the scenario says it, with the items an analyst must still write flagged.
Nothing is fetched: no scripts, no external style sheets, no web fonts; it opens from an e-mail
attachment and prints.

It reads only what ``vbhc run`` wrote (``outcomes.nc`` for provenance, ``summary.csv``,
``psa_summary.nc``, ``subgroups.csv``, ``figures/*.svg``) and, for the model section, the
scenario file the results name (when it is still there and unchanged: its SHA-256 is checked).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import xarray as xr

from vbhc_model.errors import VbhcError
from vbhc_model.report.markup import esc, html_table, inline_svg, num
from vbhc_model.report.plan_page import find_plan, plan_section, plan_tables
from vbhc_model.report.table import and_list, money

__all__ = ["CHEERS_ITEMS", "build_report", "report_workbook"]

#: CHEERS 2022 (Husereau et al., Value Health 2022;25(1):3-9): the 28 items, by number.
CHEERS_ITEMS = (
    "Title", "Abstract", "Background and objectives", "Health economic analysis plan",
    "Study population", "Setting and location", "Comparators", "Perspective",
    "Time horizon", "Discount rate", "Selection of outcomes", "Measurement of outcomes",
    "Valuation of outcomes", "Measurement and valuation of resources and costs",
    "Currency, price date, and conversion", "Rationale and description of model",
    "Analytics and assumptions", "Characterising heterogeneity",
    "Characterising distributional effects", "Characterising uncertainty",
    "Approach to engagement with patients and others affected by the study",
    "Study parameters", "Summary of main results", "Effect of uncertainty",
    "Effect of engagement with patients and others affected by the study",
    "Study findings, limitations, generalisability, and current knowledge",
    "Source of funding", "Conflicts of interest",
)

#: Figures of a run, in the order shown, with captions.
FIGURES = (
    ("ce_plane", "Cost-effectiveness plane: incremental cost and QALYs of each strategy against "
                 "the first, one point per PSA draw (X: the means)."),
    ("ceac", "Cost-effectiveness acceptability curves and frontier: the probability that each "
             "strategy has the highest net monetary benefit, by willingness to pay."),
    ("evpi", "Expected value of perfect information per person (and for the population), by "
             "willingness to pay."),
    ("expected_loss", "Expected loss of choosing each strategy (lower is better)."),
    ("evppi", "Expected value of partial perfect information of the leading parameters."),
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;max-width:68rem;
margin:2rem auto;padding:0 1rem;color:#111;line-height:1.45}
h1{font-size:1.6rem}h2{border-bottom:1px solid #999;margin-top:2.2rem}
table{border-collapse:collapse;margin:0.8rem 0;font-size:0.9rem}
th,td{border:1px solid #bbb;padding:0.25rem 0.5rem;text-align:right;vertical-align:top}
th{background:#eee}td.t,th.t{text-align:left}caption{text-align:left;font-weight:600;
padding:0.3rem 0}figure{margin:1.2rem 0;break-inside:avoid}figure svg{max-width:100%;
height:auto}figcaption{font-size:0.9rem;color:#333}.lead{font-size:1.1rem;font-weight:600}
.flag{color:#8a1c1c;font-weight:600}.muted{color:#555;font-size:0.85rem}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}}
"""


def _svg(path: Path, title: str) -> str:
    """An SVG file inline (:func:`vbhc_model.report.markup.inline_svg`)."""
    return inline_svg(path.read_text(encoding="utf-8"), title)


def _scenario(attrs: dict):
    """The scenario the results name, if it is there and unchanged (else None, and why)."""
    from vbhc_model.scenario import load_scenario

    file = attrs.get("scenario_file", "")
    if not file or not Path(file).is_file():
        return None, f"the scenario file {file or '(not recorded)'} is not there"
    if hashlib.sha256(Path(file).read_bytes()).hexdigest() != attrs.get("scenario_sha256"):
        return None, f"{file} has changed since these results were written"
    scenario = load_scenario(file)
    variant = attrs.get("variant")
    return (scenario.with_variant(variant) if variant else scenario), ""


def build_report(folder: str | Path, plan: str | Path | None = None) -> str:
    """The HTML report of a ``vbhc run`` results folder, with the service plan of ``plan``
    (a ``vbhc plan`` folder; default: ``plan.nc`` in the results folder, if there).

    Raises
    ------
    VbhcError
        The folder is not a run's results (no ``outcomes.nc`` or ``summary.csv``), or the
        plan is not there or is another scenario's (:func:`find_plan`).
    """
    import xarray as xr

    folder = Path(folder)
    for name in ("outcomes.nc", "summary.csv"):
        if not (folder / name).is_file():
            raise VbhcError(f"{folder}: no {name} here; give a folder written by 'vbhc run'")
    with xr.open_dataset(folder / "outcomes.nc") as ds:
        attrs = dict(ds.attrs)
    summary = pd.read_csv(folder / "summary.csv")
    psa = None
    if (folder / "psa_summary.nc").is_file():
        with xr.open_dataset(folder / "psa_summary.nc") as p:
            psa = p.load()
    planned = find_plan(folder, Path(plan) if plan is not None else None, attrs)
    scenario, why = _scenario(attrs)
    cur = money(attrs) or "cost units"
    title = attrs.get("scenario_title") or attrs.get("scenario", "Results")
    wtps = [c[len("nmb_at_"):] for c in summary.columns if c.startswith("nmb_at_")]

    parts = [f"<header><h1>{esc(title)}</h1>", _provenance(attrs, folder), "</header>"]
    parts.append(_decision(summary, cur, wtps))
    if psa is not None:
        parts.append(_uncertainty(summary, psa, cur, wtps))
    figs = [(name, cap) for name, cap in FIGURES if (folder / "figures" / f"{name}.svg").is_file()]
    trace = _trace_svg(folder, scenario)
    if figs or trace:
        parts.append("<section id=\"figures\"><h2>Figures</h2>")
        for name, cap in figs:
            parts.append(f'<figure id="fig-{name}">{_svg(folder / "figures" / f"{name}.svg", cap)}'
                         f"<figcaption>{esc(cap)}</figcaption></figure>")
        if trace:
            parts.append(trace)
        parts.append("</section>")
    if (folder / "subgroups.csv").is_file():
        parts.append(_subgroups(pd.read_csv(folder / "subgroups.csv"), wtps))
    if (folder / "prices.csv").is_file():
        parts.append(_prices(pd.read_csv(folder / "prices.csv"), summary, cur))
    if planned is not None:
        parts.append(plan_section(planned, scenario))
    parts.append(_quadruple(summary, cur))
    parts.append(_model(scenario, why))
    parts.append(_cheers(scenario, attrs, psa is not None, why))
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n"
            "</body></html>\n")


TRACE_CAPTION = ("Markov trace: the share of the cohort in each state over time, by strategy "
                 "(base case).")


def _trace_svg(folder: Path, scenario) -> str:
    """The Markov trace figure, inline, when the run kept its trace (``vbhc run --trace``)."""
    import io

    import xarray as xr

    with xr.open_dataset(folder / "outcomes.nc") as ds:
        if "trace" not in ds:
            return ""
        trace = ds["trace"].isel(draw=0).load()
        labels = ([str(v) for v in ds["strategy_label"].values] if "strategy_label" in ds.coords
                  else [str(v) for v in ds["strategy"].values])
    from vbhc_model.report import figures

    states = [str(s) for s in trace["state"].values]
    if scenario is not None:
        states = [scenario.states[s].label or s if s in scenario.states else s for s in states]
    fig = figures.trace_figure(trace, labels, states,
                               scenario.settings.cycle_length if scenario is not None else None)
    buffer = io.StringIO()
    figures.save(fig, buffer, "svg")
    figures.plt.close(fig)
    svg = inline_svg(buffer.getvalue(), TRACE_CAPTION)
    return f'<figure id="fig-trace">{svg}<figcaption>{esc(TRACE_CAPTION)}</figcaption></figure>'


def _provenance(attrs: dict, folder: Path) -> str:
    items = [("Scenario file", attrs.get("scenario_file", "")),
             ("SHA-256", attrs.get("scenario_sha256", "")[:16] + "..."),
             ("Variant", attrs.get("variant", "base case")),
             ("Engine", attrs.get("engine", "")), ("Perspective", attrs.get("perspective", "")),
             ("Currency and price year", money(attrs)),
             ("vbhc_model", attrs.get("vbhc_model_version", "")),
             ("Written", attrs.get("created", "")), ("Results folder", str(folder))]
    return ('<p class="muted">' + "; ".join(f"{esc(k)}: {esc(v)}" for k, v in items if v)
            + "</p>")


def _label(row) -> str:
    return esc(row.get("label") if isinstance(row.get("label"), str) else row["strategy"])


def _decision(summary: pd.DataFrame, cur: str, wtps: list[str]) -> str:
    best: dict[str, list[str]] = {}
    for w in wtps:
        i = summary[f"nmb_at_{w}"].idxmax()
        best.setdefault(_label(summary.loc[i]), []).append(f"{float(w):,.0f}")
    parts = [f"{name} at {and_list(ws)}" for name, ws in best.items()]
    lead = f"Highest net monetary benefit: {'; '.join(parts)} {esc(cur)} per QALY."
    rows = []
    for _, r in summary.iterrows():
        rows.append([_label(r), num(r["cost"]), num(r["effect"], 4), num(r["inc_cost"]),
                     num(r["inc_effect"], 4), num(r["icer"]), esc(r["status"])]
                    + [num(r[f"nmb_at_{w}"]) for w in wtps])
    header = ["strategy", f"cost ({cur})", "QALYs", "incremental cost", "incremental QALYs",
              f"ICER ({cur} per QALY)", "status"] + [f"NMB at {float(w):,.0f}" for w in wtps]
    notes = [f"<li>{_label(r)}: {esc(r['dominated_by'])}</li>"
             for _, r in summary.iterrows()
             if isinstance(r.get("dominated_by"), str) and r["dominated_by"].startswith(
                 "negligible gain")]
    return ('<section id="decision"><h2>Decision</h2>'
            f'<p class="lead">{lead}</p>'
            + html_table("Per person, discounted, on the base-case values", header, rows,
                     text_cols=(0, 6))
            + (f"<ul>{''.join(notes)}</ul>" if notes else "") + "</section>")


def _uncertainty(summary: pd.DataFrame, psa, cur: str, wtps: list[str]) -> str:
    rows = []
    for _, r in summary.iterrows():
        rows.append([_label(r),
                     f"{num(r['psa_cost_mean'])} ({num(r['psa_cost_low'])} to "
                     f"{num(r['psa_cost_high'])})",
                     f"{num(r['psa_effect_mean'], 4)} ({num(r['psa_effect_low'], 4)} to "
                     f"{num(r['psa_effect_high'], 4)})"]
                    + [num(r[f"p_ce_at_{w}"], 3) for w in wtps])
    header = ["strategy", f"cost, mean (95% interval), {cur}", "QALYs, mean (95% interval)"]
    header += [f"P(cost-effective) at {float(w):,.0f}" for w in wtps]
    evpi = "; ".join(f"{num(v, 2)} at {float(w):,.0f}"
                     for w, v in zip(psa["wtp"].values, psa["evpi"].values))
    return ('<section id="uncertainty"><h2>Uncertainty</h2>'
            + html_table(f"Probabilistic analysis, {psa.attrs.get('n_draws', '')} draws", header,
                     rows)
            + f"<p>Expected value of perfect information per person ({esc(cur)}): {evpi}.</p>"
            + "</section>")


def _subgroups(table: pd.DataFrame, wtps: list[str]) -> str:
    rows = []
    for g, part in table.groupby("subgroup", sort=False):
        label = part["subgroup_label"].iloc[0] if "subgroup_label" in part else g
        share = part["share"].iloc[0] if "share" in part else float("nan")
        best = []
        for w in wtps:
            col = f"nmb_at_{w}"
            if col in part and part[col].notna().any():
                best.append(esc(part.loc[part[col].idxmax(), "strategy"]))
            else:
                best.append("")
        rows.append([esc(label), num(100 * share, 0) + "%"] + best)
    header = ["subgroup", "share"] + [f"highest NMB at {float(w):,.0f}" for w in wtps]
    return ('<section id="subgroups"><h2>Subgroups</h2>'
            + html_table("The decision in each subgroup (subgroups.csv has each one's frontier)",
                     header, rows, text_cols=(0, *range(2, 2 + len(wtps)))) + "</section>")


def _prices(prices: pd.DataFrame, summary: pd.DataFrame, cur: str) -> str:
    labels = {r["strategy"]: _label(r) for _, r in summary.iterrows()}
    psa = "price_p50" in prices
    rows = []
    for s, part in prices.groupby("strategy", sort=False):
        now = float(part["programme_cost"].iloc[0])
        if now <= 0:
            continue
        cells = []
        for _, r in part.iterrows():
            cell = num(r["price"]) if r["price"] >= 0 else "none"
            if psa:
                cell += (f" (P50 {num(r['price_p50']) if r['price_p50'] >= 0 else 'none'}, "
                         f"P80 {num(r['price_p80']) if r['price_p80'] >= 0 else 'none'})")
            cells.append(cell)
        rows.append([labels.get(s, esc(s)), num(now)] + cells)
    header = ["strategy", "programme cost now"] + [
        f"price at {w:,.0f}" for w in prices["wtp"].drop_duplicates()]
    return ('<section id="prices"><h2>Value-based price</h2><p>The highest programme cost per '
            "person offered at which each strategy has the highest net monetary benefit"
            + (" (P50, P80: with probability 50% and 80% over the PSA)" if psa else "")
            + f"; {esc(cur)}, discounted; none: not the best even if the programme were free.</p>"
            + html_table("Value-based prices", header, rows) + "</section>")


def _quadruple(summary: pd.DataFrame, cur: str) -> str:
    groups = (("Population health", ("qalys", "life_years")),
              ("Per-capita cost", tuple(c for c in summary.columns if c.startswith("cost_"))),
              ("Care used", tuple(c for c in summary.columns if c.startswith("use_"))),
              ("Clinician time (hours per person)",
               tuple(c for c in summary.columns if c.startswith("hours_"))),
              ("Engagement (share of patients)",
               tuple(c for c in summary.columns if c.startswith("share_")
                     and summary[c].abs().sum() > 0)))
    out = ['<section id="outcomes"><h2>Outcomes: the quadruple aim</h2>',
           f"<p>Per person over the horizon; costs in {esc(cur)}, discounted; counts and hours "
           "undiscounted.</p>"]
    for caption, cols in groups:
        if not cols:
            continue
        rows = [[_label(r)] + [num(r[c], 3 if not c.startswith("cost_") else 0) for c in cols]
                for _, r in summary.iterrows()]
        header = ["strategy"] + [c.split("_", 1)[1] if "_" in c and c.split("_")[0] in (
            "cost", "use", "hours", "share") else c for c in cols]
        out.append(html_table(caption, header, rows))
    out.append("</section>")
    return "".join(out)


def _model(scenario, why: str) -> str:
    if scenario is None:
        return ('<section id="model"><h2>The model</h2><p class="flag">Not shown: '
                f"{esc(why)}.</p></section>")
    s = scenario.settings
    strat = [[esc(n), esc(st.label or n), esc(st.description or "")]
             for n, st in scenario.strategies.items()]
    states = [[esc(n), esc(st.label or n)] for n, st in scenario.states.items()]
    params = []
    for name, p in scenario.parameters.items():
        unc = ("posterior" if p.posterior else "samples" if p.samples else
               p.distribution.type if p.distribution else f"range {p.range}" if p.range else
               f"fixed: {p.fixed}" if p.fixed else "")
        value = p.value.text if hasattr(p.value, "text") else p.value
        params.append([esc(name), esc(value), esc(unc), esc(p.source)])
    return ('<section id="model"><h2>The model</h2>'
            f"<p>A Markov model with {len(scenario.states)} states, cycles of "
            f"{esc(s.cycle_length)} year(s) over {s.n_cycles} cycles, within-cycle correction "
            f"{esc(s.within_cycle_correction)}, discounting {esc(s.discount.costs)} (costs) and "
            f"{esc(s.discount.effects)} (effects) a year.</p>"
            + html_table("Strategies", ["strategy", "label", "description"], strat,
                     text_cols=(0, 1, 2))
            + html_table("States", ["state", "label"], states, text_cols=(0, 1))
            + html_table("Parameters and their sources", ["parameter", "value", "uncertainty",
                                                       "source"], params, text_cols=(0, 1, 2, 3))
            + "</section>")


def _cheers(scenario, attrs: dict, has_psa: bool, why: str) -> str:
    """CHEERS 2022: what the scenario and the results say, and what an analyst must write."""
    filled: dict[int, str] = {1: attrs.get("scenario_title", "")}
    if scenario is not None:
        s, m = scenario.settings, scenario.metadata
        horizon = s.n_cycles * s.cycle_length
        filled.update({
            5: m.description or "",
            6: m.country or "",
            7: "; ".join(st.label or n for n, st in scenario.strategies.items()),
            8: f"{m.perspective} (settings.perspective: {s.perspective})",
            9: f"{horizon:g} years ({s.n_cycles} cycles of {s.cycle_length:g} year)",
            10: f"costs {s.discount.costs:g}, effects {s.discount.effects:g} a year",
            11: f"{s.effect}; costs by category, care used by service, clinician hours by role",
            13: "utilities by state from the parameters table (sources there)",
            14: "services with unit costs: " + ", ".join(scenario.services),
            15: f"{m.currency}, price year {m.price_year}",
            16: f"Markov model, {len(scenario.states)} states: " + ", ".join(scenario.states),
            18: ("subgroups: " + ", ".join(scenario.population.subgroups)
                 if scenario.population is not None and scenario.population.subgroups else ""),
            20: (f"probabilistic analysis ({attrs.get('n_draws', '')} draws in these results)"
                 if has_psa else "") + ("; variants: " + ", ".join(scenario.variants)
                                        if scenario.variants else ""),
            22: "every parameter with its value, distribution and source: see The model",
            23: "see Decision", 24: "see Uncertainty" if has_psa else "",
        })
    rows = []
    for i, item in enumerate(CHEERS_ITEMS, start=1):
        text = filled.get(i, "")
        cell = esc(text) if text else '<span class="flag">analyst to write</span>'
        rows.append([str(i), esc(item), cell])
    note = "" if scenario is not None else f'<p class="flag">Partly filled: {esc(why)}.</p>'
    return ('<section id="cheers"><h2>CHEERS 2022 checklist</h2>' + note
            + html_table("Husereau et al. Value Health 2022;25(1):3-9: filled from the scenario "
                     "where it says it", ["item", "topic", "in this report"], rows,
                     text_cols=(1, 2)) + "</section>")


def report_workbook(folder: str | Path, target: str | Path,
                    plan: str | Path | None = None) -> None:
    """The report's tables as an Excel workbook: ``summary`` (summary.csv), ``columns`` (its
    data dictionary), ``subgroups`` when there are subgroups, ``prices``, and with a plan
    (as :func:`build_report` finds it) its ``plan_*`` tables (:func:`plan_tables`)."""
    folder = Path(folder)
    planned = None
    if plan is not None or (folder / "plan.nc").is_file():
        with xr.open_dataset(folder / "outcomes.nc") as ds:
            attrs = dict(ds.attrs)
        planned = find_plan(folder, Path(plan) if plan is not None else None, attrs)
    with pd.ExcelWriter(target, engine="openpyxl") as xl:
        pd.read_csv(folder / "summary.csv").to_excel(xl, sheet_name="summary", index=False)
        if (folder / "summary_columns.csv").is_file():
            pd.read_csv(folder / "summary_columns.csv").to_excel(xl, sheet_name="columns",
                                                                   index=False)
        if (folder / "subgroups.csv").is_file():
            pd.read_csv(folder / "subgroups.csv").to_excel(xl, sheet_name="subgroups",
                                                            index=False)
        if (folder / "prices.csv").is_file():
            pd.read_csv(folder / "prices.csv").to_excel(xl, sheet_name="prices", index=False)
        if planned is not None:
            scenario, _ = _scenario(attrs)
            for name, (_, frame) in plan_tables(planned, scenario).items():
                frame.to_excel(xl, sheet_name=name, index=False)
