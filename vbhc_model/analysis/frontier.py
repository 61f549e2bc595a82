"""Incremental cost-effectiveness analysis: the efficiency frontier.

Kernels work on plain numpy arrays; :func:`compute_icers` wraps the result in an
:class:`xarray.Dataset` labelled by strategy. Costs are "less is better", effects
"more is better".

The frontier follows the standard procedure (Drummond et al. 2015, *Methods for the
Economic Evaluation of Health Care Programmes*, 4th ed., ch. 4; Cantor 1994, Med Decis
Making 14:259; dampack ``calculate_icers``): sort by cost, drop strongly dominated
strategies, then drop extendedly dominated ones until the ICERs along the frontier are
strictly increasing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from vbhc_model.errors import VbhcError

__all__ = ["NEGLIGIBLE", "FrontierInputError", "compute_icers", "net_monetary_benefit",
           "optimal_strategy"]

FRONTIER, DOMINATED, EXTENDED = "frontier", "dominated", "extendedly dominated"
#: A strategy whose gain in effect over the previous frontier strategy is too small to count
#: (below the scenario's tolerance, or, over PSA draws, an interval straddling zero by far):
#: left off the frontier, without an ICER (an ICER of millions on a difference of 1e-4 QALY
#: says nothing a reader can use); it is compared with the cheaper strategy on net benefit.
NEGLIGIBLE = "negligible gain"

METHOD = (
    "Incremental analysis with strong and extended dominance: sort by cost ascending (ties: "
    "effect descending, then input order); strong dominance: drop a strategy if another has "
    "cost <= and effect >= (one strict; of exact duplicates the first is kept); extended "
    "dominance: drop a strategy whose ICER >= the next one's, until frontier ICERs strictly "
    "increase (Drummond et al. 2015 ch. 4; Cantor 1994; dampack calculate_icers)."
)


class FrontierInputError(VbhcError, ValueError):
    """Invalid input to the frontier analysis (a user-input error and a ValueError)."""


def _validate(costs: ArrayLike, effects: ArrayLike, strategies: Sequence[str]):
    names = [str(s) for s in strategies]
    c = np.asarray(costs, dtype=float)
    e = np.asarray(effects, dtype=float)
    if c.ndim != 1 or e.ndim != 1:
        raise FrontierInputError("costs and effects must be 1-D, one value per strategy")
    if not (len(c) == len(e) == len(names)):
        raise FrontierInputError(
            f"length mismatch: {len(c)} costs, {len(e)} effects, {len(names)} strategies"
        )
    if not names:
        raise FrontierInputError("at least one strategy is required")
    if len(set(names)) != len(names):
        dup = sorted({s for s in names if names.count(s) > 1})
        raise FrontierInputError(f"duplicate strategy names: {', '.join(dup)}")
    for label, arr in (("cost", c), ("effect", e)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise FrontierInputError(
                f"{label} of strategy {names[bad[0]]!r} is {arr[bad[0]]} (must be finite)"
            )
    return c, e, names


def _frontier_kernel(c: np.ndarray, e: np.ndarray):
    """Classify strategies already sorted by (cost asc, effect desc, input order).

    Returns ``status`` (0 frontier, 1 dominated, 2 extendedly dominated) and
    ``dom_by`` (sorted position of a strong dominator, -1 otherwise).
    """
    # Strong dominance.  In sort order every potential dominator of j precedes j, so j is
    # dominated iff some earlier strategy has effect >= e[j].  The first such one is itself
    # never strongly dominated (any dominator of it would come earlier and also qualify).
    earlier = np.tril(e[None, :] >= e[:, None], k=-1)  # earlier[j, i]: i < j and e_i >= e_j
    dominated = earlier.any(axis=1)
    dom_by = np.where(dominated, earlier.argmax(axis=1), -1)
    status = np.where(dominated, 1, 0)
    # Extended dominance.  Survivors have strictly increasing cost and effect.  Removing a
    # strategy whose ICER is >= the next one's, until ICERs strictly increase, leaves the
    # lower convex hull; a monotone-chain stack pass removes exactly those strategies.
    # ICERs are compared by cross-multiplication (denominators are > 0): exact for
    # integer-valued inputs and free of division by zero.
    stack: list[int] = []
    for j in np.flatnonzero(~dominated):
        while len(stack) >= 2:
            a, b = stack[-2], stack[-1]
            if (c[b] - c[a]) * (e[j] - e[b]) >= (c[j] - c[b]) * (e[b] - e[a]):
                status[stack.pop()] = 2  # ICER(b vs a) >= ICER(j vs b)
            else:
                break
        stack.append(int(j))
    return status, dom_by


def _negligible(a: int, b: int, e: np.ndarray, tolerance: float,
                draws: np.ndarray | None) -> str:
    """Why the gain of sorted strategy b over a does not count ("" if it does)."""
    gain = e[b] - e[a]
    if gain < tolerance:
        return f"gain {gain:.2g} below the tolerance {tolerance:g}"
    if draws is not None:
        d = draws[:, b] - draws[:, a]
        lo, hi = np.quantile(d, [0.025, 0.975])
        if lo < 0 < hi and abs(d.mean()) < (hi - lo) / 8:
            return (f"gain {d.mean():.2g}, 95% interval {lo:.2g} to {hi:.2g}: straddles zero "
                    "by far")
    return ""


def compute_icers(costs: ArrayLike, effects: ArrayLike, strategies: Sequence[str], *,
                  negligible: float = 0.0, effect_draws: ArrayLike | None = None
                  ) -> xr.Dataset:
    """Incremental analysis with strong and extended dominance.

    Parameters
    ----------
    costs, effects : array_like, shape (n_strategies,)
        One (mean or base-case) cost and effect per strategy. Must be finite.
    strategies : sequence of str
        Unique strategy names, in the same order as `costs` and `effects`.
    negligible : float
        The smallest gain in effect over the previous frontier strategy that counts (per
        person; default 0: any gain). A more costly strategy with a smaller gain is left off
        the frontier with status ``"negligible gain"`` and no ICER, and the frontier is
        recomputed without it (the next strategy is compared with the cheaper one).
    effect_draws : array_like, shape (draw, n_strategies), optional
        PSA draws of the effects (input order): a gain whose 95% interval over the draws
        straddles zero by far (its mean under an eighth of the interval's width) is
        negligible too.

    Returns
    -------
    xarray.Dataset
        Dimension ``strategy``, ordered by cost ascending (ties: effect descending, then
        input order), with non-dimension coordinate ``input_index`` (position in the input)
        and data variables:

        ``cost``, ``effect``
            The inputs.
        ``inc_cost``, ``inc_effect``
            For frontier strategies, versus the previous frontier strategy (NaN for the
            first). For dominated / extendedly dominated ones, versus the last frontier
            strategy before them in the sort order (cost lower, or equal with higher
            effect); for an exact duplicate this is ``0, 0``.
        ``icer``
            ``inc_cost / inc_effect`` for frontier strategies after the first; else NaN.
        ``status``
            ``"frontier"``, ``"dominated"``, ``"extendedly dominated"`` or ``"negligible
            gain"``.
        ``comparator``
            Name of the previous frontier strategy for frontier strategies; ``""`` for the
            first frontier strategy and for non-frontier strategies.
        ``dominated_by``
            For strongly dominated strategies the name of the cheapest strategy with
            cost <= and effect >= (one strict, or an earlier exact duplicate); it is never
            itself strongly dominated. For extendedly dominated ones the note
            ``"extended: between X and Y"`` naming the bracketing frontier strategies; for a
            negligible gain, ``"negligible gain over X: ..."`` with the reason.
            ``""`` for frontier strategies.

        ``attrs["method"]`` describes the algorithm.

    Raises
    ------
    FrontierInputError
        (a ``ValueError``) on NaN/inf input (the message names the strategy), length
        mismatch, no strategies, or duplicate names.

    Examples
    --------
    >>> ds = compute_icers([0, 100, 200, 300], [0.0, 2.0, 1.0, 2.5], ["A", "B", "C", "D"])
    >>> ds.status.values.tolist()
    ['frontier', 'frontier', 'dominated', 'frontier']
    >>> ds.icer.sel(strategy="D").item()
    400.0
    >>> str(ds.dominated_by.sel(strategy="C").values)
    'B'
    >>> compute_icers([0, 100, 5000], [0.0, 2.0, 2.0004], ["A", "B", "C"],
    ...               negligible=0.001).status.values.tolist()
    ['frontier', 'frontier', 'negligible gain']
    """
    c_in, e_in, names_in = _validate(costs, effects, strategies)
    order = np.lexsort((-e_in, c_in))  # stable: exact ties keep input order
    c, e = c_in[order], e_in[order]
    names = [names_in[i] for i in order]
    draws = None if effect_draws is None else np.asarray(effect_draws, dtype=float)[:, order]
    # The frontier without the strategies whose gain is negligible, one at a time (each
    # removal changes the next strategy's comparator). Strong dominance is decided on every
    # strategy first: one dominated by a strategy left off for a negligible gain stays
    # dominated (it must not reach the frontier through the other's removal).
    n = len(c)
    full_status, full_dom = _frontier_kernel(c, e)
    dominated = full_status == 1
    why: dict[int, str] = {}
    while True:
        keep = np.flatnonzero([j not in why and not dominated[j] for j in range(n)])
        kept_status, kept_dom = _frontier_kernel(c[keep], e[keep])
        status = np.full(n, 3)
        status[dominated] = 1
        status[keep] = kept_status
        dom_by = np.where(dominated, full_dom, -1)
        dom_by[keep] = np.where(kept_dom >= 0, keep[np.maximum(kept_dom, 0)], -1)
        front = np.flatnonzero(status == 0)
        found = next(((b, r) for a, b in zip(front[:-1], front[1:])
                      if (r := _negligible(a, b, e, negligible, draws))), None)
        if found is None:
            break
        why[found[0]] = found[1]

    # prev[j] / nxt[j]: last frontier position before j / first after j (-1 if none).
    k = np.searchsorted(front, np.arange(n))  # number of frontier positions < j
    prev = np.where(k > 0, front[np.maximum(k - 1, 0)], -1)
    k_after = np.searchsorted(front, np.arange(n), side="right")
    nxt = np.where(k_after < front.size, front[np.minimum(k_after, front.size - 1)], -1)
    has_prev = prev >= 0
    inc_cost = np.where(has_prev, c - c[prev], np.nan)
    inc_effect = np.where(has_prev, e - e[prev], np.nan)
    on_front = status == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        icer = np.where(on_front & has_prev, inc_cost / inc_effect, np.nan)

    labels = np.array([FRONTIER, DOMINATED, EXTENDED, NEGLIGIBLE])[status]
    comparator = [names[prev[j]] if on_front[j] and has_prev[j] else "" for j in range(n)]
    dominated_by = [
        names[dom_by[j]]
        if status[j] == 1
        else f"extended: between {names[prev[j]]} and {names[nxt[j]]}"
        if status[j] == 2
        else f"negligible gain over {names[prev[j]]}: {why[j]}"
        if status[j] == 3
        else ""
        for j in range(n)
    ]
    dim = ("strategy",)
    return xr.Dataset(
        {
            "cost": (dim, c),
            "effect": (dim, e),
            "inc_cost": (dim, inc_cost),
            "inc_effect": (dim, inc_effect),
            "icer": (dim, icer),
            "status": (dim, labels.astype(str)),
            "comparator": (dim, np.array(comparator, dtype=str)),
            "dominated_by": (dim, np.array(dominated_by, dtype=str)),
        },
        coords={"strategy": names, "input_index": (dim, order)},
        attrs={"method": METHOD},
    )


def net_monetary_benefit(costs: ArrayLike, effects: ArrayLike, wtp: ArrayLike) -> np.ndarray:
    """Net monetary benefit ``effects * wtp - costs``.

    Parameters
    ----------
    costs, effects : array_like, shape (..., n_strategies)
        Broadcast against each other (e.g. PSA draws x strategies).
    wtp : float or array_like, shape (n_wtp,)
        Willingness-to-pay threshold(s) per unit of effect.

    Returns
    -------
    numpy.ndarray
        Shape ``broadcast(costs, effects).shape + wtp.shape``: ``(..., n_strategies)``
        for scalar `wtp`, ``(..., n_strategies, n_wtp)`` for 1-D `wtp`.

    Examples
    --------
    >>> net_monetary_benefit([10.0, 20.0], [1.0, 2.0], [0.0, 100.0])
    array([[-10.,  90.],
           [-20., 180.]])
    """
    c, e = np.broadcast_arrays(np.asarray(costs, dtype=float), np.asarray(effects, dtype=float))
    w = np.asarray(wtp, dtype=float)
    if w.ndim > 1:
        raise FrontierInputError("wtp must be a scalar or 1-D array")
    extra = (1,) * w.ndim
    return e.reshape(e.shape + extra) * w - c.reshape(c.shape + extra)


def optimal_strategy(costs: ArrayLike, effects: ArrayLike, wtp: ArrayLike) -> np.ndarray:
    """Index of the strategy with the highest NMB (ties: the first index).

    Parameters
    ----------
    costs, effects : array_like, shape (..., n_strategies)
    wtp : float or array_like, shape (n_wtp,)

    Returns
    -------
    numpy.ndarray of int
        Shape ``leading + wtp.shape`` where ``leading`` is the shape without the strategy
        axis; indices refer to positions along the strategy axis of the input.

    Raises
    ------
    FrontierInputError
        If any net monetary benefit is NaN.

    Examples
    --------
    >>> optimal_strategy([0.0, 100.0, 300.0], [0.0, 2.0, 2.5], [10.0, 60.0, 500.0])
    array([0, 1, 2])
    """
    nmb = net_monetary_benefit(costs, effects, wtp)
    if np.isnan(nmb).any():
        raise FrontierInputError("net monetary benefit contains NaN (check costs and effects)")
    return np.argmax(nmb, axis=nmb.ndim - 1 - np.ndim(wtp))
