"""Stepped care: a strategy whose patients in some states at a cycle switch to another strategy.

A step (``strategies.<name>.steps``) says: the patients in ``in_states`` at the end of cycle
``at_cycle`` continue under strategy ``switch_to``, on its own clock (its cycle 1 is cycle
``at_cycle + 1`` of the model). Because the rule depends only on the cycle and the state, the
strategy is an ordinary Markov model on a larger state space, and both engines run it
unchanged and exactly as they run any model:

- **arms**: every (sub-)state is copied once per arm, arm 0 being the strategy itself and arm
  i the i-th step's target; state ``s' * n_arms + arm`` (state-major, so that a
  microsimulated patient's inverse CDF meets its destinations in the same order as under the
  strategy without steps: a patient keeps its uniforms and its path up to the switch);
- **transitions**: arm 0 follows the strategy's matrix of cycle k, arm i its target's matrix
  built with the clock shifted by ``at_cycle`` (``cycle`` and ``time`` count from the switch,
  ``age`` is the model's; :class:`vbhc_model.model.build._Evaluator`); in cycle ``at_cycle``
  the flows of arm 0 into ``in_states`` go to arm i instead (the patients are in arm i at the
  end of that cycle, in the same state);
- **payoffs**: arm i's values for cycles 1..``at_cycle`` are arm 0's (its patients spent them
  under the first strategy: so the trace row at the switch is valued as the first strategy's
  for the cycle that ends there and as the target's for the next, whatever the within-cycle
  correction), from cycle ``at_cycle + 1`` the target's (payoffs, programme per cycle from its
  own cycle 1, engagement resource use); every arm is discounted at the model's time by the
  shared accumulator;
- **the target's one-off programme resources** accrue on the switch, as one-off values on the
  transitions of cycle ``at_cycle`` (discounted as ``transition_payoffs`` are);
- **engagement**: the strata are the cross product of the strategy's and each target's
  engagement levels (within each attribute profile), weighted by the product of their shares,
  so that a switched patient of any first level meets every level of the target: exact, at
  the cost of a larger batch; the combined levels are named ``first/then``
  (``partial/complete``; ``all`` for a strategy without engagement levels);
- **unit costs** of utilisation and clinician time are applied within each arm (a target may
  set other wages), so the combined strategy carries no unit costs of its own.

Several steps may leave the first arm (at different cycles, or at one cycle from different
states); a step's target may not have steps of its own (checked in
:mod:`vbhc_model.scenario.checks`).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from vbhc_model.engines.base import TransitionValues

__all__ = ["combine", "level_names"]


def level_names(scenario, sname: str) -> tuple[str, ...]:
    """A strategy's engagement levels as its strata name them: its own (``all`` without
    levels), or for a stepped strategy the combinations of its and its targets' levels,
    ``first/then``.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> level_names(load_scenario(default_scenario_path()), "paintrainer")
    ('partial', 'complete')
    """
    strategies = scenario.strategies
    parts = [strategies[sname], *(strategies[s.switch_to] for s in strategies[sname].steps)]
    return _combinations([tuple(p.engagement) if p.engagement else ("all",) for p in parts])


def _combinations(levels: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The names of the combinations of levels, the first strategy's slowest."""
    return tuple("/".join(c) for c in itertools.product(*levels))


