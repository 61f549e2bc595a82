"""Results -> tables for people and other tools: flat frames for CSV, records for JSON.

Analyses return labelled Datasets; this module flattens them (one row per strategy, one column
per statistic) for summary.csv and ``--json``.
"""

from __future__ import annotations

import contextlib
import math
import weakref

import numpy as np
import pandas as pd
import xarray as xr

from vbhc_model import dims

EFFECT_LABELS = {"qalys": "QALYs", "life_years": "life years"}


def to_frame(table: xr.Dataset) -> pd.DataFrame:
    """One row per strategy, flat columns, for summary.csv."""
    cols: dict[str, object] = {}
    strategies = table[dims.STRATEGY].values
    cols["strategy"] = strategies
    if "strategy_label" in table.coords:
        cols["label"] = table["strategy_label"].values
    for name in ("cost", "effect", "qalys", "life_years", "inc_cost", "inc_effect", "icer"):
        if name in table:
            cols[name] = table[name].values
    for name in ("status", "comparator", "dominated_by"):
        cols[name] = table[name].values
    if "stepped_up" in table:
        cols["stepped_up"] = table["stepped_up"].values
    for i, w in enumerate(table[dims.WTP].values):
        cols[f"nmb_at_{w:g}"] = table["nmb"].values[:, i]
    for var, dim, prefix in (("costs", dims.CATEGORY, "cost_"), ("utilisation", dims.SERVICE, "use_"),
                             ("clinician_hours", dims.ROLE, "hours_"),
                             ("engagement", dims.LEVEL, "share_")):
        if var in table:
            for key in table[dim].values:
                cols[f"{prefix}{key}"] = table[var].sel({dim: key}).values
    return pd.DataFrame(cols)


def _clean(x: object) -> object:
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.generic):
        return x.item()
    return x


def to_records(table: xr.Dataset) -> list[dict]:
    """The table as JSON-ready records (keys include strategy, cost, qalys, icer, status)."""
    frame = to_frame(table)
    records = []
    for _, row in frame.iterrows():
        rec = {k: _clean(v) for k, v in row.items() if not k.startswith("nmb_at_")}
        rec["nmb"] = {f"{w:g}": _clean(row[f"nmb_at_{w:g}"]) for w in table[dims.WTP].values}
        records.append(rec)
    return records


def psa_frame(summary: xr.Dataset):
    """PSA columns for summary.csv: mean and 95% interval of cost and effect, P(cost-effective)."""
    cols = {"strategy": summary[dims.STRATEGY].values}
    for name in ("cost", "effect"):
        for stat in ("mean", "low", "high"):
            cols[f"psa_{name}_{stat}"] = summary[f"{name}_{stat}"].values
    if "frontier_status" in summary:
        cols["psa_status"] = summary["frontier_status"].values
        cols["psa_comparator"] = summary["comparator"].values
        for name in ("cost", "effect"):
            for stat in ("mean", "low", "high"):
                cols[f"psa_inc_{name}_{stat}"] = summary[f"inc_{name}_{stat}"].values
        cols["psa_icer"] = summary["icer"].values
    for i, w in enumerate(summary[dims.WTP].values):
        cols[f"p_ce_at_{w:g}"] = summary["ceac"].values[:, i]
    return pd.DataFrame(cols)


def psa_records(summary: xr.Dataset) -> dict[str, dict]:
    """Per strategy: mean and 95% interval of cost and effect, P(cost-effective) by WTP."""
    out = {}
    for i, s in enumerate(summary[dims.STRATEGY].values):
        out[str(s)] = {
            "cost": {k: float(summary[f"cost_{k}"].values[i]) for k in ("mean", "low", "high")},
            "effect": {k: float(summary[f"effect_{k}"].values[i]) for k in ("mean", "low", "high")},
            "p_cost_effective": {f"{w:g}": float(summary["ceac"].values[i, j])
                                 for j, w in enumerate(summary[dims.WTP].values)},
        }
        if "frontier_status" in summary:
            out[str(s)]["frontier_on_means"] = {
                "status": str(summary["frontier_status"].values[i]),
                "comparator": str(summary["comparator"].values[i]) or None,
                "icer": _number(summary["icer"].values[i]),
                **{f"inc_{name}": {k: _number(summary[f"inc_{name}_{k}"].values[i])
                                   for k in ("mean", "low", "high")}
                   for name in ("cost", "effect")},
            }
    return out


