"""The design of a deterministic sensitivity analysis: which values each parameter is varied
over, which parameters are left out and why, and how setting some parameters moves the others.

Parameters drawn jointly in the PSA are varied one at a time over their marginal 95% intervals
(multivariate normal: mean +/- 1.96 sd; Dirichlet: the Beta marginal, the rest of the row
rescaled to keep it summing to one), as are parameters taken from a posterior or a CSV table
of samples (their 2.5% and 97.5% quantiles); correlations are not propagated, as is usual in
a one-way analysis. The runs are in :mod:`vbhc_model.pipeline.dsa`, the tornado's analysis in
:mod:`vbhc_model.analysis.tornado`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vbhc_model import dims
from vbhc_model.defaults import INTERVAL
from vbhc_model.distributions import Z975, make_distribution
from vbhc_model.errors import VbhcError
from vbhc_model.parameters.draws import base_draws
from vbhc_model.readers.posterior import PosteriorError, read_posterior, resolve
from vbhc_model.readers.samples import SamplesError, read_samples
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
    :func:`apply_settings`). Correlations are not propagated: the other parameters stay at base.
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
        ref = p.posterior
        try:
            post = read_posterior(resolve(ref.file, scenario.source.file),
                                  [(ref.variable, ref.select)])
        except PosteriorError as exc:
            raise _LeftOut(f"posterior unreadable ({exc})") from None
        lo, hi = np.quantile(post.get(ref.variable, ref.select), list(INTERVAL))
        basis = "95% posterior interval"
    elif p.samples is not None:
        try:
            column = read_samples(resolve(p.samples.file, scenario.source.file)).get(
                p.samples.column)
        except SamplesError as exc:
            raise _LeftOut(f"samples unreadable ({exc})") from None
        lo, hi = np.quantile(column, list(INTERVAL))
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
            a = np.asarray(joint.alpha, dtype=float)
            from scipy import stats  # scipy.stats loads slowly: only when a DSA needs it

            lo, hi = stats.beta(a[i], a.sum() - a[i]).ppf(list(INTERVAL))
            basis = f"95% marginal interval, Dirichlet '{group}', others rescaled"
    elif p.distribution is not None:
        spec = p.distribution.model_dump()
        dist = make_distribution(spec.pop("type"), spec)
        if dist is None:
            raise _LeftOut("no range and a fixed distribution", _ADD_RANGE)
        lo, hi = dist.ppf(INTERVAL[0]), dist.ppf(INTERVAL[1])
        basis = "95% interval"
    elif p.fixed is not None:
        raise _LeftOut(f"fixed: {p.fixed}")
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


def apply_settings(scenario: Scenario, cols: dict, base_row: np.ndarray, block: np.ndarray,
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


def describe_left_out(left_out: dict) -> str:
    """One line: the parameters left out, grouped by reason."""
    if not left_out:
        return ""
    by_reason: dict = {}
    for name, reason in left_out.items():
        by_reason.setdefault(reason, []).append(name)
    return (f"left out ({len(left_out)}): "
            + "; ".join(f"{', '.join(n)} ({r})" for r, n in by_reason.items()))
