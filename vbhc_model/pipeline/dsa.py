"""Deterministic sensitivity analysis: one-way (tornado), two-way and threshold analyses.

Every variation of the parameters is one row of the draws array, so a whole one-way analysis
(two rows per parameter) or a two-way grid is a single vectorised run of the engine.
Decisions are read on net monetary benefit at one willingness to pay: the *incremental* net
benefit of a strategy is its NMB minus the best NMB among the other strategies, so it is
positive exactly when the strategy is optimal.

Parameters drawn jointly in the PSA are varied one at a time over their marginal 95% intervals
(multivariate normal: mean +/- 1.96 sd; Dirichlet: the Beta marginal, the rest of the row
rescaled to keep it summing to one), as are parameters taken from a posterior or a CSV table
of samples (their 2.5% and 97.5% quantiles); correlations are not propagated, as is usual in
a one-way analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.distributions import Z975, make_distribution
from vbhc_model.errors import VbhcError
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario.schema import Scenario


def parameter_ranges(scenario: Scenario, names: Sequence[str] | None = None) -> dict:
    """``{name: (low, high, basis)}``: the explicit ``range``, else the 95% interval of the
    parameter's distribution, of its marginal in a joint group, of its posterior draws or of
    its samples. Parameters with none are left out unless named (then an error says why); see
    :func:`ranges_and_left_out` for the reasons."""
    return ranges_and_left_out(scenario, names)[0]


def ranges_and_left_out(scenario: Scenario,
                        names: Sequence[str] | None = None) -> tuple[dict, dict]:
    """The ranges of :func:`parameter_ranges` and ``{name: reason}`` for the free parameters
    left out (only when ``names`` is not given: a named parameter that cannot be varied is an
    error).

    A member of a multivariate normal group is varied over its marginal 95% interval, mean
    +/- 1.96 sd (the covariance's diagonal); a member of a Dirichlet row over the quantiles of
    its Beta(alpha_i, alpha_0 - alpha_i) marginal, the other members being rescaled (see
    :func:`_apply`). Correlations are not propagated: the other parameters stay at base.
    """
    free = [str(p) for p in base_draws(scenario)[dims.PARAMETER].values]
    wanted = list(names) if names else free
    members = _joint_members(scenario)
    out: dict = {}
    left_out: dict = {}
    for name in wanted:
        if name not in free:
            raise VbhcError(f"'{name}' is not a parameter with a value of its own; choose one "
                            f"of {', '.join(free[:10])}{', ...' if len(free) > 10 else ''}")
        try:
            found = _range(scenario, name, members.get(name))
        except _LeftOut as exc:
            if names:
                raise VbhcError(f"parameters.{name}: {exc}{exc.hint}") from None
            left_out[name] = str(exc)
            continue
        out[name] = found
    return out, left_out


class _LeftOut(Exception):
    """A parameter that cannot be varied; the message says why, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.hint = hint


_ADD_RANGE = "; add 'range: [low, high]'"


def _joint_members(scenario: Scenario) -> dict:
    """``{parameter: (group name, JointDistribution, index in the group)}``."""
    return {n: (g, joint, i) for g, joint in scenario.joint.items()
            for i, n in enumerate(joint.parameters)}


def _range(scenario: Scenario, name: str, member: tuple | None) -> tuple[float, float, str]:
    p = scenario.parameters[name]
    if member is not None and member[1].type == "dirichlet":
        _check_dirichlet_row(scenario, member[0], member[1], name)
    if p.range is not None:
        lo, hi, basis = p.range[0], p.range[1], "range"
    elif p.posterior is not None:
        from vbhc_model.readers.posterior import PosteriorError, read_posterior, resolve

        ref = p.posterior
        try:
            post = read_posterior(resolve(ref.file, scenario.source.file),
                                  [(ref.variable, ref.select)])
        except PosteriorError as exc:
            raise _LeftOut(f"posterior unreadable ({exc})") from None
        lo, hi = np.quantile(post.get(ref.variable, ref.select), [0.025, 0.975])
        basis = "95% posterior interval"
    elif p.samples is not None:
        from vbhc_model.readers.posterior import resolve
        from vbhc_model.readers.samples import SamplesError, read_samples

        try:
            column = read_samples(resolve(p.samples.file, scenario.source.file)).get(
                p.samples.column)
        except SamplesError as exc:
            raise _LeftOut(f"samples unreadable ({exc})") from None
        lo, hi = np.quantile(column, [0.025, 0.975])
        basis = "95% interval of its samples"
    elif member is not None:
        group, joint, i = member
        if joint.type == "mvnormal":
            mean = (joint.mean[i] if joint.mean is not None
                    else float(p.value.evaluate({})))
            sd = float(np.sqrt(joint.covariance_matrix()[i, i]))
            lo, hi = mean - Z975 * sd, mean + Z975 * sd
            basis = f"95% marginal interval, mvnormal '{group}'"
        else:
            from scipy import stats

            a = np.asarray(joint.alpha, dtype=float)
            lo, hi = stats.beta(a[i], a.sum() - a[i]).ppf([0.025, 0.975])
            basis = f"95% marginal interval, Dirichlet '{group}', others rescaled"
    elif p.distribution is not None:
        spec = p.distribution.model_dump()
        dist = make_distribution(spec.pop("type"), spec)
        if dist is None:
            raise _LeftOut("no range and a fixed distribution", _ADD_RANGE)
        lo, hi = dist.ppf(0.025), dist.ppf(0.975)
        basis = "95% interval"
    else:
        raise _LeftOut("no range and no distribution to vary it over", _ADD_RANGE)
    if member is not None and member[1].type == "dirichlet" and not 0 <= lo < hi <= 1:
        raise _LeftOut(f"a member of Dirichlet row '{member[0]}' needs a range within [0, 1], "
                       f"got [{lo:.6g}, {hi:.6g}]")
    return float(lo), float(hi), basis


def _check_dirichlet_row(scenario: Scenario, group: str, joint, name: str) -> None:
    """Refuse (with the reason) a Dirichlet member whose row cannot be kept summing to one
    by rescaling the other members' base values."""
    base = {n: float(scenario.parameters[n].value.evaluate({})) for n in joint.parameters}
    total = sum(base.values())
    if abs(total - 1) > 1e-6:
        raise _LeftOut(f"Dirichlet row '{group}': its base values sum to {total:.6g}, not 1, "
                       "so the other members cannot be rescaled to keep the row summing to 1")
    if not sum(v for n, v in base.items() if n != name) > 0:
        raise _LeftOut(f"Dirichlet row '{group}': the other members are 0 in the base case, "
                       "so they cannot be rescaled")


def _apply(scenario: Scenario, cols: dict, base_row: np.ndarray, block: np.ndarray,
           settings: dict, infeasible: bool = False) -> np.ndarray:
    """Set parameters in ``block`` (rows of a draws matrix, in place): ``{name: values}``.
    Returns which rows are infeasible (members of one Dirichlet row set to more than 1 in
    all); those are an error unless ``infeasible``, then they are left at the base values.

    The other members of a Dirichlet row with a member set keep their base proportions and
    are rescaled so that the row sums to one: x_j = base_j (1 - sum of the set members) /
    (sum of the others' base values).
    """
    bad = np.zeros(len(block), dtype=bool)
    for name, x in settings.items():
        block[:, cols[name]] = x
    for group, joint in scenario.joint.items():
        if joint.type != "dirichlet" or not any(n in settings for n in joint.parameters):
            continue
        rest = [cols[n] for n in joint.parameters if n not in settings]
        rest_base = base_row[rest]
        if not rest or not rest_base.sum() > 0:
            raise VbhcError(f"Dirichlet row '{group}': varying "
                            f"{', '.join(n for n in joint.parameters if n in settings)} leaves "
                            "no other member to rescale")
        left = 1 - block[:, [cols[n] for n in joint.parameters if n in settings]].sum(axis=1)
        if (left < 0).any() and not infeasible:
            raise VbhcError(f"Dirichlet row '{group}': the values varied sum to more than 1")
        bad |= left < 0
        block[:, rest] = rest_base * (np.maximum(left, 0) / rest_base.sum())[:, None]
    block[bad] = base_row
    return bad


def _left_out_line(left_out: dict) -> str:
    """One line: the parameters left out, grouped by reason."""
    if not left_out:
        return ""
    by_reason: dict = {}
    for name, reason in left_out.items():
        by_reason.setdefault(reason, []).append(name)
    return (f"left out ({len(left_out)}): "
            + "; ".join(f"{', '.join(n)} ({r})" for r, n in by_reason.items()))


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
        ``basis``; attrs ``strategy`` (the base-case optimal), ``base_inmb`` and
        ``left_out`` (one line: the free parameters not varied and why; empty if none).
    """
    ranges, left_out = ranges_and_left_out(scenario, names)
    if not ranges:
        raise VbhcError("no parameter has a range or a distribution to vary"
                        + (f"; {_left_out_line(left_out)}" if left_out else ""))
    base = base_draws(scenario, 1 + 2 * len(ranges))
    values = base.values
    cols = {str(p): j for j, p in enumerate(base[dims.PARAMETER].values)}
    for i, (name, (lo, hi, _)) in enumerate(ranges.items()):
        _apply(scenario, cols, values[0], values[1 + 2 * i:3 + 2 * i],
               {name: np.array([lo, hi])})
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
               "measure": "incremental net monetary benefit vs the best other strategy",
               "left_out": _left_out_line(left_out)},
    )
    swing = np.abs(res["inmb_high"] - res["inmb_low"])
    return res.isel({dims.PARAMETER: np.argsort(-swing.values, kind="stable")})


#: The two-way map's label for a grid cell no model can have (members of one Dirichlet row
#: summing to more than 1).
INFEASIBLE = "(infeasible)"


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
    bad = _apply(scenario, cols, draws.values[0].copy(), draws.values,
                 {a: aa.ravel(), b: bb.ravel()}, infeasible=True)
    nmb = _nmb(scenario, draws, wtp)
    optimal = nmb.idxmax(dims.STRATEGY).values.astype(object)  # str would cut the label
    optimal[bad] = INFEASIBLE
    optimal = optimal.astype(str)
    values = nmb.values.copy()
    values[bad] = np.nan
    return xr.Dataset(
        {"optimal": ((a, b), optimal.reshape(n, n)),
         "nmb": ((a, b, dims.STRATEGY), values.reshape(n, n, -1))},
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
    cols = {str(p): j for j, p in enumerate(base[dims.PARAMETER].values)}

    def inmb_at(values: np.ndarray) -> np.ndarray:
        draws = base_draws(scenario, len(values))
        _apply(scenario, cols, base.values[0], draws.values, {name: values})
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
        from scipy import optimize

        value = optimize.brentq(lambda x: float(inmb_at(np.array([x]))[0]), grid[i],
                                grid[i + 1], xtol=1e-12 * max(1.0, abs(grid[i])))
    return {"parameter": name, "strategy": strategy, "wtp": float(wtp), "value": float(value),
            "inmb_at_value": float(inmb_at(np.array([value]))[0]), "range": (lo, hi),
            "basis": basis, "more_thresholds": int(change.size - 1)}