def _number(x) -> float | None:
    """A float for JSON: None for NaN (no comparator, or off the frontier)."""
    x = float(x)
    return None if np.isnan(x) else x


def run_records(result) -> list[dict]:
    """``vbhc run --json``: the decision table's records, each with its PSA summary if any
    and, when the scenario declares subgroups, its results in each subgroup."""
    records = to_records(result.table)
    if result.psa_summary is not None:
        psa = psa_records(result.psa_summary)
        for rec in records:
            rec["psa"] = psa[rec["strategy"]]
    errors = mcse_frame(result.outcomes, result.scenario.settings.effect)
    if errors is not None:
        for rec in records:
            row = errors[errors["strategy"] == rec["strategy"]].iloc[0]
            rec["mcse"] = {k[5:]: _clean(row[k]) for k in errors.columns if k != "strategy"}
    if result.subgroups is not None:
        frame = subgroup_frame(result.subgroups)
        wtp = result.subgroups[dims.WTP].values
        for rec in records:
            rows = frame[frame["strategy"] == rec["strategy"]]
            rec["subgroups"] = {
                row["subgroup"]: {
                    **{k: _clean(row[k]) for k in ("share", "cost", "effect", "inc_cost",
                                                   "inc_effect", "icer", "status",
                                                   "comparator", "dominated_by") if k in row},
                    "nmb": {f"{w:g}": _clean(row[f"nmb_at_{w:g}"]) for w in wtp},
                    "optimal": {f"{w:g}": bool(row[f"optimal_at_{w:g}"]) for w in wtp},
                    **({"p_cost_effective": {f"{w:g}": _clean(row[f"p_ce_at_{w:g}"])
                                             for w in wtp}}
                       if "ceac" in result.subgroups else {}),
                }
                for _, row in rows.iterrows()
            }
    return records


def mcse_frame(outcomes: xr.Dataset, effect: str) -> pd.DataFrame | None:
    """A microsimulation base case's Monte Carlo standard errors, one row per strategy
    (columns ``mcse_cost``, ``mcse_effect``, ``mcse_inc_cost``, ``mcse_inc_effect``), or
    None without them."""
    if "mcse_total_cost" not in outcomes:
        return None
    base = outcomes.isel({dims.DRAW: 0})
    return pd.DataFrame({
        "strategy": base[dims.STRATEGY].values,
        "mcse_cost": base["mcse_total_cost"].values,
        "mcse_effect": base[f"mcse_{effect}"].values,
        "mcse_inc_cost": base["mcse_inc_total_cost"].values,
        "mcse_inc_effect": base[f"mcse_inc_{effect}"].values,
    })


def subgroup_frame(table: xr.Dataset) -> pd.DataFrame:
    """subgroups.csv: one row per subgroup and strategy (from
    :func:`vbhc_model.analysis.subgroups.by_subgroup`)."""
    rows = []
    labels = table["strategy_label"].values if "strategy_label" in table.coords else None
    glabels = table["subgroup_label"].values if "subgroup_label" in table.coords else None
    wtp = table[dims.WTP].values
    for g, group in enumerate(table[dims.SUBGROUP].values):
        for j, strat in enumerate(table[dims.STRATEGY].values):
            row: dict[str, object] = {"subgroup": group}
            if glabels is not None:
                row["subgroup_label"] = glabels[g]
            if "share" in table:
                row["share"] = table["share"].values[g]
            row["strategy"] = strat
            if labels is not None:
                row["label"] = labels[j]
            for name in ("cost", "effect", "inc_cost", "inc_effect", "icer", "status",
                         "comparator", "dominated_by"):
                row[name] = table[name].values[g, j]
            for i, w in enumerate(wtp):
                row[f"nmb_at_{w:g}"] = table["nmb"].values[g, j, i]
                row[f"optimal_at_{w:g}"] = table["optimal"].values[g, i] == strat
                if "ceac" in table:
                    row[f"p_ce_at_{w:g}"] = table["ceac"].values[g, j, i]
            rows.append(row)
    return pd.DataFrame(rows)


