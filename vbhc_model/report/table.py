"""The frontier table as text for the terminal."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.report.frames import EFFECT_LABELS, money

#: The widest strategy label a console table shows; a longer one is shortened.
LABEL_WIDTH = 40


def short_strategy_label(label: str, width: int = LABEL_WIDTH) -> str:
    """A strategy's label short enough for a table column: a trailing parenthesis dropped,
    else cut at a word with ``...``.

    Examples
    --------
    >>> short_strategy_label("The Pain Course (therapist-guided, online)")
    'The Pain Course'
    >>> short_strategy_label("PPACT: 12 weekly 90-minute interdisciplinary CBT groups + usual care")
    'PPACT: 12 weekly 90-minute...'
    """
    label = " ".join(label.split())
    if len(label) <= width:
        return label
    if label.endswith(")") and " (" in label:
        head = label[:label.rindex(" (")].rstrip()
        if 0 < len(head) <= width:
            return head
    cut = label[:width - 3]
    if " " in cut:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "..."


def strategy_names(source, codes=None) -> dict[str, str]:
    """Strategy code -> the name a person reads in a console table: its label (shortened by
    :func:`short_strategy_label`), or the code when it has none or two labels would read
    the same. ``source`` is a Dataset with a ``strategy_label`` coordinate, a mapping of
    codes to labels, or None (codes only). CSV, NetCDF and ``--json`` keep the codes.

    Examples
    --------
    >>> strategy_names({"uc": "Usual care", "x": ""})
    {'uc': 'Usual care', 'x': 'x'}
    """
    if source is None:
        labels: dict[str, str] = {}
    elif isinstance(source, dict):
        labels = {str(k): str(v) for k, v in source.items()}
    elif "strategy_label" in getattr(source, "coords", {}):
        labels = {str(k): str(v) for k, v in zip(source[dims.STRATEGY].values,
                                                 source["strategy_label"].values)}
    else:
        labels = {}
    if codes is None:
        codes = list(labels) if not hasattr(source, "coords") or dims.STRATEGY not in \
            source.coords else [str(c) for c in source[dims.STRATEGY].values]
    names = {str(c): short_strategy_label(labels.get(str(c), "")) or str(c) for c in codes}
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    return {c: (n if counts[n] == 1 else c) for c, n in names.items()}


def scenario_names(scenario) -> dict[str, str]:
    """:func:`strategy_names` of a scenario's strategies (code -> label for a table)."""
    return strategy_names({k: v.label for k, v in scenario.strategies.items()})


def _relabel(text: str, names: dict[str, str]) -> str:
    """``text`` (an analysis's note naming strategies by code) with the codes as names."""
    import re

    if not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(c) for c in sorted(names, key=len,
                                                                          reverse=True)) + r")\b")
    return pattern.sub(lambda m: names[m.group(1)], text)


def _num(x: float, digits: int) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:,.{digits}f}"


