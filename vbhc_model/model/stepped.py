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
from dataclasses import dataclass

import numpy as np

from vbhc_model.engines.base import TransitionValues

__all__ = ["Chain", "chain", "combine", "level_names"]


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


def _cross(base, arms: list):
    """The strata of a stepped strategy: every combination of its and its targets' levels
    within each attribute profile. Returns the grid ``[profile, level of each strategy] x
    stratum``, the levels per strategy, the profiles, and the strata's shares ``[draw,
    stratum]`` (profile weight x the product of the levels' shares)."""
    n_levels = [len(base.levels)] + [len(a.levels) for a in arms]
    n_profiles = base.shares.shape[1] // n_levels[0]
    grid = np.indices((n_profiles, *n_levels)).reshape(1 + len(arms) + 1, -1)
    profile = grid[0]
    shares = base.shares[:, profile * n_levels[0] + grid[1]].copy()
    for i, arm in enumerate(arms):
        shares *= arm.level_shares[:, profile, grid[2 + i]]
    return grid, n_levels, n_profiles, shares


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
    grid, n_levels, n_profiles, shares = _cross(base, arms)
    profile = grid[0]
    n_strata = grid.shape[1]
    draw = np.arange(n_draws)

    def columns(stratum: np.ndarray, n_own: int) -> np.ndarray | None:
        if n_own == n_strata and (stratum == np.arange(n_strata)).all():
            return None
        return (stratum[:, None] * n_draws + draw).ravel()

    cols = [columns(profile * n_levels[0] + grid[1], n_base_strata)]
    for i, arm in enumerate(arms):
        cols.append(columns(profile * n_levels[1 + i] + grid[2 + i], arm.shares.shape[1]))
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

    pattern = None
    if all(x.pattern is not None for x in sources):
        # each arm's own cells, and the switches out of arm 0 (state-major: s' * n_arms + a)
        pattern = np.zeros((n_sub, n_arms, n_sub, n_arms), dtype=bool)
        for a, x in enumerate(sources):
            pattern[:, a, :, a] = x.pattern
        for a in range(1, n_arms):
            pattern[:, 0, moved[a - 1], a] = base.pattern[:, moved[a - 1]]
        pattern = pattern.reshape(n_sub * n_arms, n_sub * n_arms)

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
        pattern=pattern,
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

    # Without transition payoffs of their own, only the switches carry values: the flows of
    # other cycles need not be formed (TransitionValues.cycles).
    cycles = (None if any(what == "pairs" for *_, what, _ in pieces)
              else frozenset(at[1:]))
    return TransitionValues(np.concatenate([p[0] for p in pieces]),
                            np.concatenate([p[1] for p in pieces]), values_at, cycles)


@dataclass(frozen=True)
class Chain:
    """A stepped strategy as the cohort runs it: its first strategy and each step's target
    as cohorts of their own, chained by the patients who switch (:func:`chain`).

    The combined model of :func:`combine` runs every arm on the cross product of the
    strategies' engagement levels, although the first arm depends only on its own level
    and, the dynamics being linear, a target's arm only on the mass that switches into it.
    Here the first strategy runs on its own strata, with the patients who switch at cycle
    ``at`` parked in copies of their states ("limbo") that carry the first strategy's
    values up to cycle ``at`` and nothing after; each target runs on its own strata from
    the mixture, over the first strategy's levels within each attribute profile, of the
    mass that switched, held still (identity transitions, no values) until cycle ``at``.
    Each combined stratum (profile, first level, target levels) is then given the first
    arm's totals of its first level plus each target's totals of its level: every
    share-weighted sum the results report (strategy totals, subgroups, the trace) equals the
    combined model's, to rounding; the cross product's individual strata are not computed.
    """

    first: object  # StrategyInputs: the first strategy with the limbo states appended
    targets: tuple  # StrategyInputs of each step's target (start filled in by the runner)
    at: tuple[int, ...]  # each step's cycle
    limbo: tuple[np.ndarray, ...]  # each step's limbo rows in ``first`` (one per moved state)
    moved: tuple[np.ndarray, ...]  # each step's moved sub-states
    columns: tuple[np.ndarray, ...]  # combined column -> column of first, of each target
    level_shares: np.ndarray  # [draw, profile, level]: the first strategy's levels
    n_sub: int

    def result(self, first, targets: list, trace: bool):
        """The combined strata's EngineResult from the first arm's and the targets'
        (``trace``: assemble the combined trace, state-major ``s' * n_arms + arm``, from
        theirs)."""
        cols = self.columns

        def total(name: str):
            x = getattr(first, name)
            if x is None:
                return None
            out = x[cols[0]]
            for i, t in enumerate(targets):
                out += getattr(t, name)[cols[1 + i]]
            return out

        combined = None
        if trace:
            n_arms = 1 + len(targets)
            tr = first.trace
            combined = np.zeros((len(cols[0]), tr.shape[1], self.n_sub, n_arms))
            combined[..., 0] = tr[cols[0], :, :self.n_sub]
            for i, t in enumerate(targets):
                combined[:, self.at[i]:, :, 1 + i] = t.trace[cols[1 + i], self.at[i]:]
            combined = combined.reshape(len(cols[0]), tr.shape[1], -1)
        by_period = None
        if first.by_period is not None:
            by_period = first.by_period[cols[0]]
            for i, t in enumerate(targets):
                by_period += t.by_period[cols[1 + i]]
        return dataclasses.replace(first, rows=None, by_period=by_period,
                                   discounted=total("discounted"),
                                   undiscounted=total("undiscounted"),
                                   by_cycle=total("by_cycle"),
                                   by_cycle_undiscounted=total("by_cycle_undiscounted"),
                                   trace=combined)

    def start(self, i: int, switched: np.ndarray) -> np.ndarray:
        """Target i's starting mass ``[state', batch]`` from the first arm's limbo rows at
        its cycle, ``switched[batch of first, moved state]``: mixed over the first
        strategy's levels within each profile, the same for every level of the target."""
        n_draws, n_profiles, n_first = self.level_shares.shape
        mass = switched.reshape(n_profiles, n_first, n_draws, -1)
        w = self.level_shares.transpose(1, 2, 0)[..., None]  # [profile, level, draw, 1]
        mixed = (mass * w).sum(axis=1)  # [profile, draw, moved]
        target = self.targets[i]
        n_levels = len(target.levels)
        out = np.zeros((self.n_sub, n_profiles, n_levels, n_draws))
        out[self.moved[i]] = mixed.transpose(2, 0, 1)[:, :, None, :]
        return out.reshape(self.n_sub, -1)