#: What each column of summary.csv holds: (pattern, description, units); ``{x}`` is the part
#: of the name after the prefix, ``{cur}`` the currency, ``{eff}`` the effect measure.
_COLUMNS = (
    ("strategy", "strategy code", ""),
    ("label", "strategy label", ""),
    ("cost", "expected total cost per person, discounted (base case)", "{cur}"),
    ("effect", "expected effect per person, discounted (base case)", "{eff}"),
    ("qalys", "QALYs per person, discounted", "QALYs"),
    ("life_years", "life years per person, discounted", "years"),
    ("inc_cost", "incremental cost against the comparator on the frontier", "{cur}"),
    ("inc_effect", "incremental effect against the comparator on the frontier", "{eff}"),
    ("icer", "incremental cost-effectiveness ratio against the comparator", "{cur} per {one}"),
    ("status", "frontier, dominated or extendedly dominated", ""),
    ("comparator", "the strategy it is compared with on the frontier", ""),
    ("dominated_by", "the strategy or strategies that dominate it", ""),
    ("nmb_at_", "net monetary benefit per person at a willingness to pay of {x}", "{cur}"),
    ("cost_", "cost of category {x} per person, discounted", "{cur}"),
    ("use_", "use of {x} per person, undiscounted", "count"),
    ("hours_", "clinician hours of {x} per person, undiscounted", "hours"),
    ("share_", "share of the cohort at engagement level {x}", "share"),
    ("psa_cost_", "PSA: total cost per person, {x} over the draws", "{cur}"),
    ("psa_effect_", "PSA: effect per person, {x} over the draws", "{eff}"),
    ("psa_status", "PSA: frontier status on the mean costs and effects", ""),
    ("psa_comparator", "PSA: comparator on the frontier of the means", ""),
    ("psa_inc_cost_", "PSA: incremental cost against that comparator, {x} over the draws",
     "{cur}"),
    ("psa_inc_effect_", "PSA: incremental effect against that comparator, {x} over the draws",
     "{eff}"),
    ("psa_icer", "PSA: ICER of the mean costs and effects", "{cur} per {one}"),
    ("p_ce_at_", "PSA: probability of being cost-effective at a willingness to pay of {x}",
     "probability"),
    ("mcse_cost", "microsimulation: Monte Carlo standard error of the cost (batch means)",
     "{cur}"),
    ("mcse_effect", "microsimulation: Monte Carlo standard error of the effect", "{eff}"),
    ("mcse_inc_cost", "microsimulation: Monte Carlo standard error of the difference in cost "
     "from the first strategy (the same patients in every strategy)", "{cur}"),
    ("mcse_inc_effect", "microsimulation: Monte Carlo standard error of the difference in "
     "effect from the first strategy", "{eff}"),
    ("stepped_up", "share of the cohort switched by the strategy's steps (stepped care)",
     "share"),
    ("subgroup", "subgroup: an attribute and one of its levels", ""),
    ("subgroup_label", "subgroup label", ""),
    ("share", "the subgroup's share of the population (base case)", "share"),
    ("optimal_at_", "whether it has the highest net monetary benefit in the subgroup at a "
     "willingness to pay of {x} (base case)", "true/false"),
)
_STATS = {"mean": "mean", "low": "2.5% quantile", "high": "97.5% quantile"}


