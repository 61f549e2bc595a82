"""Deterministic sensitivity analysis runs: one-way (tornado), two-way and threshold.

Every variation of the parameters is one row of the draws array, so a whole one-way analysis
(two rows per parameter) or a two-way grid is a single vectorised run of the engine. The
values varied over come from :mod:`vbhc_model.parameters.ranges`; the decision read from the
runs from :mod:`vbhc_model.analysis.tornado`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.analysis.tornado import (
    incremental_net_benefit,
    net_benefit,
    one_way_table,
    two_way_table,
)
from vbhc_model.errors import VbhcError
from vbhc_model.parameters.draws import base_draws
from vbhc_model.parameters.ranges import (
    apply_settings,
    describe_left_out,
    parameter_ranges,
    ranges_and_left_out,
)
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.provenance import make_attrs
from vbhc_model.results import DsaResult, Threshold
from vbhc_model.scenario.schema import Scenario


def _nmb(scenario: Scenario, draws: xr.DataArray, wtp: float) -> xr.DataArray:
    # Under the microsimulation every variation meets the same patients (common random
    # numbers), so that a change in net benefit is the parameter's, not the patients' luck.
    return net_benefit(simulate(scenario, draws, same_patients=True), scenario.settings.effect,
                       wtp)


def one_way(scenario: Scenario, wtp: float, names: Sequence[str] | None = None) -> xr.Dataset:
    """One-way analysis of each parameter over its range, on incremental net benefit.

    Returns
    -------
    xarray.Dataset
        :func:`vbhc_model.analysis.tornado.one_way_table`.
    """
    ranges, left_out = ranges_and_left_out(scenario, names)
    if not ranges:
        raise VbhcError("no parameter has a range or a distribution to vary"
                        + (f"; {describe_left_out(left_out)}" if left_out else ""))
    base = base_draws(scenario, 1 + 2 * len(ranges))
    values = base.values
    cols = {str(p): j for j, p in enumerate(base[dims.PARAMETER].values)}
    for i, (name, (lo, hi, _)) in enumerate(ranges.items()):
        apply_settings(scenario, cols, values[0], values[1 + 2 * i:3 + 2 * i],
                       {name: np.array([lo, hi])})
    return one_way_table(ranges, _nmb(scenario, base, wtp), wtp, describe_left_out(left_out))


def two_way(scenario: Scenario, a: str, b: str, wtp: float, n: int = 11) -> xr.Dataset:
    """The optimal strategy on an ``n x n`` grid of two parameters over their ranges (two
    members of one Dirichlet row are set together, the row's other members rescaled; cells
    where they sum to more than 1 are marked ``(infeasible)``, their NMB NaN)."""
    if a == b:
        raise VbhcError(f"--two-way needs two different parameters; got {a} twice")
    ranges = parameter_ranges(scenario, [a, b])
    grid_a = np.linspace(*ranges[a][:2], n)
    grid_b = np.linspace(*ranges[b][:2], n)
    draws = base_draws(scenario, n * n)
    cols = {str(p): j for j, p in enumerate(draws[dims.PARAMETER].values)}
    aa, bb = np.meshgrid(grid_a, grid_b, indexing="ij")
    bad = apply_settings(scenario, cols, draws.values[0].copy(), draws.values,
                         {a: aa.ravel(), b: bb.ravel()}, infeasible=True)
    return two_way_table(a, b, grid_a, grid_b, _nmb(scenario, draws, wtp), bad, wtp)


def threshold(scenario: Scenario, name: str, strategy: str, wtp: float,
              n_grid: int = 41) -> Threshold:
    """The value of ``name`` at which ``strategy`` becomes (or stops being) optimal.

    A grid over the parameter's range (one vectorised run) brackets the sign changes of the
    strategy's incremental net benefit; ``scipy.optimize.brentq`` refines the first.

    Raises
    ------
    VbhcError
        When the incremental net benefit does not change sign over the range.
    """
    from scipy import optimize

    if strategy not in scenario.strategies:
        raise VbhcError(f"unknown strategy '{strategy}'; the scenario has "
                        f"{', '.join(scenario.strategies)}")
    lo, hi, basis = parameter_ranges(scenario, [name])[name]
    base = base_draws(scenario, 1)
    cols = {str(p): j for j, p in enumerate(base[dims.PARAMETER].values)}

    def inmb_at(values: np.ndarray) -> np.ndarray:
        draws = base_draws(scenario, len(values))
        apply_settings(scenario, cols, base.values[0], draws.values, {name: values})
        return incremental_net_benefit(_nmb(scenario, draws, wtp), strategy).values

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
    return Threshold(parameter=name, strategy=strategy, wtp=float(wtp), value=float(value),
                     inmb_at_value=float(inmb_at(np.array([value]))[0]), range=(lo, hi),
                     basis=basis, more_thresholds=int(change.size - 1),
                     optimal_side="below" if f[i] > 0 or (f[i] == 0 and f[i + 1] < 0)
                     else "above")


def run_dsa(scenario: Scenario, *, wtp: float | None = None,
            names: Sequence[str] | None = None, pair: Sequence[str] | None = None,
            threshold_of: str | None = None, strategy: str | None = None) -> DsaResult:
    """The one-way analysis, and optionally a two-way map of ``pair`` and the threshold of
    ``threshold_of`` for ``strategy``, at ``wtp`` (default: the scenario's first).

    Raises
    ------
    VbhcError
        A pair that is not two parameters, a threshold without a strategy, and the errors of
        the analyses.
    """
    lam = float(wtp if wtp is not None else scenario.settings.wtp[0])
    if pair is not None and len(pair) != 2:
        raise VbhcError(f"--two-way takes two parameters A,B; got {','.join(pair)!r}")
    if threshold_of and not strategy:
        raise VbhcError("--threshold needs --strategy")
    s = scenario.settings
    micro = s.engine != "cohort"
    # provenance: the scenario, its currency, the engine (and the patients every variation
    # met, for a microsimulation), beside what the analysis records itself
    provenance = make_attrs(scenario, n_draws=1, engine=s.engine,
                            n_patients=s.patients if micro else None,
                            patients="the same patients in every variation" if micro else None)
    provenance.pop("n_draws")
    ow = one_way(scenario, lam, names)
    ow.attrs = {**provenance, **ow.attrs}
    tw = two_way(scenario, pair[0], pair[1], lam) if pair is not None else None
    if tw is not None:
        tw.attrs = {**provenance, **tw.attrs}
    return DsaResult(
        scenario=scenario,
        one_way=ow,
        two_way=tw,
        threshold=threshold(scenario, threshold_of, strategy, lam) if threshold_of else None,
    )