def chain(base, arms: list, steps: list, substate_of: np.ndarray, state_names: list[str],
          *, n_cycles: int, switched: int | None = None):
    """A stepped strategy's inputs for the cohort: :func:`combine`'s strata, shares, levels
    and one-off values, with the arrays replaced by a :class:`Chain` (``chain`` set;
    ``start``, ``transition_at`` and ``values_at`` are None). Parameters as :func:`combine`.
    """
    n_draws = base.shares.shape[0]
    n_sub = base.start.shape[0]
    grid, n_levels, n_profiles, shares = _cross(base, arms)
    profile = grid[0]
    draw = np.arange(n_draws)
    cols = [((profile * n_levels[a] + grid[1 + a])[:, None] * n_draws + draw).ravel()
            for a in range(1 + len(arms))]
    at = [step.at_cycle for step in steps]
    moved = [np.flatnonzero(np.isin(substate_of, [state_names.index(s) for s in step.in_states]))
             for step in steps]
    n_limbo = sum(len(m) for m in moved)
    limbo = []
    offset = n_sub
    for m in moved:
        limbo.append(np.arange(offset, offset + len(m)))
        offset += len(m)
    n_rows = n_sub + n_limbo

    first = _first_arm(base, at, moved, limbo, n_sub, n_rows, switched)
    targets = tuple(_target_arm(arm, at[i], moved[i], n_sub, switched)
                    for i, arm in enumerate(arms))

    one_off = base.one_off[cols[0]].copy()  # [batch, channel]
    _fold_unit_costs(one_off.T, base.unit_costs, np.tile(draw, len(profile)))
    return dataclasses.replace(
        base,
        shares=shares,
        start=None,
        transition_at=None,
        values_at=None,
        one_off=one_off,
        transition_values=None,
        unit_costs=[],
        levels=_combinations([s.levels for s in [base, *arms]]),
        level_shares=None,
        n_arms=1 + len(arms),
        pattern=None,
        channels=None,  # the runner expands the arms' results to every channel
        chain=Chain(first, targets, tuple(at), tuple(limbo), tuple(moved), tuple(cols),
                    base.level_shares, n_sub),
    )


def _draw_of(x) -> np.ndarray:
    n_draws, n_strata = x.shares.shape
    return np.tile(np.arange(n_draws), n_strata)


def _local(x) -> list:
    """``x.unit_costs`` as positions in ``x.channels`` (the channels its arrays hold; every
    channel when None); a count channel it does not fill adds nothing and is left out."""
    if x.channels is None:
        return x.unit_costs
    pos = {int(c): i for i, c in enumerate(x.channels)}
    return [(pos[src], pos[dst], cost) for src, dst, cost in x.unit_costs if src in pos]


def _own(x, channel: int | None) -> int | None:
    """The position of ``channel`` among ``x.channels``."""
    if channel is None or x.channels is None:
        return channel
    return int(np.searchsorted(x.channels, channel))


def _folded(values_at, unit_costs: list, draw_of: np.ndarray):
    """``values_at`` with the unit costs folded into the cost channels, keeping "the same
    object means unchanged"."""
    last: list = [None, None]

    def at(k: int) -> np.ndarray:
        v = values_at(k)
        if v is not last[0]:
            x = np.array(v)
            _fold_unit_costs(x, unit_costs, draw_of)
            last[0], last[1] = v, x
        return last[1]

    return at