def column_dictionary(columns, currency: str, effect: str) -> pd.DataFrame:
    """What each column of a summary table holds, with its units (summary_columns.csv).

    Examples
    --------
    >>> column_dictionary(["strategy", "nmb_at_50000", "use_xray"], "USD 2025", "qalys")[
    ...     "units"].tolist()
    ['', 'USD 2025', 'count']
    """
    eff = EFFECT_LABELS.get(effect, effect)
    one = {"qalys": "QALY", "life_years": "life year"}.get(effect, effect)
    rows = []
    for col in columns:
        # The longest matching pattern: exact names first, then prefixes.
        found = next(((pat, d, u) for pat, d, u in _COLUMNS if col == pat), None) or max(
            ((pat, d, u) for pat, d, u in _COLUMNS if pat.endswith("_") and col.startswith(pat)),
            key=lambda t: len(t[0]), default=(col, "", ""))
        pat, desc, units = found
        x = col[len(pat):] if pat.endswith("_") else ""
        try:  # a willingness to pay: 50,000
            x = f"{float(x):,.0f}" if x else x
        except ValueError:
            x = _STATS.get(x, x.replace("_", " "))
        rows.append({"column": col, "description": desc.format(x=x, cur=currency, eff=eff),
                     "units": units.format(cur=currency, eff=eff, one=one)})
    return pd.DataFrame(rows)


def compare_frame(table: xr.Dataset) -> pd.DataFrame:
    """``vbhc compare``'s table as rows of (variant, strategy): label, cost, effect, status,
    ICER, then ``nmb_<wtp>`` and (with a PSA) ``p_ce_<wtp>`` columns."""
    rows = []
    wtps = [float(w) for w in table[dims.WTP].values]
    for i, v in enumerate(table["variant"].values):
        for j, s in enumerate(table[dims.STRATEGY].values):
            row = {"variant": str(v), "variant_label": str(table["variant_label"].values[i]),
                   "strategy": str(s)}
            for name in ("cost", "effect", "icer"):
                row[name] = float(table[name].values[i, j])
            row["status"] = str(table["status"].values[i, j])
            for k, w in enumerate(wtps):
                row[f"nmb_{w:g}"] = float(table["nmb"].values[i, j, k])
                if "p_ce" in table:
                    row[f"p_ce_{w:g}"] = float(table["p_ce"].values[i, j, k])
                row[f"optimal_{w:g}"] = str(table["optimal"].values[i, k]) == str(s)
            rows.append(row)
    return pd.DataFrame(rows)


def price_frame(prices: xr.Dataset) -> pd.DataFrame:
    """Value-based prices as rows of (strategy, wtp): the programme cost now, the price, and
    after a PSA ``price_p50``/``price_p80`` and ``p_best_at_current``. As in the console:
    only strategies with a programme cost, and an empty price where the strategy is not the
    best even if its programme were free (never a negative price)."""
    def price(v) -> float:
        return float(v) if v >= 0 else float("nan")

    rows = []
    for i, s in enumerate(prices[dims.STRATEGY].values):
        if not float(prices["programme_cost"].values[i]) > 0:
            continue  # no programme to price (usual care)
        for k, w in enumerate(prices[dims.WTP].values):
            row = {"strategy": str(s), "wtp": float(w),
                   "programme_cost": float(prices["programme_cost"].values[i]),
                   "price": price(prices["price"].values[i, k])}
            if "price_at_probability" in prices:
                for j, p in enumerate(prices["probability"].values):
                    row[f"price_p{100 * p:.0f}"] = price(
                        prices["price_at_probability"].values[i, k, j])
                row["p_best_at_current"] = float(prices["p_best_at_current"].values[i, k])
            rows.append(row)
    return pd.DataFrame(rows)


#: Plan summaries already made, by the totals they summarise (``vbhc plan`` writes one and
#: prints it: made once).
_SUMMARIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plan_summary(totals: xr.Dataset) -> xr.Dataset:
    """:func:`_plan_summary`, made once per totals object (the same object, not an equal
    one; the result is shared: do not modify it)."""
    try:
        return _SUMMARIES[totals]
    except (KeyError, TypeError):
        pass
    summary = _plan_summary(totals)
    with contextlib.suppress(TypeError):
        _SUMMARIES[totals] = summary
    return summary