def _take(x: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
    """``x[..., cols]`` (a copy), or ``x`` itself when ``cols`` is None (the identity)."""
    return x if cols is None else x[..., cols]


def _fold_unit_costs(x: np.ndarray, unit_costs: list, draw_of: np.ndarray) -> None:
    """Add unit cost x count to the cost channels of ``x[..., channel, batch]`` in place."""
    for src, dst, cost in unit_costs:
        x[..., dst, :] += x[..., src, :] * cost[draw_of]


def combine(base, arms: list, steps: list, substate_of: np.ndarray, state_names: list[str],
            *, n_cycles: int, switched: int | None = None):
    """The inputs of a stepped-care strategy, from its own inputs and its arms'.

    Parameters
    ----------
    base : StrategyInputs
        The strategy as built without its steps.
    arms : list of StrategyInputs
        Each step's target, built with ``clock_offset = step.at_cycle``.
    steps : list of Step
    substate_of : ndarray
        The state of each sub-state (tunnel states expanded).
    state_names : list of str
    n_cycles : int
    switched : int, optional
        The channel that counts the patients switching (a one-off value of 1 on each switch
        flow: its total is the share of the cohort that stepped up).

    Returns
    -------
    StrategyInputs
        On ``n_states' x (1 + len(steps))`` states and the cross product of the engagement
        levels (profile-major, then the strategy's level, then each target's); ``n_arms``
        set.
    """
    n_draws, n_base_strata = base.shares.shape
    n_sub = base.start.shape[0]
    n_arms = 1 + len(arms)
    n_levels = [len(base.levels)] + [len(a.levels) for a in arms]
    n_profiles = n_base_strata // n_levels[0]
    grid = np.indices((n_profiles, *n_levels)).reshape(1 + n_arms, -1)
    profile = grid[0]
    n_strata = grid.shape[1]
    draw = np.arange(n_draws)

    def columns(stratum: np.ndarray, n_own: int) -> np.ndarray | None:
        if n_own == n_strata and (stratum == np.arange(n_strata)).all():
            return None
        return (stratum[:, None] * n_draws + draw).ravel()

    cols = [columns(profile * n_levels[0] + grid[1], n_base_strata)]
    shares = base.shares[:, profile * n_levels[0] + grid[1]].copy()
    for i, arm in enumerate(arms):
        cols.append(columns(profile * n_levels[1 + i] + grid[2 + i], arm.shares.shape[1]))
        shares *= arm.level_shares[:, profile, grid[2 + i]]
    batch = n_strata * n_draws
    draw_of = np.tile(draw, n_strata)
    sources = [base, *arms]
    at = [0] + [step.at_cycle for step in steps]
    moved = [np.isin(substate_of, [state_names.index(s) for s in step.in_states])
             for step in steps]  # [arm - 1][sub-state]: switched at the end of at_cycle

    # The combined arrays are built with the batch axis split into its strata axes
    # (profile, level of each arm's strategy, draw): each arm's array is then written by
    # broadcasting over the other strategies' levels, without gathering columns.
    strata_shape = (n_profiles, *n_levels, n_draws)

    def split(x: np.ndarray, a: int) -> np.ndarray:
        """``x[..., batch of source a]`` as ``[..., profile, 1.., its level, 1.., draw]``."""
        shape = [n_profiles] + [1] * n_arms + [n_draws]
        shape[1 + a] = n_levels[a]
        return x.reshape(x.shape[:-1] + tuple(shape))

    start = np.zeros((n_sub, n_arms) + strata_shape)
    start[:, 0] = split(base.start, 0)

    matrix = np.zeros((n_sub, n_arms, n_sub, n_arms) + strata_shape)
    for a in range(1, n_arms):
        matrix[np.arange(n_sub), a, np.arange(n_sub), a] = 1.0  # unused until the arm starts

    def transition_at(k: int) -> np.ndarray:
        p = split(base.transition_at(k), 0)
        matrix[:, 0] = 0.0
        matrix[:, 0, :, 0] = p
        for a in range(1, n_arms):
            if k == at[a]:
                matrix[:, 0, moved[a - 1], a] = p[:, moved[a - 1]]
                matrix[:, 0, moved[a - 1], 0] = 0.0
            elif k > at[a]:
                matrix[:, a, :, a] = split(sources[a].transition_at(k), a)
        return matrix.reshape(n_sub * n_arms, n_sub * n_arms, batch)

    memo: dict[str, object] = {"parts": None, "values": None}

    def values_at(k: int) -> np.ndarray:
        own = base.values_at(k)
        parts = [own] + [sources[a].values_at(k) if k > at[a] else own
                         for a in range(1, n_arms)]
        last = memo["parts"]
        if last is not None and all(x is y for x, y in zip(parts, last)):
            return memo["values"]  # unchanged: the same object (see EngineInputs.values)
        v = np.empty((n_sub, n_arms) + own.shape[1:-1] + strata_shape)
        for a, x in enumerate(parts):
            src = 0 if x is own else a
            v[:, a] = split(x, src)
        v = v.reshape((n_sub, n_arms) + own.shape[1:-1] + (batch,))
        for a, x in enumerate(parts):
            _fold_unit_costs(v[:, a], sources[0 if x is own else a].unit_costs, draw_of)
        memo["parts"], memo["values"] = parts, v.reshape((n_sub * n_arms,) + v.shape[2:])
        return memo["values"]

    one_off = _take(base.one_off.T, cols[0]).T.copy()  # [batch, channel]
    _fold_unit_costs(one_off.T, base.unit_costs, draw_of)

    combined = dataclasses.replace(
        base,
        shares=shares,
        start=start.reshape(n_sub * n_arms, batch),
        transition_at=transition_at,
        values_at=values_at,
        one_off=one_off,
        transition_values=_transition_values(sources, cols, moved, at, n_sub, batch, draw_of,
                                             switched),
        unit_costs=[],
        # the combinations of levels, first strategy's first ("partial/complete")
        levels=_combinations([s.levels for s in sources]),
        level_shares=None,
        n_arms=n_arms,
    )
    return combined


def _transition_values(sources: list, cols: list, moved: list, at: list, n_sub: int,
                       batch: int, draw_of: np.ndarray,
                       switched: int | None = None) -> TransitionValues | None:
    """One-off values on the flows of the combined model: each arm's own transition payoffs
    (arm 0's also on its flows into the arms it switches to), each target's one-off
    programme resources on the switch into it, and 1 in the ``switched`` channel on every
    switch (counting the patients who step up)."""
    n_arms = len(sources)
    pieces = []  # (from index, to index, source arm, what: "pairs" | "one_off", pair rows)
    base_tv = sources[0].transition_values
    if base_tv is not None:
        f, t = np.asarray(base_tv.from_index), np.asarray(base_tv.to_index)
        pieces.append((f * n_arms, t * n_arms, 0, "pairs", np.arange(len(f))))
        for a in range(1, n_arms):
            rows = np.flatnonzero(moved[a - 1][t])
            pieces.append((f[rows] * n_arms, t[rows] * n_arms + a, 0, "pairs", rows))
    for a in range(1, n_arms):
        tv = sources[a].transition_values
        if tv is not None:
            f, t = np.asarray(tv.from_index), np.asarray(tv.to_index)
            pieces.append((f * n_arms + a, t * n_arms + a, a, "pairs", np.arange(len(f))))
        if sources[a].one_off.any() or switched is not None:
            f, t = np.meshgrid(np.arange(n_sub), np.flatnonzero(moved[a - 1]), indexing="ij")
            pieces.append((f.ravel() * n_arms, t.ravel() * n_arms + a, a, "one_off", None))
    if not pieces:
        return None
    one_offs = {}
    for a in range(1, n_arms):
        x = _take(sources[a].one_off.T, cols[a]).T.copy()  # [batch, channel]
        _fold_unit_costs(x.T, sources[a].unit_costs, draw_of)
        if switched is not None:
            x[:, switched] = 1.0  # one patient switching counts one
        one_offs[a] = x.T  # [channel, batch]

    def values_at(k: int) -> np.ndarray:
        blocks = []
        cache: dict[int, np.ndarray] = {}
        for f, _, a, what, rows in pieces:
            if what == "one_off":
                blocks.append(np.broadcast_to(one_offs[a], (len(f),) + one_offs[a].shape))
            elif a and k <= at[a]:  # the arm has not started: no flows, no values asked
                blocks.append(np.zeros((len(f),) + one_offs[a].shape))
            else:
                if a not in cache:
                    x = np.array(_take(sources[a].transition_values.values_at(k), cols[a]))
                    _fold_unit_costs(x, sources[a].unit_costs, draw_of)
                    cache[a] = x
                blocks.append(cache[a][rows])
        return np.concatenate(blocks)

    return TransitionValues(np.concatenate([p[0] for p in pieces]),
                            np.concatenate([p[1] for p in pieces]), values_at)