def format_table(table: xr.Dataset) -> str:
    """Strategy, cost, effect, increments, ICER and status, one line per strategy.

    Examples
    --------
    >>> from vbhc_model.api import run_scenario
    >>> print(format_table(run_scenario().table).splitlines()[3][:8])
    strategy
    """
    eff = EFFECT_LABELS.get(table.attrs.get("effect", "qalys"), "effect")
    cur = table.attrs.get("currency", "")
    py = table.attrs.get("price_year", "")
    header = ["strategy", f"cost ({cur})", eff, "inc. cost", f"inc. {eff}",
              f"ICER ({cur}/{eff})", "status"]
    names = strategy_names(table)
    rows = []
    for s in table[dims.STRATEGY].values:
        t = table.sel({dims.STRATEGY: s})
        rows.append([
            names[str(s)], _num(float(t["cost"]), 0), _num(float(t["effect"]), 4),
            _num(float(t["inc_cost"]), 0), _num(float(t["inc_effect"]), 4),
            _num(float(t["icer"]), 0), str(t["status"].values),
        ])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = ["<", ">", ">", ">", ">", ">", "<"]

    def line(r: list[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(r, fmt, widths)).rstrip()

    title = f"{table.attrs.get('scenario_title', '')}"
    view = {"health_care": "health-care perspective", "societal": "societal perspective"}.get(
        table.attrs.get("perspective", ""), "")
    note = (f"per person; costs in {cur} {py}" + (f" ({view})" if view else "")
            + "; discounted").replace(" not stated", "")
    out = [title, note]
    if "nmb" in table:
        out.append(best_by_nmb(table, f"{money(table.attrs)} per {EFFECT_ONE.get(eff, eff)}"))
    out += [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out += negligible_notes(table[dims.STRATEGY].values, table["status"].values,
                            table["dominated_by"].values, eff, names)
    return "\n".join(out)


#: The effect, one unit of it, as the table's lines name it.
EFFECT_ONE = {"QALYs": "QALY", "life years": "life year"}


def best_by_nmb(table: xr.Dataset, per: str) -> str:
    """One line: the strategy with the highest net monetary benefit at each threshold, the
    thresholds with the same answer together ("Coach-led telehealth CBT at 50,000 and
    100,000 ..."), strategies by their labels."""
    nmb = table["nmb"].transpose(dims.STRATEGY, dims.WTP).values
    label = strategy_names(table)
    names = [label[str(s)] for s in table[dims.STRATEGY].values]
    groups: dict[str, list[str]] = {}
    for w, best in zip(table[dims.WTP].values, nmb.argmax(axis=0)):
        groups.setdefault(names[best], []).append(f"{w:,.0f}")
    parts = [f"{name} at {and_list(ws)}" for name, ws in groups.items()]
    return f"Highest net monetary benefit: {'; '.join(parts)} {per}".rstrip()


def and_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def negligible_notes(codes, status, notes, eff: str,
                     names: dict[str, str] | None = None) -> list[str]:
    """A line per strategy left off the frontier for a negligible gain: what it is (by
    ``names``, code -> label, if given)."""
    from vbhc_model.analysis.frontier import NEGLIGIBLE

    names = names or {}
    return [f"{names.get(str(c), str(c))}: {_relabel(str(note), names)} ({eff}); no ICER: compare it with the cheaper one on net monetary "
            "benefit" for c, st, note in zip(codes, status, notes) if st == NEGLIGIBLE]


def format_psa(summary: xr.Dataset) -> str:
    """Probabilistic results: mean and 95% interval per strategy, P(cost-effective), EVPI."""
    eff = EFFECT_LABELS.get(summary.attrs.get("effect", "qalys"), "effect")
    wtps = summary[dims.WTP].values
    header = ["strategy", "cost: mean (95% interval)", f"{eff}: mean (95% interval)"]
    header += [f"P(CE) at {w:,.0f}" for w in wtps]
    names = strategy_names(summary)
    rows = []
    for i, s in enumerate(summary[dims.STRATEGY].values):
        c = [float(summary[f"cost_{k}"].values[i]) for k in ("mean", "low", "high")]
        e = [float(summary[f"effect_{k}"].values[i]) for k in ("mean", "low", "high")]
        rows.append([names[str(s)], f"{_whole(c[0])} ({_whole(c[1])} to {_whole(c[2])})",
                     f"{e[0]:.4f} ({e[1]:.4f} to {e[2]:.4f})"]
                    + [f"{p:.3f}" for p in summary["ceac"].values[i]])
    rows.append(["EVPI per person", "", ""] + [f"{v:,.2f}" for v in summary["evpi"].values])
    lines = [f"Probabilistic analysis: {summary.attrs.get('n_draws', '')} draws",
             *_aligned(header, rows), "", *conclusions(summary)]
    if "frontier_status" in summary:
        lines += ["", "Frontier on the mean costs and effects; 95% intervals of the increments "
                  "over the draws", *_aligned(*_mean_frontier_rows(summary, eff, names))]
        if "frontier_note" in summary:
            lines += negligible_notes(summary[dims.STRATEGY].values,
                                      summary["frontier_status"].values,
                                      summary["frontier_note"].values, eff, names)
    return "\n".join(lines)


def conclusions(summary: xr.Dataset) -> list[str]:
    """One line per willingness to pay after a PSA: the strategy with the highest expected
    net monetary benefit, the probability that it is the cost-effective one, and the EVPI.

    Examples
    --------
    >>> s = xr.Dataset({"expected_nmb": (("strategy", "wtp"), [[1.0], [2.0]]),
    ...                 "ceac": (("strategy", "wtp"), [[0.3], [0.7]]),
    ...                 "evpi": ("wtp", [12.5])},
    ...                coords={"strategy": ["a", "b"], "wtp": [50000.0],
    ...                        "strategy_label": ("strategy", ["A", "Bee"])},
    ...                attrs={"currency": "USD", "price_year": 2025, "effect": "qalys"})
    >>> conclusions(s)
    ['At 50,000 USD 2025 per QALY: Bee is best (P 0.70 that it is cost-effective); EVPI 12.50 USD 2025 per person']
    """
    if "expected_nmb" not in summary or "ceac" not in summary:
        return []
    names = strategy_names(summary)
    codes = [str(s) for s in summary[dims.STRATEGY].values]
    cur = money(summary.attrs)
    eff = EFFECT_LABELS.get(summary.attrs.get("effect", "qalys"), "effect")
    per = f"{cur} per {EFFECT_ONE.get(eff, eff)}".strip()
    enmb = summary["expected_nmb"].transpose(dims.STRATEGY, dims.WTP).values
    ceac = summary["ceac"].transpose(dims.STRATEGY, dims.WTP).values
    lines = []
    for k, w in enumerate(summary[dims.WTP].values):
        best = int(np.argmax(enmb[:, k]))
        evpi = (f"; EVPI {float(summary['evpi'].values[k]):,.2f}"
                + (f" {cur}" if cur else "") + " per person") if "evpi" in summary else ""
        lines.append(f"At {w:,.0f} {per}: {names[codes[best]]} is best (P "
                     f"{ceac[best, k]:.2f} that it is cost-effective){evpi}")
    return lines


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """Header, rule and rows in columns: the first left-aligned, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                      for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in [header, ["-" * w for w in widths], *rows]]


def _whole(x: float) -> str:
    """A money amount to the unit, without a minus sign on a rounded zero."""
    text = f"{x:,.0f}"
    return "0" if text == "-0" else text


def _mean_frontier_rows(summary: xr.Dataset, eff: str, names: dict[str, str]
                        ) -> tuple[list[str], list[list[str]]]:
    header = ["strategy", "status", "compared with", "incremental cost (95% interval)",
              f"incremental {eff} (95% interval)", "ICER of means"]
    rows = []
    for i in np.argsort(summary["cost_mean"].values, kind="stable"):
        v = {k: float(summary[k].values[i]) for k in (
            "inc_cost_mean", "inc_cost_low", "inc_cost_high", "inc_effect_mean",
            "inc_effect_low", "inc_effect_high", "icer")}
        has = np.isfinite(v["inc_cost_mean"])
        comparator = str(summary["comparator"].values[i])
        rows.append([
            names[str(summary[dims.STRATEGY].values[i])],
            str(summary["frontier_status"].values[i]), names.get(comparator, comparator),
            f"{_whole(v['inc_cost_mean'])} ({_whole(v['inc_cost_low'])} to "
            f"{_whole(v['inc_cost_high'])})" if has else "",
            f"{v['inc_effect_mean']:.4f} ({v['inc_effect_low']:.4f} to "
            f"{v['inc_effect_high']:.4f})" if has else "",
            f"{v['icer']:,.0f}" if np.isfinite(v["icer"]) else ""])
    return header, rows


def short_label(label: str, width: int = 40) -> str:
    """A group's label ``a+b+c+...`` cut to ``width`` characters, saying how many it holds."""
    if len(label) <= width:
        return label
    members = label.split("+")
    head = ""
    for m in members:
        if len(head) + len(m) + 1 > width - 18:
            break
        head += ("+" if head else "") + m
    return f"{head}+... ({len(members)} parameters)"


def format_voi(table: xr.Dataset, evpi: xr.DataArray) -> str:
    """EVPI and the EVPPI ranking, per person, at each WTP."""
    wtps = table[dims.WTP].values
    header = ["parameter(s)"] + [f"EVPPI at {w:,.0f}" for w in wtps] + ["R2 (max)"]
    rows = [["EVPI (all uncertainty)"] + [f"{v:,.2f}" for v in evpi.values] + [""]]
    has_se = bool(np.isfinite(table["se"].values).any())
    over = table["exceeds_evpi"].values if "exceeds_evpi" in table else None
    for i, g in enumerate(table["group"].values):
        t = table.sel(group=g)
        cells = [f"{v:,.2f}" + (f" ({s:,.2f})" if has_se else "")
                 + ("*" if over is not None and over[i, j] else "")
                 for j, (v, s) in enumerate(zip(t["evppi"].values, t["se"].values))]
        rows.append([short_label(str(g))] + cells + [f"{float(t['r2_max']):.2f}"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["Value of information per person" + (" (SE)" if has_se else "") + "; R2: share of "
             "the incremental costs or effects the parameters explain (the fit check)"]
    for r in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    if over is not None and over.any():
        gp = table.attrs.get("method") == "gp"
        lines.append("* above the EVPI, which no EVPPI can be: the metamodel's error ("
                     + ("a poor fit); try a smaller group or more draws" if gp else
                        "many parameters in one additive regression, or a poor fit); try "
                        "--method gp, a smaller group or more draws"))
    return "\n".join(lines)


#: Single parameters "explain little" of the EVPI when the largest single EVPPI is below this
#: share of it (at some WTP), or when at least half of them show 0.00.
EXPLAINS_LITTLE = 0.5


def format_voi_advice(result, command: str = "vbhc voi") -> str:
    """When single parameters explain little of the EVPI: a note saying so (value of
    information is then in parameters together: Strong, Oakley & Brennan 2014) and the
    command that estimates the EVPPI of the groups the scenario draws together (one per
    posterior file, table of samples or joint distribution), to paste. "" otherwise, and
    when the table holds groups already.

    Examples
    --------
    >>> import xarray as xr
    >>> t = xr.Dataset({"evppi": (("group", "wtp"), [[0.001], [0.0]])},
    ...                coords={"group": ["a", "b"], "wtp": [1.0],
    ...                        "members": ("group", ["a", "b"])})
    >>> from types import SimpleNamespace as R
    >>> print(format_voi_advice(R(table=t, evpi=xr.DataArray([9.0], dims="wtp"),
    ...     source="res", suggested_groups=(("posterior fits/f.nc", ("a", "b")),))))
    Single parameters explain little of the EVPI (at 1 the largest single EVPPI is 0.00 of an EVPI of 9.00; 2 of 2 single parameters show 0.00 at 1): the value of information lies in parameters learnt together. The groups the scenario draws together (posterior fits/f.nc: a, b):
      vbhc voi res --force --group a,b
    """
    table = result.table
    single = np.array(["," not in str(m) for m in table["members"].values])
    if not single.any() or not single.all():  # no singles, or groups asked for already
        return ""
    evppi = table["evppi"].transpose("group", dims.WTP).values[single]
    evpi = np.asarray(result.evpi.values, dtype=float)
    wtps = table[dims.WTP].values
    zero = int((np.round(evppi[:, 0], 2) == 0).sum())
    low = [k for k in range(len(wtps)) if evpi[k] > 0
           and np.nanmax(evppi[:, k]) < EXPLAINS_LITTLE * evpi[k]]
    if not low and zero * 2 < len(evppi):
        return ""
    said = [f"at {wtps[k]:,.0f} the largest single EVPPI is {np.nanmax(evppi[:, k]):,.2f} of "
            f"an EVPI of {evpi[k]:,.2f}" for k in low[:1]]
    if zero * 2 >= len(evppi):
        said.append(f"{zero} of {len(evppi)} single parameters show 0.00 at {wtps[0]:,.0f}")
    lines = [f"Single parameters explain little of the EVPI ({'; '.join(said)}): the value of "
             "information lies in parameters learnt together."]
    groups = [g for g in result.suggested_groups if len(g[1]) >= 2]
    if groups:
        lines[0] += (" The groups the scenario draws together ("
                     + "; ".join(f"{where}: {', '.join(m)}" for where, m in groups) + "):")
        lines.append(f"  {command} {result.source} --force "
                     + " ".join(f"--group {','.join(m)}" for _, m in groups))
    else:
        lines[0] += (" Estimate groups of parameters from one source of evidence together: "
                     f"{command} {result.source} --force --group a,b,c --group d,e")
    return "\n".join(lines)


def format_one_way(one_way: xr.Dataset, top: int = 15,
                   names: dict[str, str] | None = None) -> str:
    """The one-way analysis, widest swing first (strategies by ``names``, code -> label)."""
    a = one_way.attrs
    names = names or {}
    header = ["parameter", "low", "high", "INMB at low", "INMB at high", "optimal at low",
              "optimal at high"]
    rows = []
    for p in one_way[dims.PARAMETER].values[:top]:
        t = one_way.sel({dims.PARAMETER: p})
        rows.append([str(p), f"{float(t['low']):.4g}", f"{float(t['high']):.4g}",
                     f"{float(t['inmb_low']):,.2f}", f"{float(t['inmb_high']):,.2f}",
                     *(names.get(str(v), str(v)) for v in (t["optimal_low"].values,
                                                            t["optimal_high"].values))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"One-way sensitivity at {a['wtp']:,.0f}: incremental net benefit (INMB) of "
             f"{names.get(str(a['strategy']), a['strategy'])} vs the best other strategy; "
             f"base case {a['base_inmb']:,.2f}"]
    for r in [header, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(f"{c:<{w}}" if i in (0, 5, 6) else f"{c:>{w}}"
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def format_prices(prices: xr.Dataset, attrs: dict, names: dict[str, str] | None = None) -> str:
    """The value-based price of each strategy with a programme cost: the highest programme
    cost per person at which it has the highest net monetary benefit (after a PSA, also the
    highest at which it does with probability 50% and 80%). Strategies by ``names`` (code ->
    label) if given."""
    wtps = prices[dims.WTP].values
    names = names or {}
    psa = "price_at_probability" in prices
    header = ["strategy", "programme cost now"] + [f"price at {w:,.0f}" for w in wtps]
    rows = []
    for i, s in enumerate(prices[dims.STRATEGY].values):
        now = float(prices["programme_cost"].values[i])
        if now <= 0:
            continue
        row = [names.get(str(s), str(s)), _whole(now)]
        for k in range(len(wtps)):
            p = float(prices["price"].values[i, k])
            cell = _whole(p) if p >= 0 else "none"
            if psa:
                q = prices["price_at_probability"].values[i, k]
                cell += " (" + ", ".join(
                    f"P{100 * pr:.0f} {_whole(v) if v >= 0 else 'none'}"
                    for pr, v in zip(prices["probability"].values, q)) + ")"
            row.append(cell)
        rows.append(row)
    if not rows:
        return ""
    lines = [f"Value-based price (the highest programme cost per person offered at which each "
             f"has the highest net monetary benefit; {money(attrs)}, discounted"
             + ("; P50/P80: with probability 50%/80% over the PSA" if psa else "")
             + "; none: not the best even free)"]
    return "\n".join(lines + _aligned(header, rows))


def format_run(result) -> str:
    """The console text of ``vbhc run``: the decision table, then the PSA's if any, then the
    decision in each subgroup if the scenario declares subgroups, then value-based prices."""
    text = format_table(result.table)
    names = strategy_names(result.table)
    if "mcse_inc_total_cost" in result.outcomes:
        text += "\n" + format_mcse(result.outcomes)
    if result.psa_summary is not None:
        text += "\n\n" + format_psa(result.psa_summary)
    if result.montecarlo is not None:
        text += "\n\n" + format_montecarlo(result.montecarlo)
    if result.subgroups is not None:
        text += "\n\n" + format_subgroups(result.subgroups, names)
    if getattr(result, "prices", None) is not None:
        prices = format_prices(result.prices, result.outcomes.attrs, names)
        if prices:
            text += "\n\n" + prices
    return text


def format_mcse(outcomes) -> str:
    """One line: the microsimulation's Monte Carlo standard errors of each strategy's
    increment over the first strategy (not the frontier's increments in the table)."""
    eff = outcomes.attrs.get("effect", "qalys")
    base = outcomes.isel(draw=0)
    names = strategy_names(outcomes)
    strategies = [str(s) for s in base["strategy"].values]
    parts = [f"{names[s]}: cost {float(base['mcse_inc_total_cost'].sel(strategy=s)):,.2f}, "
             f"{EFFECT_LABELS.get(eff, eff)} {float(base[f'mcse_inc_{eff}'].sel(strategy=s)):.2g}"
             for s in strategies[1:]]
    n = outcomes.attrs.get("n_patients")
    per = " per attribute profile" if "subgroup" in outcomes.dims else ""
    return (f"Monte Carlo standard errors (microsimulation, {n:,} patients{per}; batch means) "
            f"of each strategy's difference from {names[strategies[0]]}: " + "; ".join(parts))


def format_montecarlo(split) -> str:
    """Two-level PSA: the patients' share of the variance of the incremental cost and effect,
    and the patients per draw that would bring it below the target."""
    target = float(split.attrs["target_share"])
    strategies = [str(s) for s in split["strategy"].values]
    lines = [f"Two-level PSA: the patients' share of the variance over the draws of each "
             f"strategy's difference from {strategies[0]} (O'Hagan et al. 2007); below "
             f"{target:.0%} the draws have patients enough"]
    strategies = strategies[1:]
    for outcome in ("inc_cost", "inc_effect"):
        for s in strategies:
            share = float(split["patient_share"].sel(outcome=outcome, strategy=s))
            need = float(split["patients_needed"].sel(outcome=outcome, strategy=s))
            advice = (f"; --patients {need:.0f} would bring it to about {target:.0%}"
                      if share > target and np.isfinite(need) else "")
            shown = f"{share:.0%}" if share >= 0.1 or share == 0 else f"{share:.1%}"
            lines.append(f"  {outcome.replace('inc_', 'incremental ')} of {s}: {shown}{advice}")
    return "\n".join(lines)


def format_subgroups(table, names: dict[str, str] | None = None) -> str:
    """One row per subgroup: its share and the strategy with the highest net monetary
    benefit at each WTP (with the probability that it is cost-effective, after a PSA);
    strategies by ``names`` (code -> label) [their labels in ``table``]."""
    names = names or strategy_names(table)
    wtp = table["wtp"].values
    head = ["subgroup", "share"] + [f"optimal at {w:,.0f}" for w in wtp]
    rows = []
    for g, group in enumerate(table["subgroup"].values):
        row = [str(group), f"{float(table['share'].values[g]):.0%}" if "share" in table else ""]
        for i in range(len(wtp)):
            code = str(table["optimal"].values[g, i])
            best = names.get(code, code) or "(no patients)"
            if "p_optimal" in table and best != "(no patients)":
                best += f" (P {float(table['p_optimal'].values[g, i]):.2f})"
            row.append(best)
        rows.append(row)
    widths = [max(len(r[c]) for r in [head] + rows) for c in range(len(head))]
    lines = ["Subgroups (per person; the strategy with the highest net monetary benefit"
             + (", and the probability that it is cost-effective" if "p_optimal" in table
                else "") + "; subgroups.csv has the frontier of each)"]
    lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()
              for r in [head, ["-" * w for w in widths]] + rows]
    return "\n".join(lines)


def format_threshold(t, names: dict[str, str] | None = None) -> str:
    """One line: where a strategy becomes (or stops being) optimal."""
    who = (names or {}).get(t.strategy, t.strategy)
    side = f"when {t.parameter} is {t.optimal_side} {t.value:.6g}" if t.optimal_side else \
        f"on one side of {t.parameter} = {t.value:.6g}"
    more = (f"; the incremental net benefit changes sign {t.more_thresholds} more time(s) "
            "over the range") if t.more_thresholds else ""
    return (f"threshold: {who} is optimal at {t.wtp:,.0f} {side} (range "
            f"{t.range[0]:.4g} to {t.range[1]:.4g}, {t.basis}){more}")


def format_dsa(result) -> str:
    """The console text of ``vbhc dsa``: the one-way table, what was left out, the threshold."""
    names = scenario_names(result.scenario)
    text = format_one_way(result.one_way, names=names)
    if result.one_way.attrs.get("left_out"):
        text += "\n" + result.one_way.attrs["left_out"]
    if result.threshold is not None:
        text += "\n\n" + format_threshold(result.threshold, names)
    return text


def format_analyse(result) -> str:
    """The console text of ``vbhc analyse``: the PSA summary (with the frontier on the means)
    and the EVPPI ranking."""
    text = format_psa(result.summary)
    if result.evppi is not None:
        text += "\n\n" + format_voi(result.evppi, result.summary["evpi"])
    return text


def written(path) -> str:
    """``wrote a, b, c in FOLDER`` (or ``wrote FILE``)."""
    from pathlib import Path

    if not Path(path).is_dir():
        return f"wrote {path}"
    names = ", ".join(sorted(p.name for p in Path(path).iterdir() if not p.name.startswith(".")))
    return f"wrote {names} in {path}"


def _frame_text(frame, **kwargs) -> str:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        return frame.to_string(float_format=lambda v: f"{v:.4g}", **kwargs)


def format_fit(result) -> str:
    """The console text of ``vbhc fit``: the summary and the convergence diagnostics."""
    d = result.diagnostics
    return (_frame_text(result.summary)
            + f"\n\nmax R-hat {d['max_rhat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}, min "
            f"tail ESS {d['min_ess_tail']:.0f}, {d['divergences']} divergences; "
            f"{result.seconds:.1f} s")


def format_calibration(result) -> str:
    """The console text of ``vbhc calibrate``: the summary and the effective sample size."""
    return (_frame_text(result.summary)
            + f"\n\neffective sample size {result.ess:.0f}; {result.seconds:.1f} s")


def format_update(result) -> str:
    """The console text of ``vbhc update``: posterior means and decisions, before and after."""
    import pandas as pd

    outputs = [o for o in result.after.index if o in result.before.index]
    change = pd.DataFrame({"mean before": result.before.loc[outputs, "mean"],
                           "mean after": result.after.loc[outputs, "mean"]})
    shown = result.comparison.copy()
    if "wtp" in shown:  # 50,000, not 5e+04
        shown["wtp"] = [f"{w:,.0f}" for w in shown["wtp"]]
    names = strategy_names(getattr(result, "labels", {}) or {})
    for col in ("optimal_before", "optimal_after"):  # labels, as in the other tables
        if col in shown:
            shown[col] = [names.get(str(c), str(c)) for c in shown[col]]
    return ("posterior means:\n" + _frame_text(change)
            + "\n\ndecision before and after:\n" + _frame_text(shown, index=False))


def format_compare(table: xr.Dataset, names: dict[str, str] | None = None) -> str:
    """``vbhc compare``: per variant, the strategy with the highest net monetary benefit at
    each threshold (with the probability it is cost-effective, after a PSA) and the frontier
    with its ICERs. Strategies by ``names`` (code -> label) [their labels in ``table``]."""
    wtps = table[dims.WTP].values
    header = ["variant"] + [f"optimal at {w:,.0f}" for w in wtps] + ["frontier (ICER)"]
    rows = []
    codes = [str(s) for s in table[dims.STRATEGY].values]
    label = names or strategy_names(table)
    names = [label.get(c, c) for c in codes]
    for i, v in enumerate(table["variant"].values):
        row = [str(v)]
        for k in range(len(wtps)):
            code = str(table["optimal"].values[i, k])
            best = label.get(code, code)
            if "p_ce" in table:
                p = float(table["p_ce"].values[i, codes.index(code), k])
                best += f" (P {p:.2f})"
            row.append(best)
        status, icer = table["status"].values[i], table["icer"].values[i]
        cost = table["cost"].values[i]
        front = sorted((cost[j], names[j], icer[j]) for j in range(len(names))
                       if status[j] == "frontier")
        row.append(" -> ".join(n if not np.isfinite(x) else f"{n} {x:,.0f}"
                               for _, n, x in front))
        rows.append(row)
    money_ = money(table.attrs)
    lines = [f"Variants of {table.attrs.get('scenario_title', 'the scenario')}",
             f"per person; costs in {money_}; discounted"
             + (f"; {table.attrs['n_draws']} PSA draws each" if table.attrs.get("n_draws")
                else "")]
    lines += _aligned(header, rows)
    lines += [""] + [f"{v}: {label}" for v, label in zip(table["variant"].values,
                                                       table["variant_label"].values)]
    return "\n".join(lines)


def format_plan(summary: xr.Dataset, names: dict[str, str] | None = None) -> str:
    """``vbhc plan``: the new mix year by year (with 95% intervals after a PSA) against the
    current mix: the budget, per member per month, QALYs, patients starting each strategy
    (``names``: their labels), and FTEs needed against those available."""
    names = names or {}
    years = summary["calendar_year"].values
    role_names = ({str(r): str(lab) for r, lab in zip(summary["plan_role"].values,
                                                      summary["plan_role_label"].values)}
                  if "plan_role_label" in summary.coords else {})
    psa = int(summary.attrs.get("n_draws", 1)) > 1

    def cell(name: str, y, digits: int = 0, inc: bool = False) -> str:
        key = f"{name}_increment" if inc else name
        at = {"calendar_year": y} if inc else {"calendar_year": y, "mix": "new"}
        mean = float(summary[f"{key}_mean"].sel(**at))
        text = f"{mean:,.{digits}f}"
        if psa:
            lo, hi = (float(summary[f"{key}_{b}"].sel(**at)) for b in ("low", "high"))
            text += f" ({lo:,.{digits}f} to {hi:,.{digits}f})"
        return text

    header = ["calendar year", "budget, new mix", "increment over current", "PMPM, new mix",
              "QALYs, new mix", "QALY increment"]
    rows = [[str(y), cell("total_budget", y), cell("total_budget", y, inc=True),
             cell("pmpm", y, 2), cell("qalys", y, 1), cell("qalys", y, 1, inc=True)]
            for y in years]
    cur = money(summary.attrs)
    lines = [f"Service plan: {summary.attrs.get('scenario_title', '')}",
             f"{cur}, undiscounted (budget impact); PMPM over {summary.attrs.get('members', 0):,.0f} "
             f"{summary.attrs.get('members_basis', '')}"
             + ("; 95% intervals over the PSA" if psa else "; base case"),
             *_aligned(header, rows)]
    start = summary["starting"].sel(mix="new")
    rows = [[str(y)] + [f"{float(v):,.0f}" for v in start.sel(calendar_year=y).values]
            for y in years]
    lines += ["", "Patients starting each strategy (new mix)",
              *_aligned(["calendar year"] + [names.get(str(s), str(s))
                                             for s in start["strategy"].values], rows)]
    if "fte_available" in summary:
        roles = [str(r) for r in summary["plan_role"].values]
        header = ["calendar year"] + [f"{role_names.get(r, r)}: FTE needed / available"
                                      for r in roles]
        rows = []
        for y in years:
            row = [str(y)]
            for r in roles:
                need = cell(f"fte_needed_{r}", y, 1)
                have = float(summary["fte_available"].sel(plan_role=r, calendar_year=y))
                row.append(f"{need} / {have:,.1f}")
            rows.append(row)
        lines += ["", "Clinicians (new mix; needed = hours / productive hours per FTE)",
                  *_aligned(header, rows)]
    from vbhc_model.report.frames import plan_dashboard

    board = plan_dashboard(summary)
    in_money = money(summary.attrs) or "cost units"

    def shown(value: float, unit: str) -> str:
        if unit in ("ratio", "share") or (unit == in_money and abs(value) < 1000):
            return f"{value:,.2f}"
        return f"{value:,.1f}" if unit in ("QALYs", "weeks") else f"{value:,.0f}"

    rows = [[r.aim, r.measure, shown(r.value, r.unit), r.unit, r.note]
            for r in board.itertuples()]
    lines += ["", "The quadruple aim (new mix, over the plan; means)",
              *_aligned(["aim", "measure", "value", "unit", "note"], rows)]
    if "net_benefit_mean" in summary:
        wtps = summary[dims.WTP].values
        header = ["mix"] + [f"net benefit at {w:,.0f}" for w in wtps]
        rows = []
        for m in summary["mix"].values:
            row = [str(m)]
            for w in wtps:
                v = float(summary["net_benefit_mean"].sel(mix=m, wtp=w))
                cell = f"{v:,.0f}"
                if psa:
                    cell += f" (P best {float(summary['p_best_mix'].sel(mix=m, wtp=w)):.2f})"
                row.append(cell)
            rows.append(row)
        grouped: dict[str, list[str]] = {}
        for b, w in zip(summary["best_mix"].values, wtps):
            grouped.setdefault(str(b), []).append(f"{w:,.0f}")
        best = "; ".join(f"{b} at {and_list(ws)}" for b, ws in grouped.items())
        lines += ["", "Net benefit over the plan by mix (undiscounted; QALYs and costs of waiting "
                  f"included); highest: {best}", *_aligned(header, rows)]
    if "queue_qalys_lost_waiting_mean" in summary:
        roles = [str(r) for r in summary["plan_role"].values]

        def q(name: str, y, digits: int) -> str:
            v = float(summary[f"queue_{name}_mean"].sel(calendar_year=y))
            return "over capacity" if not math.isfinite(v) else f"{v:,.{digits}f}"

        header = ["calendar year"]
        gave_up = {r for r in roles if f"queue_dropped_out_{r}_mean" in summary}
        for r in roles:
            header += [f"{role_names.get(r, r)}: occupancy", "caseload per FTE", "mean wait (weeks)",
                       "backlog at year end"]
            header += ["gave up waiting"] if r in gave_up else []
        header += ["QALYs lost waiting", "net benefit lost"]
        rows = []
        for y in years:
            row = [str(y)]
            for r in roles:
                row += [q(f"occupancy_{r}", y, 2), q(f"caseload_per_fte_{r}", y, 1),
                        q(f"wait_weeks_{r}", y, 1), q(f"backlog_{r}", y, 0)]
                row += [q(f"dropped_out_{r}", y, 0)] if r in gave_up else []
            row += [q("qalys_lost_waiting", y, 2), q("net_benefit_lost", y, 0)]
            rows.append(row)
        lines += ["", "Waiting for clinicians (new mix; M/M/c queue while the places suffice, "
                  "a backlog carried to the next year when not; docs/planning.md)",
                  *_aligned(header, rows)]
    return "\n".join(lines)