def _plan_summary(totals: xr.Dataset) -> xr.Dataset:
    """A plan's measures by mix and calendar year: mean over draws and 95% interval (equal
    to the mean with one draw), plus the new mix's increment over the current one."""
    from vbhc_model.defaults import INTERVAL

    measures = {"total_budget": totals["total_budget"], "pmpm": totals["pmpm"],
                "qalys": totals["qalys"]}
    for name in ("responders", "completing", "programme_starters"):
        if name in totals:
            measures[name] = totals[name]
    for c in totals[dims.CATEGORY].values:
        measures[f"budget_{c}"] = totals["budget"].sel({dims.CATEGORY: c}, drop=True)
    for r in totals[dims.ROLE].values:
        measures[f"hours_{r}"] = totals["clinician_hours"].sel({dims.ROLE: r}, drop=True)
    if "fte_needed" in totals:
        for r in totals["plan_role"].values:
            measures[f"fte_needed_{r}"] = totals["fte_needed"].sel(plan_role=r, drop=True)
    queue = {}  # the new mix's waiting (not compared with the current mix)
    if "wait_weeks" in totals:
        for r in totals["plan_role"].values:
            for name in ("occupancy", "wait_weeks", "backlog", "dropped_out",
                         "caseload_per_fte"):
                if name in totals:
                    queue[f"{name}_{r}"] = totals[name].sel(plan_role=r, mix="new", drop=True)
        for name in ("qalys_lost_waiting", "net_benefit_lost"):
            queue[name] = totals[name].sel(mix="new", drop=True)
    # every measure's mean and interval at once (np.quantile over the draws, one call)
    stats = {}
    for name, x in measures.items():
        stats[name] = x
        stats[f"{name}_increment"] = x.sel(mix="new", drop=True) - x.sel(mix="current", drop=True)
    stats.update({f"queue_{name}": x for name, x in queue.items()})
    nb = totals["net_benefit"] if "net_benefit" in totals else None
    if nb is not None:  # each mix over the whole plan, and its gain over the current mix
        stats["net_benefit"] = nb
        stats["net_benefit_gain"] = nb - nb.sel(mix="current")  # draw by draw
    stats = xr.Dataset(stats)
    mean = stats.mean(dims.DRAW)
    bounds = stats.quantile(list(INTERVAL), dims.DRAW, method="linear", skipna=False)
    out = {}
    for name in stats.data_vars:
        out[f"{name}_mean"] = mean[name]
        out[f"{name}_low"] = bounds[name].isel(quantile=0, drop=True)
        out[f"{name}_high"] = bounds[name].isel(quantile=1, drop=True)
    ds = xr.Dataset(out)
    if nb is not None:
        best = nb.mean(dims.DRAW).argmax("mix")
        ds["best_mix"] = (dims.WTP, [str(nb["mix"].values[int(b)]) for b in best.values])
        ds["p_best_mix"] = (nb == nb.max("mix")).mean(dims.DRAW)
    ds["starting"] = totals["starting"]
    for name in ("fte_available", "caseload_limit"):
        if name in totals:
            ds[name] = totals[name]
    ds.attrs = dict(totals.attrs)
    return ds


STATS = ("mean", "low", "high")