def _first_arm(base, at: list, moved: list, limbo: list, n_sub: int, n_rows: int,
               switched: int | None):
    """The first strategy with limbo rows: at cycle ``at[i]`` the flows into ``moved[i]``
    go to ``limbo[i]`` instead, valued as the first strategy's states up to that cycle and
    at nothing after it; limbo rows lead nowhere (their mass has switched)."""
    batch = base.start.shape[1]
    draw_of = _draw_of(base)
    start = np.zeros((n_rows, batch))
    start[:n_sub] = base.start
    matrix = np.zeros((n_rows, n_rows, batch))

    def transition_at(k: int) -> np.ndarray:
        p = base.transition_at(k)
        matrix[:n_sub, :n_sub] = p
        for i, a in enumerate(at):
            if k == a:
                matrix[:n_sub, limbo[i]] = p[:, moved[i]]
                matrix[:n_sub, moved[i]] = 0.0
            elif k == a + 1:
                matrix[:n_sub, limbo[i]] = 0.0
        return matrix

    own = _folded(base.values_at, _local(base), draw_of)
    memo: dict = {"key": None, "values": None}

    def values_at(k: int) -> np.ndarray:
        v = own(k)
        key = (id(v), tuple(k <= a for a in at))
        if key != memo["key"]:
            out = np.zeros((n_rows,) + v.shape[1:])
            out[:n_sub] = v
            for i, a in enumerate(at):
                if k <= a:
                    out[limbo[i]] = v[moved[i]]
            memo["key"], memo["values"] = key, out
        return memo["values"]

    pattern = None
    if base.pattern is not None:
        pattern = np.zeros((n_rows, n_rows), dtype=bool)
        pattern[:n_sub, :n_sub] = base.pattern
        for i in range(len(at)):
            pattern[:n_sub, limbo[i]] = base.pattern[:, moved[i]]

    tv = base.transition_values
    if tv is not None:  # the first strategy's transition payoffs, also on flows into limbo
        f, t = np.asarray(tv.from_index), np.asarray(tv.to_index)
        rows = [np.flatnonzero(np.isin(t, m)) for m in moved]
        to_limbo = [limbo[i][np.searchsorted(moved[i], t[r])] for i, r in enumerate(rows)]
        base_tv = _folded(tv.values_at, _local(base), draw_of)

        def tv_values(k: int) -> np.ndarray:
            v = base_tv(k)
            return np.concatenate([v] + [v[r] for r in rows])

        tv = TransitionValues(np.concatenate([f] + [f[r] for r in rows]),
                              np.concatenate([t] + to_limbo), tv_values, tv.cycles)
    return dataclasses.replace(base, start=start, transition_at=transition_at,
                               values_at=values_at, transition_values=tv, unit_costs=[],
                               pattern=pattern)


def _target_arm(arm, at: int, moved: np.ndarray, n_sub: int, switched: int | None):
    """A step's target from the switch on: held still (identity transitions, no values)
    until cycle ``at``, its own transitions and values after; its one-off programme
    resources (and 1 in the ``switched`` channel) on the switch, as one-off values on the
    identity flows of the moved states in cycle ``at``. ``start`` is left for the runner."""
    batch = arm.start.shape[1]
    draw_of = _draw_of(arm)
    identity = np.zeros((n_sub, n_sub, batch))
    identity[np.arange(n_sub), np.arange(n_sub)] = 1.0

    def transition_at(k: int) -> np.ndarray:
        return identity if k <= at else arm.transition_at(k)

    own = _folded(arm.values_at, _local(arm), draw_of)
    nothing: list = []

    def values_at(k: int) -> np.ndarray:
        if k > at:
            return own(k)
        if not nothing:
            nothing.append(np.zeros((n_sub,) + own(at + 1).shape[1:]))
        return nothing[0]

    one_off = _take(arm.one_off, arm.channels).copy()  # [batch, channel]: its own channels
    _fold_unit_costs(one_off.T, _local(arm), draw_of)
    switched = _own(arm, switched)
    if switched is not None:
        one_off[:, switched] = 1.0
    carries = one_off.any() or arm.transition_values is not None
    tv = None
    if carries:
        on_switch = np.broadcast_to(one_off.T, (len(moved),) + one_off.T.shape)
        own_tv = arm.transition_values
        if own_tv is None:
            tv = TransitionValues(moved, moved, lambda k: on_switch, frozenset({at}))
        else:
            f, t = np.asarray(own_tv.from_index), np.asarray(own_tv.to_index)
            folded = _folded(own_tv.values_at, _local(arm), draw_of)
            idle = np.zeros((len(f),) + one_off.T.shape)

            def tv_values(k: int) -> np.ndarray:
                mine = folded(k) if k > at else idle
                switch = on_switch if k == at else np.zeros_like(on_switch)
                return np.concatenate([switch, mine])

            tv = TransitionValues(np.concatenate([moved, f]), np.concatenate([moved, t]),
                                  tv_values)
    pattern = None
    if arm.pattern is not None:
        pattern = arm.pattern | np.eye(n_sub, dtype=bool)
    return dataclasses.replace(arm, start=None, transition_at=transition_at,
                               values_at=values_at, transition_values=tv, unit_costs=[],
                               one_off=np.zeros_like(one_off), pattern=pattern)
