"""Deterministic sensitivity analysis: one-way (tornado), two-way and threshold analyses.

Every variation of the parameters is one row of the draws array, so a whole one-way analysis
(two rows per parameter) or a two-way grid is a single vectorised run of the engine.
Decisions are read on net monetary benefit at one willingness to pay: the *incremental* net
benefit of a strategy is its NMB minus the best NMB among the other strategies, so it is
positive exactly when the strategy is optimal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import optimize

from vbhc_model import dims
from vbhc_model.distributions import make_distribution
from vbhc_model.errors import VbhcError
from vbhc_model.parameters import base_draws
from vbhc_model.scenario.schema import Scenario
from vbhc_model.simulate import simulate


def parameter_ranges(scenario: Scenario, names: Sequence[str] | None = None) -> dict:
    """``{name: (low, high, basis)}``: the explicit ``range``, else the 95% interval of the
    distribution or posterior; parameters with none (or drawn jointly) are left out unless
    named."""
    free = [str(p) for p in base_draws(scenario)[dims.PARAMETER].values]
    wanted = list(names) if names else free
    out = {}
    for name in wanted:
        if name not in free:
            raise VbhcError(f"'{name}' is not a parameter with a value of its own; choose one "
                            f"of {', '.join(free[:10])}{', ...' if len(free) > 10 else ''}")
        p = scenario.parameters[name]
        if p.range is not None:
            out[name] = (p.range[0], p.range[1], "range")
            continue
        if p.posterior is not None:
            from vbhc_model.parameters.posterior import read_posterior, resolve

            ref = p.posterior
            post = read_posterior(resolve(ref.file, scenario.source.file),
                                  [(ref.variable, ref.select)])
            lo, hi = np.quantile(post.get(ref.variable, ref.select), [0.025, 0.975])
            out[name] = (float(lo), float(hi), "95% posterior interval")
            continue
        dist = None
        if p.distribution is not None:
            spec = p.distribution.model_dump()
            dist = make_distribution(spec.pop("type"), spec)
        if dist is not None:
            out[name] = (float(dist.ppf(0.025)), float(dist.ppf(0.975)), "95% interval")
        elif names:
            raise VbhcError(f"parameters.{name}: no range and no distribution to vary it over; "
                            "add 'range: [low, high]'")
    return out


def _nmb(scenario: Scenario, draws: xr.DataArray, wtp: float) -> xr.DataArray:
    out = simulate(scenario, draws)
    return out[scenario.settings.effect] * wtp - out["total_cost"]  # [draw, strategy]


def _incremental(nmb: xr.DataArray, strategy: str) -> xr.DataArray:
    others = nmb.drop_sel({dims.STRATEGY: strategy}).max(dims.STRATEGY)
    return nmb.sel({dims.STRATEGY: strategy}) - others


def one_way(scenario: Scenario, wtp: float, names: Sequence[str] | None = None) -> xr.Dataset:
    """One-way analysis of each parameter over its range, on incremental net benefit.

    Returns
    -------
    xarray.Dataset
        Dim ``parameter`` (sorted by the width of the swing): ``low``, ``high`` (parameter
        values), ``inmb_low``, ``inmb_high`` (incremental NMB of the base-case optimal
        strategy against the best other strategy), ``optimal_low``, ``optimal_high``,
        ``basis``; attrs ``strategy`` (the base-case optimal) and ``base_inmb``.
    """
    ranges = parameter_ranges(scenario, names)
    if not ranges:
        raise VbhcError("no parameter has a range or a distribution to vary")
    base = base_draws(scenario, 1 + 2 * len(ranges))
    values = base.values
    cols = {str(p): j for j, p in enumerate(base[dims.PARAMETER].values)}
    for i, (name, (lo, hi, _)) in enumerate(ranges.items()):
        values[1 + 2 * i, cols[name]] = lo
        values[2 + 2 * i, cols[name]] = hi
    nmb = _nmb(scenario, base, wtp)
    best = str(nmb.isel(draw=0).idxmax(dims.STRATEGY).values)
    inmb = _incremental(nmb, best).values
    optimal = nmb.idxmax(dims.STRATEGY).values
    names_ = list(ranges)
    res = xr.Dataset(
        {
            "low": (dims.PARAMETER, [r[0] for r in ranges.values()]),
            "high": (dims.PARAMETER, [r[1] for r in ranges.values()]),
            "inmb_low": (dims.PARAMETER, inmb[1::2]),
            "inmb_high": (dims.PARAMETER, inmb[2::2]),
            "optimal_low": (dims.PARAMETER, [str(v) for v in optimal[1::2]]),
            "optimal_high": (dims.PARAMETER, [str(v) for v in optimal[2::2]]),
            "basis": (dims.PARAMETER, [r[2] for r in ranges.values()]),
        },
        coords={dims.PARAMETER: names_},
        attrs={"strategy": best, "base_inmb": float(inmb[0]), "wtp": float(wtp),
               "measure": "incremental net monetary benefit vs the best other strategy"},
    )
    swing = np.abs(res["inmb_high"] - res["inmb_low"])
    return res.isel({dims.PARAMETER: np.argsort(-swing.values, kind="stable")})


def two_way(scenario: Scenario, a: str, b: str, wtp: float, n: int = 11) -> xr.Dataset:
    """The optimal strategy on an ``n x n`` grid of two parameters over their ranges."""
    ranges = parameter_ranges(scenario, [a, b])
    grid_a = np.linspace(*ranges[a][:2], n)
    grid_b = np.linspace(*ranges[b][:2], n)
    draws = base_draws(scenario, n * n)
    cols = {str(p): j for j, p in enumerate(draws[dims.PARAMETER].values)}
    aa, bb = np.meshgrid(grid_a, grid_b, indexing="ij")
    draws.values[:, cols[a]] = aa.ravel()
    draws.values[:, cols[b]] = bb.ravel()
    nmb = _nmb(scenario, draws, wtp)
    optimal = nmb.idxmax(dims.STRATEGY).values.reshape(n, n)
    return xr.Dataset(
        {"optimal": ((a, b), optimal.astype(str)),
         "nmb": ((a, b, dims.STRATEGY), nmb.values.reshape(n, n, -1))},
        coords={a: grid_a, b: grid_b, dims.STRATEGY: nmb[dims.STRATEGY].values},
        attrs={"wtp": float(wtp)},
    )


def threshold(scenario: Scenario, name: str, strategy: str, wtp: float,
              n_grid: int = 41) -> dict:
    """The value of ``name`` at which ``strategy`` becomes (or stops being) optimal.

    A grid over the parameter's range (one vectorised run) brackets the sign changes of the
    strategy's incremental net benefit; ``scipy.optimize.brentq`` refines the first.

    Raises
    ------
    VbhcError
        When the incremental net benefit does not change sign over the range.
    """
    if strategy not in scenario.strategies:
        raise VbhcError(f"unknown strategy '{strategy}'; the scenario has "
                        f"{', '.join(scenario.strategies)}")
    lo, hi, basis = parameter_ranges(scenario, [name])[name]
    base = base_draws(scenario, 1)
    col = [str(p) for p in base[dims.PARAMETER].values].index(name)

    def inmb_at(values: np.ndarray) -> np.ndarray:
        draws = base_draws(scenario, len(values))
        draws.values[:, col] = values
        return _incremental(_nmb(scenario, draws, wtp), strategy).values

    grid = np.linspace(lo, hi, n_grid)
    f = inmb_at(grid)
    change = np.flatnonzero(np.sign(f[:-1]) * np.sign(f[1:]) <= 0)
    if change.size == 0:
        state = "always" if f[0] > 0 else "never"
        raise VbhcError(
            f"no threshold for {name} in [{lo:.6g}, {hi:.6g}] ({basis}): '{strategy}' is "
            f"{state} the optimal strategy at {wtp:,.0f} over that range"
        )
    i = int(change[0])
    if f[i] == 0:
        value = grid[i]
    else:
        value = optimize.brentq(lambda x: float(inmb_at(np.array([x]))[0]), grid[i],
                                grid[i + 1], xtol=1e-12 * max(1.0, abs(grid[i])))
    return {"parameter": name, "strategy": strategy, "wtp": float(wtp), "value": float(value),
            "inmb_at_value": float(inmb_at(np.array([value]))[0]), "range": (lo, hi),
            "basis": basis, "more_thresholds": int(change.size - 1)}