def stack_stats(summary: xr.Dataset) -> xr.Dataset:
    """A plan summary as written to ``plan.nc``: each measure's ``<name>_mean``, ``_low`` and
    ``_high`` as one variable ``<name>`` with a dimension ``stat`` (mean, low, high): a third
    of the variables (h5netcdf's cost is per variable) and the layout a reader expects.
    :func:`unstack_stats` undoes it.

    Examples
    --------
    >>> s = xr.Dataset({"x_mean": 1.0, "x_low": 0.5, "x_high": 2.0, "starting": 3.0})
    >>> stacked = stack_stats(s)
    >>> stacked["x"].sel(stat="low").item(), sorted(stacked.data_vars)
    (0.5, ['starting', 'x'])
    >>> unstack_stats(stacked).identical(s[["x_mean", "x_low", "x_high", "starting"]])
    True
    """
    out, done = {}, set()
    for name in summary.data_vars:
        base = str(name)[:-len("_mean")]
        parts = [f"{base}_{s}" for s in STATS]
        if str(name).endswith("_mean") and all(p in summary for p in parts):
            first = summary[parts[0]]
            values = np.stack([summary[p].transpose(*first.dims).values for p in parts])
            out[base] = xr.DataArray(values, dims=("stat",) + first.dims,
                                     coords={**first.coords, "stat": list(STATS)},
                                     attrs=first.attrs)
            done.update(parts)
    rest = {k: v for k, v in summary.data_vars.items() if k not in done}
    return xr.Dataset({**out, **rest}, attrs=summary.attrs)


def unstack_stats(stacked: xr.Dataset) -> xr.Dataset:
    """``plan.nc``'s layout back to the summary's: ``<name>_mean``, ``_low``, ``_high``."""
    out = {}
    for name, x in stacked.data_vars.items():
        if "stat" in x.dims:
            out.update({f"{name}_{s}": x.sel(stat=s, drop=True) for s in STATS})
        else:
            out[name] = x
    return xr.Dataset(out, attrs=stacked.attrs).drop_vars("stat", errors="ignore")


def money(attrs) -> str:
    """The currency and price year a result's attrs state ("USD 2025"; "" if none)."""
    return " ".join(str(attrs[k]) for k in ("currency", "price_year")
                    if attrs.get(k) and attrs.get(k) != "not stated")


def plan_frame(summary: xr.Dataset) -> pd.DataFrame:
    """A plan's summary as rows of (calendar year, measure): the new mix's mean and interval,
    the current mix's mean, and the increment's mean and interval."""
    names = sorted({k.rsplit("_", 1)[0] for k in summary.data_vars
                    if k.endswith("_mean") and not k.rsplit("_", 1)[0].endswith("_increment")
                    and not k.startswith(("queue_", "net_benefit"))})
    queue = sorted(k[: -len("_mean")] for k in summary.data_vars
                   if k.startswith("queue_") and k.endswith("_mean"))
    years = summary["calendar_year"].values

    def by_year(name: str, **at) -> np.ndarray:  # one value per calendar year, in order
        return summary[name].sel(**at).transpose("calendar_year").values

    columns = {}  # measure -> {column: values by year}, each selected once
    for name in names:
        columns[name] = {
            "new": by_year(f"{name}_mean", mix="new"),
            "new_low": by_year(f"{name}_low", mix="new"),
            "new_high": by_year(f"{name}_high", mix="new"),
            "current": by_year(f"{name}_mean", mix="current"),
            "increment": by_year(f"{name}_increment_mean"),
            "increment_low": by_year(f"{name}_increment_low"),
            "increment_high": by_year(f"{name}_increment_high")}
    for key in queue:
        columns[key] = {b: by_year(f"{key}_{s}") for b, s in
                        (("new", "mean"), ("new_low", "low"), ("new_high", "high"))}
    rows = []
    for i, y in enumerate(years):
        for name in names + queue:
            row = {"calendar_year": int(y),
                   "measure": name[len("queue_"):] if name in queue else name}
            row.update({c: float(v[i]) for c, v in columns[name].items()})
            rows.append(row)
    return pd.DataFrame(rows)


def plan_dashboard(summary: xr.Dataset) -> pd.DataFrame:
    """The quadruple aim of a plan in one view (the new mix, over the plan's years, means):
    population health, patient experience, per-capita cost and clinicians; money in the
    plan's currency and price year ("USD 2025")."""
    years = summary["calendar_year"].values
    cur = money(summary.attrs) or "cost units"
    rows = []
    label = ({str(r): str(v) for r, v in zip(summary["plan_role"].values,
                                             summary["plan_role_label"].values)}
             if "plan_role_label" in summary.coords else {})

    def add(aim: str, measure: str, value: float, unit: str, note: str = "") -> None:
        rows.append({"aim": aim, "measure": measure, "value": value, "unit": unit,
                     "note": note})

    add("population health", "QALYs gained over the current mix",
        float(summary["qalys_increment_mean"].sum()), "QALYs", f"years 1-{len(years)}")
    if "responders_mean" in summary:
        resp = summary["responders_mean"]
        last = years[-1]
        add("population health", f"people responding in year {last} (mean over the year)",
            float(resp.sel(mix="new", calendar_year=last)), "patients",
            f"current mix {float(resp.sel(mix='current', calendar_year=last)):,.0f}")
        add("population health", "responder-years gained over the current mix",
            float(summary["responders_increment_mean"].sum()), "person-years",
            f"years 1-{len(years)}")
    start = summary["starting"]
    current = set(np.asarray(start["strategy"].values)[
        start.sel(mix="current").sum("calendar_year").values > 0])
    new = start.sel(mix="new")
    in_programmes = new.sel(strategy=[s for s in new["strategy"].values
                                      if s not in current]).sum()
    add("patient experience", "share of patients starting a new programme",
        float(in_programmes / new.sum()), "share", "starts over the plan")
    if "completing_mean" in summary:
        done = float(summary["completing_mean"].sel(mix="new").sum())
        began = float(summary["programme_starters_mean"].sel(mix="new").sum())
        add("patient experience", "programme completion (completers / starters)",
            done / began if began > 0 else float("nan"), "share",
            f"{done:,.0f} of {began:,.0f} starters over the plan")
    for key in summary.data_vars:
        if key.startswith("queue_wait_weeks_") and key.endswith("_mean"):
            role = key[len("queue_wait_weeks_"):-len("_mean")]
            name = label.get(role, role)
            add("patient experience", f"longest mean wait for {name}",
                float(summary[key].max()), "weeks", "the worst year")
            add("patient experience", f"most patients waiting for {name} at a year's end",
                float(summary[f"queue_backlog_{role}_mean"].max()), "patients")
            if f"queue_dropped_out_{role}_mean" in summary:
                gave_up = summary[f"queue_dropped_out_{role}_mean"]
                add("patient experience", f"patients who gave up waiting for {name}",
                    float(gave_up.sum()), "patients",
                    f"over the plan; most in a year {float(gave_up.max()):,.0f}; usual care "
                    "instead")
    pmpm = summary["pmpm_mean"]
    add("per-capita cost", f"per member per month, year {years[-1]}",
        float(pmpm.sel(mix="new", calendar_year=years[-1])), cur,
        f"current mix {float(pmpm.sel(mix='current', calendar_year=years[-1])):,.2f}")
    add("per-capita cost", "budget impact over the plan (new - current)",
        float(summary["total_budget_increment_mean"].sum()), cur, "undiscounted")
    if "fte_available" in summary:
        for role in summary["plan_role"].values:
            need = summary[f"fte_needed_{role}_mean"].sel(mix="new")
            have = summary["fte_available"].sel(plan_role=role)
            ratio = (need / have).values
            name = label.get(str(role), str(role))
            add("clinicians", f"{name}: peak FTE needed / available", float(np.nanmax(ratio)),
                "ratio", f"years over capacity: {int((ratio > 1).sum())} of {len(years)}")
            if f"queue_occupancy_{role}_mean" in summary:
                add("clinicians", f"{name}: peak occupancy of the places",
                    float(summary[f"queue_occupancy_{role}_mean"].max()), "share")
            if f"queue_caseload_per_fte_{role}_mean" in summary:
                limit = (float(summary["caseload_limit"].sel(plan_role=role))
                         if "caseload_limit" in summary else float("nan"))
                add("clinicians", f"{name}: peak caseload per FTE",
                    float(summary[f"queue_caseload_per_fte_{role}_mean"].max()), "patients",
                    "patients in the programme at a time per FTE available"
                    + (f"; limit {limit:,.0f}" if math.isfinite(limit) else ""))
    return pd.DataFrame(rows)

