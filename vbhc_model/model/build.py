"""Parameter draws -> per-strategy model inputs: transition matrices and payoff arrays.

A strategy's inputs are functions of the cycle k returning arrays with a trailing batch axis
(the engine's layout): ``transition_at(k)`` gives ``[from, to, batch]`` and ``values_at(k)``
gives ``[state, channel, batch]``. The batch axis is draws, repeated for each programme
engagement level (level-major: ``b = level * n_draws + draw``), so that non-starters, drop-outs
and completers run as strata of one vectorised cohort. Tunnel states are expanded into one
sub-state per cycle spent in them.

Expressions are evaluated for a block of cycles at once, with the time names (``cycle``,
``time``, ``age``) as arrays over the block: numpy broadcasting then evaluates each
sub-expression at its own shape, so a part that does not depend on time (a rate converted to a
cycle probability, say) is computed once per block rather than once per cycle, and a part that
depends only on time (a life-table lookup) once per cycle rather than once per draw. Rows of the
transition matrix that do not depend on time are built once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from vbhc_model.engines.base import TransitionValues
from vbhc_model.errors import ExpressionError, ScenarioError
from vbhc_model.model import checks, stepped
from vbhc_model.model.powers import PowerMemo
from vbhc_model.model.trackers import Trackers, build_trackers
from vbhc_model.parameters.draws import resolve_parameters, table_functions
from vbhc_model.scenario import checks as checks_scenario
from vbhc_model.scenario.expressions import Expression
from vbhc_model.scenario.names import ENGAGEMENT_NAMES, TIME_NAMES
from vbhc_model.scenario.schema import COMPLEMENT, Scenario

NO_ENGAGEMENT = "all"


@dataclass(frozen=True)
class Channels:
    """The outcome channels accumulated by the engine, in order."""

    kind: tuple[str, ...]  # cost, qalys, life_years, utilisation, clinician_hours[, switched,
    # occupancy]
    key: tuple[str, ...]  # category, service or role ('' for qalys and life years)
    #: Cost categories left out of the total under the scenario's perspective (societal
    #: categories under the health-care perspective); reported by category all the same.
    outside: frozenset[str] = frozenset()
    #: The states whose person-time the channel ``occupancy`` totals (Outputs.occupancy).
    occupancy: tuple[str, ...] = ()

    def index(self, kind: str, key: str = "") -> int:
        return self.kind.index(kind) if not key else list(zip(self.kind, self.key)).index((kind, key))

    def keys(self, kind: str) -> list[str]:
        return [k for t, k in zip(self.kind, self.key) if t == kind]

    def of_kind(self, kind: str) -> np.ndarray:
        return np.array([i for i, t in enumerate(self.kind) if t == kind], dtype=int)

    def in_total(self, kind: str) -> np.ndarray:
        """The channels of ``kind`` that its total sums (cost: the perspective's)."""
        return np.array([i for i, (t, k) in enumerate(zip(self.kind, self.key))
                         if t == kind and not (t == "cost" and k in self.outside)], dtype=int)


@dataclass(frozen=True)
class Profiles:
    """The combinations of patient attribute levels (``population.attributes``), each run as
    a stratum; profile-major in the order of the attributes and levels in the file."""

    attributes: tuple[str, ...]
    level_names: tuple[tuple[str, ...], ...]  # per attribute
    levels: np.ndarray  # [profile, attribute]: index into level_names[attribute]
    values: np.ndarray  # [profile, attribute]: what expressions see
    weights: np.ndarray  # [draw, profile]: product of the levels' shares, or the table's
    table: bool = False  # the rows of a patient table (else every combination of levels)

    @property
    def labels(self) -> list[str]:
        if self.table:
            return [f"row {i + 1} of the patient table" for i in range(len(self.levels))]
        return [", ".join(f"{a}={self.level_names[j][i]}"
                          for j, (a, i) in enumerate(zip(self.attributes, row)))
                for row in self.levels]


@dataclass(frozen=True)
class StrategyInputs:
    """Ready-to-simulate inputs of one strategy."""

    name: str
    levels: tuple[str, ...]  # engagement levels
    shares: np.ndarray  # [draw, stratum]: profile weight x engagement share
    start: np.ndarray  # [state', batch]
    transition_at: Callable[[int], np.ndarray]
    values_at: Callable[[int], np.ndarray]
    one_off: np.ndarray  # [batch, channel], at time 0
    transition_values: TransitionValues | None
    unit_costs: list[tuple[int, int, np.ndarray]]  # (from channel, to cost channel, [draw])
    #: Stratum s = profile * len(levels) + level; batch column b = s * n_draws + draw.
    profiles: Profiles | None = None
    #: [draw, profile, level]: the engagement levels' shares within each profile.
    level_shares: np.ndarray | None = None
    #: Stepped care (model/stepped.py): the states are state' x arm (``state' * n_arms +
    #: arm``).
    n_arms: int = 1
    #: Trackers (model/trackers.py): the rows of ``start``, ``values_at`` and the
    #: transitions' ``from`` axis are state' x combination (``state' * n_combos + combo``),
    #: the transitions' ``to`` axis the states'; a patient in row r moving to state' j is
    #: then in row ``next_row[r, j]``.
    n_combos: int = 1
    next_row: np.ndarray | None = None
    #: [from, to]: the cells of the transition matrices that can be non-zero in some cycle
    #: (declared transitions, complements, absorbing states); None: any.
    pattern: np.ndarray | None = None
    #: Stepped care as the cohort runs it (model/stepped.Chain): the first strategy and each
    #: target as cohorts of their own; ``start``, ``transition_at`` and ``values_at`` are
    #: then None, and the runner assembles the combined strata (pipeline/simulate.py).
    chain: object = None
    #: The cohort's merged profiles: when some attributes only weight the strata (they
    #: appear in no array of the strategy), the arrays (``start``, transitions, values) are
    #: built for one profile of each class of identical ones, and the engine's result
    #: column ``expand[b]`` is column b of every profile's strata (``shares``, ``one_off``
    #: and ``profiles`` are every profile's). None: no merging.
    expand: np.ndarray | None = None
    #: The channels ``values_at`` and the transition values hold, in this order (the cohort
    #: builds each strategy's payoffs on the channels it fills: a third to a half of them);
    #: the engine's totals are then those channels', expanded to every channel with zeros
    #: (pipeline/simulate.py). None: every channel.
    channels: np.ndarray | None = None

    @property
    def n_strata(self) -> int:
        return self.shares.shape[1]

    @property
    def stratum_level(self) -> np.ndarray:
        """The engagement level (index into ``levels``) of each stratum."""
        return np.tile(np.arange(len(self.levels)), self.n_strata // len(self.levels))

    @property
    def stratum_profile(self) -> np.ndarray:
        """The attribute profile of each stratum (all 0 without a population)."""
        return np.repeat(np.arange(self.n_strata // len(self.levels)), len(self.levels))


@dataclass(frozen=True)
class ModelInputs:
    """Inputs of every strategy, with the labels the engine does not need."""

    states: tuple[str, ...]
    substate_of: np.ndarray  # [state'] -> index into states
    channels: Channels
    rates: np.ndarray  # [channel] annual discount rate
    n_draws: int
    strategies: tuple[StrategyInputs, ...] = field(default=())
    layout: object = field(default=None, repr=False)
    trackers: Trackers | None = None


def _channels(scenario: Scenario, occupancy: tuple[str, ...] = ()) -> Channels:
    categories: list[str] = []

    def add(cat: str | None) -> None:
        if cat and cat not in categories:
            categories.append(cat)

    blocks = [*scenario.payoffs.values(), *scenario.transition_payoffs]
    for strat in scenario.strategies.values():
        blocks += list(strat.payoffs.values())
        if strat.programme is not None:
            blocks += [strat.programme.one_off, strat.programme.per_cycle]
    for block in blocks:
        for cat in block.costs:
            add(cat)
    for item in [*scenario.services.values(), *scenario.roles.values()]:
        add(item.category)
    kind = ["cost"] * len(categories) + ["qalys", "life_years"]
    key = categories + ["", ""]
    kind += ["utilisation"] * len(scenario.services) + ["clinician_hours"] * len(scenario.roles)
    key += list(scenario.services) + list(scenario.roles)
    if any(st.steps for st in scenario.strategies.values()):  # the share stepped up
        kind.append("switched")
        key.append("")
    if occupancy:  # person-time in some states (a plan's responders)
        kind.append("occupancy")
        key.append("")
    societal = {name for name, c in scenario.cost_categories.items()
                if c.perspective == "societal"}
    outside = frozenset() if scenario.settings.perspective == "societal" else frozenset(societal)
    return Channels(tuple(kind), tuple(key), outside, tuple(occupancy))


def _rates(scenario: Scenario, channels: Channels) -> np.ndarray:
    # Utilisation and hours are discounted at the cost rate so that their unit costs can be
    # applied after accumulation; they are reported undiscounted.
    d = scenario.settings.discount
    return np.array([d.effects if k in ("qalys", "life_years") else d.costs for k in channels.kind])


class _Evaluator:
    """Evaluates expressions for one strategy over ``[cycle, sub-state, batch]``.

    Parameters are 1-D arrays over the batch (the trailing axis), or of one value when no draw
    varies them (``resolve_parameters(compact=True)``); the time names are arrays of
    shape ``[cycle, 1, 1]`` over the cycles asked for; ``time_in_state`` is ``[sub, 1]``.
    """

    def __init__(self, params: dict[str, np.ndarray], batch_effect: np.ndarray,
                 batch_resource: np.ndarray, n_levels: int, scenario: Scenario,
                 attributes: dict[str, np.ndarray] | None = None, clock_offset: int = 0,
                 trackers: Trackers | None = None):
        s = scenario.settings
        #: Expressions asked for ``combos`` see each tracker per combination (model/trackers.py)
        self.trackers = trackers
        #: Cycles of the model before the strategy's own cycle 1 (an arm of stepped care):
        #: ``cycle`` and ``time`` count from there, ``age`` is the model's.
        self.clock_offset = clock_offset
        self.batch = batch_effect.shape[0]
        self.n_levels = n_levels  # strata: attribute profiles x engagement levels
        self.n_draws = self.batch // n_levels
        # Expressions that use neither the engagement level nor a patient attribute are
        # evaluated once per draw and repeated across strata; the others on the whole batch
        # (draws x strata).
        self.stratum_names = ENGAGEMENT_NAMES | set(attributes or ())
        self.env_draw: dict[str, object] = dict(params)
        # (a parameter no draw varies has one value, shape (1,), in both)
        self.env: dict[str, object] = (
            {k: np.tile(v, n_levels) if v.shape[-1] > 1 else v for k, v in params.items()}
            if n_levels > 1 else self.env_draw
        )
        self.env["engagement_effect"] = batch_effect
        self.env["engagement_resource_use"] = batch_resource
        self.env.update(attributes or {})
        for env in (self.env, self.env_draw):
            env["cycle_length"] = s.cycle_length
        self.functions = table_functions(scenario)
        self.source = scenario.source
        self.cycle_length = s.cycle_length
        self.start_age = s.start_age or 0.0
        self.node_based = s.correction_method in ("trapezoidal", "simpson", "weights")
        #: The rule for ``**`` of each environment (by id): None (the language's own) outside
        #: a :meth:`power_memo` block.
        self.powers: dict[int, PowerMemo] | None = None

    @contextlib.contextmanager
    def power_memo(self):
        """Within the block: ``base ** exponent`` rows are kept between the expressions of
        one block of cycles (``cycle ** g`` and ``(cycle - 1) ** g`` share rows); after it
        they are dropped, so the memory is bounded by the block's and evaluations outside a
        block (payoffs, cycle by cycle) keep nothing. Each environment (per draw, per
        stratum; one when there is one level) has its own memo."""
        self.powers = {id(env): PowerMemo() for env in (self.env, self.env_draw)}
        try:
            yield
        finally:
            self.powers = None

    def __call__(self, expr: Expression, cycles, n_sub: int, *, node: bool = False,
                 path: tuple = (), combos: bool = False) -> np.ndarray:
        """Values of ``expr`` for the cycles ``cycles`` (int or array): a read-only array
        broadcast to ``[len(cycles), n_sub, batch]``. With trackers and ``combos``, ``n_sub``
        counts rows (sub-state, combination), sub-state-major, and the trackers' names are
        their values in each row's combination."""
        cycles = np.atleast_1d(np.asarray(cycles, dtype=float))
        by_level = self.n_levels > 1 and bool(expr.names & self.stratum_names)
        env = self.env if by_level or self.n_levels == 1 else self.env_draw
        # Cycle k starts at (k - 1) cycle lengths; a trapezoid/Simpson node k is at k; the
        # one-off values at the start (k = 0) are at time 0.
        # An arm of stepped care counts cycles and time from its start (the model's cycle
        # clock_offset); its age is the model's.
        offset = self.clock_offset
        if offset:
            cycles = cycles - offset
        elapsed = cycles if (node and self.node_based) else np.maximum(cycles - 1, 0)
        env["cycle"] = cycles[:, None, None]
        env["time"] = (elapsed * self.cycle_length)[:, None, None]
        years = (elapsed + offset) * self.cycle_length if offset else elapsed * self.cycle_length
        env["age"] = (self.start_age + years)[:, None, None]
        if self.trackers is not None and combos:
            n_combos = self.trackers.n_combos
            n_tunnel = n_sub // n_combos
            env["time_in_state"] = np.repeat(np.arange(1.0, n_tunnel + 1.0), n_combos)[:, None]
            for j, name in enumerate(self.trackers.names):
                env[name] = np.tile(self.trackers.values[:, j], n_tunnel)[:, None]
        else:
            env["time_in_state"] = np.arange(1.0, n_sub + 1.0)[:, None]
        try:
            power = self.powers[id(env)] if self.powers is not None else None
            out = np.asarray(expr.evaluate(env, self.functions, power), dtype=float)
        except ExpressionError as exc:  # e.g. a table called with two arguments
            raise ScenarioError([self.source.issue(path, str(exc))]) from None
        if env is self.env_draw and self.n_levels > 1 and out.ndim and \
                out.shape[-1] == self.n_draws > 1:
            if out.ndim == 3 and out.shape[0] > 1 and out.strides[0] == 0:
                out = out[:1]  # the same in every cycle (a broadcast): tiled once
            out = np.tile(out, (1,) * (out.ndim - 1) + (self.n_levels,))
        return np.broadcast_to(out, (len(cycles), n_sub, self.batch))


def _constant(x: np.ndarray) -> bool:
    """Whether ``x[cycle, ...]`` is the same in every cycle of its block (one cycle, or a
    broadcast along the cycles)."""
    return x.shape[0] == 1 or x.strides[0] == 0


def _time_dependent(exprs) -> bool:
    return any(e is not COMPLEMENT and e.names & TIME_NAMES for e in exprs)


def build_model(scenario: Scenario, draws: xr.DataArray, *, strategies: bool = True,
                occupancy: tuple[str, ...] = ()) -> ModelInputs:
    """Build every strategy's transition and payoff functions from parameter draws.

    Parameters
    ----------
    scenario : Scenario
    draws : xarray.DataArray
        Free parameter values, dims ``(draw, parameter)``.
    occupancy : tuple of str
        States whose person-time a channel ``occupancy`` totals (Outputs.occupancy).

    Returns
    -------
    ModelInputs

    Raises
    ------
    ScenarioError
        Shares, starting distributions or (when the arrays are first built) probabilities and
        payoffs that are out of range, each naming strategy, state, cycle and draw.
    """
    names = list(scenario.states)
    tunnel = np.array([scenario.states[s].tunnel for s in names])
    offset = dict(zip(names, np.concatenate([[0], np.cumsum(tunnel)[:-1]]).tolist()))
    substate_of = np.repeat(np.arange(len(names)), tunnel)
    channels = _channels(scenario, occupancy)
    n_draws = draws.sizes["draw"]
    trackers = build_trackers(scenario)
    layout = _Layout(names, tunnel, offset, int(tunnel.sum()), trackers, substate_of)
    inputs = ModelInputs(tuple(names), substate_of, channels, _rates(scenario, channels),
                         n_draws, layout=layout, trackers=trackers)
    if not strategies:
        return inputs
    built = tuple(build_strategy(scenario, sname, draws, inputs) for sname in scenario.strategies)
    return dataclasses.replace(inputs, strategies=built)


def build_strategy(scenario: Scenario, sname: str, draws: xr.DataArray,
                   inputs: ModelInputs, *, cohort: bool = False) -> StrategyInputs:
    """Build one strategy's inputs (for building strategies side by side); ``inputs`` from
    :func:`build_model` with ``strategies=False``. With ``cohort``, the forms the cohort
    engine runs faster and equally: a stepped strategy as a
    :class:`vbhc_model.model.stepped.Chain` instead of one model on the combined states,
    and a strategy whose arrays do not depend on some patient attributes built once per
    class of identical profiles (``StrategyInputs.expand``)."""
    steps = scenario.strategies[sname].steps
    if not steps:
        return _build_strategy(scenario, sname, draws, inputs.layout, inputs.channels,
                               merge_profiles=cohort, own_channels=cohort)
    chained = cohort and inputs.trackers is None
    # Profiles merged for the chain when some attributes appear nowhere in the strategy or
    # its targets (not even in engagement shares): the chain runs one profile per class,
    # with the profiles' weights set aside, and the result is expanded to every profile.
    merged = None
    if chained and scenario.population is not None:
        used = set()
        for name in [sname] + [step.switch_to for step in steps]:
            used |= checks_scenario.attributes_in_arrays(scenario, name)
            used |= {n for lvl in (scenario.strategies[name].engagement or {}).values()
                     if lvl.share is not COMPLEMENT for n in lvl.share.names}
        params = resolve_parameters(scenario, draws, sname)
        merged = _profile_classes(_profiles(scenario, params, draws.sizes["draw"]), used)
    keep = None if merged is None else merged[0]
    # the chain's arms on their own channels, with those their unit costs fold into
    own = "folded" if chained else False
    strat = _build_strategy(scenario, sname, draws, inputs.layout, inputs.channels,
                            only_profiles=keep, own_channels=own)
    arms = [_build_strategy(scenario, step.switch_to, draws, inputs.layout, inputs.channels,
                            clock_offset=step.at_cycle, extra=step.parameters,
                            only_profiles=keep, own_channels=own)
            for step in steps]
    form = stepped.chain if chained else stepped.combine
    out = form(strat, arms, steps, inputs.substate_of, list(inputs.states),
               n_cycles=scenario.settings.n_cycles,
               switched=inputs.channels.index("switched"))
    if merged is None:
        return out
    # every profile's strata: weight x the levels' shares of its class
    keep, class_of = merged
    profiles = _profiles(scenario, params, draws.sizes["draw"])
    n_draws = draws.sizes["draw"]
    n_levels = len(out.levels)
    expand = _expand(class_of, n_levels, n_draws)
    per_class = out.shares.reshape(n_draws, len(keep), n_levels)
    shares = (per_class[:, class_of] * profiles.weights[:, :, None]).reshape(n_draws, -1)
    return dataclasses.replace(out, shares=shares, one_off=out.one_off[expand],
                               profiles=profiles, expand=expand)


@dataclass(frozen=True)
class _Layout:
    """Where each state's rows are: its tunnel sub-states (``size`` in all), each once per
    combination of tracker values (``n_rows`` rows, sub-state-major)."""

    names: list[str]
    tunnel: np.ndarray
    offset: dict[str, int]
    size: int
    trackers: Trackers | None = None
    substate_of: np.ndarray | None = None

    @property
    def n_combos(self) -> int:
        return 1 if self.trackers is None else self.trackers.n_combos

    @property
    def n_rows(self) -> int:
        return self.size * self.n_combos

    def sub(self, state: str) -> np.ndarray:
        o = self.offset[state]
        return np.arange(o, o + self.tunnel[self.names.index(state)])

    def rows(self, state: str) -> np.ndarray:
        """The rows of ``state``: each sub-state's combinations (``sub`` without trackers)."""
        if self.trackers is None:
            return self.sub(state)
        c = self.n_combos
        return (self.sub(state)[:, None] * c + np.arange(c)).reshape(-1)

    def destinations(self, frm: str, to: str) -> np.ndarray:
        """The sub-state ``to`` is entered in from each row of ``frm`` (transitions' ``to``
        axis)."""
        return np.repeat(self.destination(frm, to), self.n_combos)

    def to_rows(self, frm: str, to: str) -> np.ndarray:
        """The row a patient is in after moving ``frm -> to`` from each row of ``frm``."""
        if self.trackers is None:
            return self.destination(frm, to)
        return self.next_row[self.rows(frm), self.destinations(frm, to)]

    def start_row(self, state: str) -> int:
        """The row a patient starting in ``state`` is in (the trackers' start)."""
        start = 0 if self.trackers is None else self.trackers.start
        return self.offset[state] * self.n_combos + start

    @functools.cached_property
    def next_row(self) -> np.ndarray | None:
        """``[row, sub-state]``: the row after moving from a row to a sub-state."""
        tr = self.trackers
        if tr is None:
            return None
        c, of = self.n_combos, self.substate_of
        combo = np.arange(self.n_rows) % c
        frm = of[np.arange(self.n_rows) // c]
        return np.arange(self.size) * c + tr.next_combo[combo[:, None], frm[:, None], of]

    def row_labels(self, state: str) -> int | tuple[str, ...]:
        """What error messages say of each row of ``state``: its tunnel length (as
        :mod:`vbhc_model.model.checks` reads it), or with trackers each row's values."""
        n = int(self.tunnel[self.names.index(state)])
        if self.trackers is None:
            return n
        combos = self.trackers.labels()
        return tuple((f"time in state {t + 1}, " if n > 1 else "") + combo
                     for t in range(n) for combo in combos)

    def destination(self, frm: str, to: str) -> np.ndarray:
        """Expanded destination of moving ``frm -> to`` from each sub-state of ``frm``."""
        n_from = int(self.tunnel[self.names.index(frm)])
        if to == frm:
            o = self.offset[frm]
            return o + np.minimum(np.arange(1, n_from + 1), n_from - 1)
        return np.full(n_from, self.offset[to])


def _profiles(scenario: Scenario, params: dict[str, np.ndarray], n_draws: int) -> Profiles | None:
    """Every combination of attribute levels with its weight in each draw (the attributes
    independent: the product of their levels' shares)."""
    pop = scenario.population
    if pop is None:
        return None
    if pop.patients is not None:  # each row a profile; levels: the distinct values
        table = checks_scenario.patient_table(scenario)
        found = [np.unique(col, return_inverse=True) for col in table.values.T]
        return Profiles(table.attributes, tuple(tuple(f"{v:g}" for v in u) for u, _ in found),
                        np.column_stack([inv.reshape(-1) for _, inv in found]), table.values,
                        np.broadcast_to(table.weights, (n_draws, len(table.weights))),
                        table=True)
    functions = table_functions(scenario)
    names = tuple(pop.attributes)
    level_names, shares, values = [], [], []
    for name, attr in pop.attributes.items():
        lv = tuple(attr.levels)
        sh = np.zeros((n_draws, len(lv)))
        rest = None
        for i, level in enumerate(attr.levels.values()):
            if level.share is COMPLEMENT:
                rest = i
            else:
                sh[:, i] = level.share.evaluate(params, functions)
        if rest is not None:
            sh[:, rest] = 1.0 - sh.sum(axis=1)
        checks.check_shares(sh, source=scenario.source,
                            path=("population", "attributes", name, "levels"),
                            what=f"attribute '{name}'", strategy=None)
        level_names.append(lv)
        shares.append(sh)
        values.append(np.array([lvl.value for lvl in attr.levels.values()]))
    grid = np.indices([len(lv) for lv in level_names]).reshape(len(names), -1).T
    weights = np.ones((n_draws, len(grid)))
    for j in range(len(names)):
        weights *= shares[j][:, grid[:, j]]
    vals = np.column_stack([values[j][grid[:, j]] for j in range(len(names))])
    return Profiles(names, tuple(level_names), grid, vals, weights)


def _engagement(scenario: Scenario, sname: str, params: dict[str, np.ndarray], n_draws: int,
                profiles: Profiles | None = None):
    """Engagement levels, with shares, effects and resource use ``[profile, draw, level]``
    (one profile without a population; an expression may use patient attributes)."""
    strat = scenario.strategies[sname]
    n_profiles = 1 if profiles is None else len(profiles.levels)
    if not strat.engagement:
        ones = np.ones((n_profiles, n_draws, 1))
        return (NO_ENGAGEMENT,), ones, ones, ones
    functions = table_functions(scenario)
    env: dict[str, object] = dict(params)
    if profiles is not None:
        env.update({a: profiles.values[:, j, None] for j, a in enumerate(profiles.attributes)})
    levels = tuple(strat.engagement)
    shape = (n_profiles, n_draws)
    shares = np.zeros(shape + (len(levels),))
    effect = np.zeros_like(shares)
    resource = np.zeros_like(shares)
    rest = None
    for i, (name, lvl) in enumerate(strat.engagement.items()):
        if lvl.share is COMPLEMENT:
            rest = i
        else:
            shares[..., i] = np.broadcast_to(lvl.share.evaluate(env, functions), shape)
        effect[..., i] = np.broadcast_to(lvl.effect.evaluate(env, functions), shape)
        resource[..., i] = np.broadcast_to(lvl.resource_use.evaluate(env, functions), shape)
        for kind, vals in (("effect", effect), ("resource_use", resource)):  # finite (issue 11)
            checks.check_engagement(vals[..., i], source=scenario.source, kind=kind,
                                    path=("strategies", sname, "engagement", name, kind),
                                    strategy=sname, n_draws=n_draws)
    if rest is not None:
        shares[..., rest] = 1.0 - shares.sum(axis=-1)
    labels = None if profiles is None else profiles.labels  # built once: a table has 4,096
    for p in range(n_profiles):
        checks.check_shares(shares[p], source=scenario.source,
                            path=("strategies", sname, "engagement"), what="engagement",
                            strategy=sname,
                            profile=None if labels is None else labels[p])
    return levels, shares, effect, resource


def _build_strategy(scenario: Scenario, sname: str, draws: xr.DataArray, layout: _Layout,
                    channels: Channels, clock_offset: int = 0,
                    extra: dict | None = None, merge_profiles: bool = False,
                    only_profiles: np.ndarray | None = None,
                    own_channels: bool | str = False) -> StrategyInputs:
    """One strategy's inputs; with ``own_channels``, its payoffs on the channels it fills
    (``StrategyInputs.channels``), and with ``own_channels="folded"`` (an arm of stepped
    care's chain, which folds unit costs into the cost channels before accumulating) also
    those its unit costs and one-off values fill and the ``switched`` channel."""
    strat = scenario.strategies[sname]
    src = scenario.source
    n_draws = draws.sizes["draw"]
    params = resolve_parameters(scenario, draws, sname, extra, compact=True)
    checks.check_parameters(params, scenario, strategy=sname, extra=extra)  # finite (issue 11)
    profiles = _profiles(scenario, params, n_draws)
    levels, shares, effect, resource = _engagement(scenario, sname, params, n_draws, profiles)
    n_profiles = shares.shape[0]
    # The arrays are built for the profiles in `keep` (all, or one per class of profiles
    # whose arrays are identical: merge_profiles); the shares for every profile.
    keep, class_of = np.arange(n_profiles), None
    if merge_profiles and profiles is not None:
        found = _profile_classes(profiles, checks_scenario.attributes_in_arrays(scenario, sname))
        if found is not None:
            keep, class_of = found
    if only_profiles is not None:  # a stepped strategy's merged profiles (build_strategy)
        keep = only_profiles
        shares = shares[keep]
        profiles = dataclasses.replace(profiles, weights=np.ones((n_draws, n_profiles)))
    effect, resource = effect[keep], resource[keep]
    n_built = len(keep)
    n_levels = n_built * len(levels)  # strata built: profile-major, then engagement level
    batch = n_draws * n_levels
    # [profile, draw, level] -> [stratum, draw] -> batch (b = stratum * n_draws + draw)
    resource_b = resource.transpose(0, 2, 1).reshape(-1)
    attributes = None
    if profiles is not None:
        attributes = {a: np.repeat(profiles.values[keep, j], len(levels) * n_draws)
                      for j, a in enumerate(profiles.attributes)}
        weights = profiles.weights.T[keep if only_profiles is not None else slice(None)]
        stratum_shares = (weights[:, :, None] * shares).transpose(1, 0, 2)
        stratum_shares = stratum_shares.reshape(n_draws, -1)
    else:
        stratum_shares = shares[0]
    ev = _Evaluator(params, effect.transpose(0, 2, 1).reshape(-1), resource_b, n_levels,
                    scenario, attributes, clock_offset, layout.trackers)

    # Starting distribution.
    start_spec = strat.start if strat.start is not None else scenario.settings.start
    start_path = ("strategies", sname, "start") if strat.start is not None else ("settings", "start")
    start_names = list(start_spec)
    start = np.zeros((layout.n_rows, batch))
    if profiles is None or not any(start_spec[s].names & set(profiles.attributes)
                                   for s in start_names):
        start_shares = np.column_stack(
            [np.broadcast_to(start_spec[s].evaluate(params, ev.functions), (n_draws,))
             for s in start_names]
        )
        checks.check_shares(start_shares, source=src, path=start_path, what="starting",
                            strategy=sname)
        for i, s in enumerate(start_names):
            start[layout.start_row(s)] = np.tile(start_shares[:, i], n_levels)
    else:  # starting shares by patient profile: [batch, state]
        start_shares = np.column_stack([ev(start_spec[s], 0, 1)[0, 0] for s in start_names])
        per = start_shares.reshape(n_built, len(levels), n_draws, -1)[:, 0]
        labels = [profiles.labels[p] for p in keep]
        for p in range(n_built):
            checks.check_shares(per[p], source=src, path=start_path, what="starting",
                                strategy=sname, profile=labels[p])
        for i, s in enumerate(start_names):
            start[layout.start_row(s)] = start_shares[:, i]

    transition_at, pattern = _transitions(scenario, sname, layout, ev, n_draws)
    entries = _value_entries(scenario, sname, layout, channels, resource_b)
    tv_entries = _transition_entries(scenario, layout, channels)
    cols = None
    if own_channels:  # payoffs on the channels this strategy fills (StrategyInputs.channels)
        cols = _filled(channels, entries, tv_entries[2] if tv_entries else [])
    values_at = None  # (below, once the folded channels are known)

    one_off = np.zeros((batch, len(channels.kind)))
    if strat.programme is not None:
        for kind, field_, key, expr in _block_entries(strat.programme.one_off):
            path = ("strategies", sname, "programme", "one_off", field_, key)
            v = ev(expr, clock_offset, 1, path=path)  # the strategy's own time 0
            checks.check_payoff(v, kind=kind, source=src, path=path, strategy=sname, state=None,
                                cycle=0, n_draws=n_draws)
            one_off[:, channels.index(kind, key)] += v[0, 0] * resource_b
    if class_of is not None:  # the one-off values of every profile's strata
        one_off = one_off[_expand(class_of, len(levels), n_draws)]

    unit_costs = []
    for kind, items, attr in (("utilisation", scenario.services, "unit_cost"),
                              ("clinician_hours", scenario.roles, "hourly_cost")):
        for name, item in items.items():
            cost = getattr(item, attr)
            if cost is None:
                continue
            value = np.broadcast_to(cost.evaluate(params, ev.functions), (n_draws,)).astype(float)
            path = ("services" if kind == "utilisation" else "roles", name, attr)
            checks.check_payoff(value, kind="cost", source=src, path=path,
                                strategy=sname, state=None, cycle=0, n_draws=n_draws)
            unit_costs.append((channels.index(kind, name), channels.index("cost", item.category),
                               value))
    if own_channels == "folded":
        # the one-off values' channels first, then the cost channels the unit costs of any
        # filled count (per cycle or one-off) fold into
        folded = set(cols.tolist()) | set(np.flatnonzero(one_off.any(axis=0)).tolist())
        folded |= {dst for src, dst, _ in unit_costs if src in folded}
        if "switched" in channels.kind:
            folded.add(channels.index("switched"))
        cols = np.array(sorted(folded), dtype=int)
    values_at = _values(scenario, sname, layout, channels, ev, entries, n_draws, cols)

    return StrategyInputs(
        name=sname,
        levels=levels,
        shares=stratum_shares,
        start=start,
        transition_at=transition_at,
        values_at=values_at,
        one_off=one_off,
        transition_values=_transition_values(scenario, sname, layout, tv_entries, channels,
                                             ev, n_draws, cols),
        unit_costs=unit_costs,
        profiles=profiles,
        level_shares=shares.transpose(1, 0, 2),
        n_combos=layout.n_combos,
        next_row=layout.next_row,
        pattern=pattern,
        expand=None if class_of is None else _expand(class_of, len(levels), n_draws),
        channels=cols,
    )


def _profile_classes(profiles: Profiles, used: set[str]
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """One profile of each class of profiles that agree on the attributes in ``used``
    (``keep``), and each profile's class (``class_of``); None when every attribute is used."""
    cols = [j for j, a in enumerate(profiles.attributes) if a in used]
    if len(cols) == len(profiles.attributes):
        return None
    _, keep, class_of = np.unique(profiles.values[:, cols], axis=0, return_index=True,
                                  return_inverse=True)
    return keep, class_of.reshape(-1)


def _expand(class_of: np.ndarray, n_levels: int, n_draws: int) -> np.ndarray:
    """Batch column of the built strata for each column of every profile's strata."""
    stratum = (class_of[:, None] * n_levels + np.arange(n_levels)).reshape(-1)
    return (stratum[:, None] * n_draws + np.arange(n_draws)).reshape(-1)


def _rows(scenario: Scenario, sname: str) -> dict[str, dict[str, tuple]]:
    """Each state's row: destination -> (expression or COMPLEMENT, key path)."""
    rows: dict[str, dict[str, tuple]] = {}
    for frm, row in scenario.transitions.items():
        rows[frm] = {to: (e, ("transitions", frm, to)) for to, e in row.items()}
    for frm, row in scenario.strategies[sname].transitions.items():
        for to, e in row.items():
            rows.setdefault(frm, {})[to] = (e, ("strategies", sname, "transitions", frm, to))
    return rows


#: Most elements (cells x cycles x batch) evaluated at once for the transitions of a block of
#: cycles: 2**22 float64 values, 32 MB.
BLOCK_ELEMENTS = 2**22


def _transitions(scenario: Scenario, sname: str, layout: _Layout, ev: _Evaluator, n_draws: int):
    src = scenario.source
    rows = _rows(scenario, sname)
    n_cycles = scenario.settings.n_cycles
    # Index arrays computed once: (from, sub-states, [(to, expr, path, destinations)], rest,
    # row path, whether the row depends on time).
    plan = []
    for frm, row in rows.items():
        cells, rest = [], None
        for to, (expr, path) in row.items():
            if expr is COMPLEMENT:
                rest = layout.destinations(frm, to)
            else:
                cells.append((to, expr, path, layout.destinations(frm, to)))
        # Report row errors where the row is (last) edited: a strategy's override if any.
        paths = [p for _, p in row.values()]
        row_path = next((p for p in paths if p[0] == "strategies"), paths[0])[:-1]
        sub = layout.rows(frm)
        if len(sub) == 1:  # basic indexing is much faster than fancy indexing
            cells = [(to, e, path, int(dest[0])) for to, e, path, dest in cells]
            rest = int(rest[0]) if rest is not None else None
            sub = int(sub[0])
        dynamic = _time_dependent(e for _, e, _, _ in cells)
        plan.append((frm, sub, cells, rest, row_path, dynamic, layout.row_labels(frm)))
    S, B = layout.size, ev.batch

    def evaluate_rows(cycles: np.ndarray, dynamic: bool) -> list[tuple]:
        """Check and evaluate the (static or time-dependent) rows for ``cycles``:
        ``[(sub, dest, values [cycle, sub, batch], is_rest)]``; for a complement
        (``is_rest``) the values are the row's total, and the cell is 1 - total."""
        seen: dict[tuple[str, int], np.ndarray] = {}  # the same expression in several rows
        with ev.power_memo():
            return _evaluate_rows(cycles, dynamic, seen)

    def _evaluate_rows(cycles: np.ndarray, dynamic: bool, seen: dict) -> list[tuple]:
        out = []
        for frm, sub, cells, rest, row_path, row_dynamic, labels in plan:
            if row_dynamic != dynamic:
                continue
            n_sub = 1 if isinstance(sub, int) else len(sub)
            total = None
            for to, expr, path, dest in cells:
                key = (expr.text, n_sub)
                if key not in seen:
                    seen[key] = ev(expr, cycles, n_sub, path=path, combos=True)
                    checks.check_probability(seen[key], source=src, path=path,
                                             label=f"{frm} -> {to}", strategy=sname,
                                             state=frm, cycle=cycles, n_draws=n_draws,
                                             n_sub=labels)
                x = seen[key]
                out.append((sub, dest, x, False))
                # a total of cells constant over the block is formed once and broadcast
                x_total = x[:1] if _constant(x) else x
                total = x_total if total is None else total + x_total
            if total is None:
                total = np.zeros((1, n_sub, 1))
            if rest is None:
                checks.check_row_sum(total, has_complement=False, source=src, path=row_path,
                                     strategy=sname, state=frm, cycle=cycles,
                                     n_draws=n_draws, n_sub=labels)
                continue
            # The complement is written cycle by cycle as 1 - total (clipped at 0); the total
            # is checked here at its own shape: <= 1 within the tolerance (NaN fails too).
            if not checks.compact(total).max() <= 1.0 + checks.SUM_TOLERANCE:
                checks.check_row_sum(checks.compact(total), has_complement=True, source=src,
                                     path=row_path, strategy=sname, state=frm, cycle=cycles,
                                     n_draws=n_draws, n_sub=labels)
            out.append((sub, rest, np.broadcast_to(total, (len(cycles),) + total.shape[1:])
                        if total.shape[0] == 1 else total, True))
        return out

    def put(p: np.ndarray, sub, dest, x: np.ndarray, is_rest: bool) -> None:
        """Write cell values ``x`` ([sub, b]) into ``p`` [from, to, batch], or for a complement
        1 - x clipped at 0. Each (sub-state, destination) of a row is one cell or the
        complement, never two."""
        if isinstance(sub, int):
            if is_rest:
                view = p[sub, dest]
                np.subtract(1.0, x[0], out=view)
                np.maximum(view, 0.0, out=view)
            else:
                p[sub, dest] = x[0]
        else:
            p[sub, dest] = np.maximum(1.0 - x, 0.0) if is_rest else x

    # Which cells can be non-zero in any cycle (the engine skips the others).
    pattern = np.zeros((layout.n_rows, S), dtype=bool)
    for s in layout.names:
        if scenario.states[s].absorbing:
            pattern[layout.rows(s), layout.destinations(s, s)] = True
    for _, sub, cells, rest, _, _, _ in plan:
        for _, _, _, dest in cells:
            pattern[sub, dest] = True
        if rest is not None:
            pattern[sub, rest] = True

    # Rows that do not depend on time, and absorbing states, are built once.
    static = np.zeros((layout.n_rows, S, B))
    for s in layout.names:
        if scenario.states[s].absorbing:
            static[layout.rows(s), layout.destinations(s, s)] = 1.0
    for sub, dest, x, is_rest in evaluate_rows(np.array([1]), dynamic=False):
        put(static, sub, dest, x[0], is_rest)
    dynamic_rows = [(sub, cells) for _, sub, cells, _, _, d, _ in plan if d]
    if not dynamic_rows:
        return (lambda k: static), pattern

    # Time-dependent rows: evaluated for a block of cycles at once, written cycle by cycle
    # into one buffer (the engine reads each matrix before asking for the next); every cycle
    # writes the same cells, and the other entries of those rows stay zero.
    n_cells = sum((len(cells) + 1) * (1 if isinstance(sub, int) else len(sub))
                  for sub, cells in dynamic_rows)
    block = max(1, min(n_cycles, BLOCK_ELEMENTS // max(1, n_cells * B)))
    buffer = static.copy()
    state: dict = {"first": None, "cells": None}

    def transition_at(k: int) -> np.ndarray:
        first = state["first"]
        if first is None or not first <= k < first + block:
            state["first"] = first = k
            state["cells"] = evaluate_rows(np.arange(k, min(k + block, n_cycles + 1)), True)
        i = k - first
        for sub, dest, x, is_rest in state["cells"]:
            # a cell constant over the block keeps what its first cycle wrote (the cells of
            # a row are distinct, and nothing else writes them)
            if i == 0 or not _constant(x):
                put(buffer, sub, dest, x[i if x.shape[0] > 1 else 0], is_rest)
        return buffer

    return transition_at, pattern


def _block_entries(block) -> list[tuple[str, str, str, Expression]]:
    """(channel kind, field, key, expression) of a payoff block."""
    out = [("cost", "costs", k, e) for k, e in block.costs.items()]
    out += [("utilisation", "utilisation", k, e) for k, e in block.utilisation.items()]
    out += [("clinician_hours", "clinician_hours", k, e) for k, e in block.clinician_hours.items()]
    return out


def _filled(channels: Channels, entries: list, tv_entries: list) -> np.ndarray:
    """The channels a strategy's payoffs can fill: its payoffs' and transition payoffs',
    life years and the occupancy channel (in channel order)."""
    cols = {channels.index("life_years")} | {e[1] for e in entries} | {e[2] for e in tv_entries}
    if channels.occupancy:
        cols.add(channels.index("occupancy"))
    return np.array(sorted(cols), dtype=int)


def _value_entries(scenario: Scenario, sname: str, layout: _Layout, channels: Channels,
                   resource_b: np.ndarray) -> list[tuple]:
    """(state, channel index, kind, expression, path, scale, in-programme-only) of each payoff
    a strategy has in each state."""
    strat = scenario.strategies[sname]
    L = scenario.settings.cycle_length
    # (state, channel index, kind, expression, path, scale, in-programme-only)
    entries: list[tuple] = []
    for state in layout.names:
        merged: dict[tuple, tuple] = {}
        for base, block in ((("payoffs", state), scenario.payoffs.get(state)),
                            (("strategies", sname, "payoffs", state), strat.payoffs.get(state))):
            if block is None:
                continue
            for kind, field_, key, expr in _block_entries(block):
                merged[(kind, key)] = (expr, base + (field_, key))
            if block.utility is not None:
                merged[("utility", "")] = (block.utility, base + ("utility",))
        for (kind, key), (expr, path) in merged.items():
            if kind == "utility":
                entries.append((state, channels.index("qalys"), kind, expr, path, L, False))
            else:
                entries.append((state, channels.index(kind, key), kind, expr, path, 1.0, False))
        if strat.programme is not None and scenario.states[state].alive:
            for kind, field_, key, expr in _block_entries(strat.programme.per_cycle):
                path = ("strategies", sname, "programme", "per_cycle", field_, key)
                entries.append((state, channels.index(kind, key), kind, expr, path, resource_b, True))
    return entries


def _values(scenario: Scenario, sname: str, layout: _Layout, channels: Channels,
            ev: _Evaluator, entries: list[tuple], n_draws: int, cols: np.ndarray | None):
    """``values_at(k)``: ``[row, channel, batch]``, on the channels ``cols`` (in that order)
    or every channel (None)."""
    strat = scenario.strategies[sname]
    src = scenario.source
    L = scenario.settings.cycle_length
    pos = {c: i for i, c in enumerate(cols)} if cols is not None else None
    if pos is not None:
        entries = [(e[0], pos[e[1]]) + e[2:] for e in entries]
    n_channels = len(channels.kind) if cols is None else len(cols)
    alive = np.zeros((layout.n_rows, 1))
    for state in layout.names:
        if scenario.states[state].alive:
            alive[layout.rows(state)] = L
    duration = strat.programme.duration if strat.programme is not None else 0
    homogeneous = not _time_dependent(e[3] for e in entries)
    cache: dict[object, np.ndarray] = {}
    ly = channels.index("life_years")
    ly = ly if pos is None else pos[ly]
    occupied = None
    if channels.occupancy:  # person-time in the states asked for, like life years
        occupied = np.zeros((layout.n_rows, 1))
        for state in channels.occupancy:
            occupied[layout.rows(state)] = L
        oc = channels.index("occupancy")
        oc = oc if pos is None else pos[oc]

    def values_at(k: int) -> np.ndarray:
        in_programme = 1 <= k - ev.clock_offset <= duration
        key = in_programme if homogeneous else k
        if key in cache:
            return cache[key]
        v = np.zeros((layout.n_rows, n_channels, ev.batch))  # [row, channel, batch]
        v[:, ly] = alive
        if occupied is not None:
            v[:, oc] = occupied
        for state, c, kind, expr, path, scale, programme_only in entries:
            if programme_only and not in_programme:
                continue
            sub = layout.rows(state)
            x = ev(expr, k, len(sub), node=True, path=path, combos=True)
            checks.check_payoff(x, kind=kind, source=src, path=path, strategy=sname, state=state,
                                cycle=k, n_draws=n_draws, n_sub=layout.row_labels(state))
            v[sub, c] += x[0] * scale
        if homogeneous:
            cache[key] = v
        return v

    return values_at


def _transition_entries(scenario: Scenario, layout: _Layout, channels: Channels):
    """The transition payoffs' pairs ``(from rows, to rows)`` and entries ``(pair slice, from
    state, channel, kind, expr, path)``; None without transition payoffs."""
    if not scenario.transition_payoffs:
        return None
    pairs_from: list[np.ndarray] = []
    pairs_to: list[np.ndarray] = []
    entries = []  # (pair slice, from state, channel, kind, expr, path)
    n = 0
    for i, tp in enumerate(scenario.transition_payoffs):
        sources = [tp.from_] if tp.from_ else [s for s in layout.names if s != tp.to]
        for frm in sources:
            sub = layout.rows(frm)
            sl = slice(n, n + len(sub))
            n += len(sub)
            pairs_from.append(sub)
            pairs_to.append(layout.to_rows(frm, tp.to))
            for kind, field_, key, expr in _block_entries(tp):
                entries.append((sl, frm, channels.index(kind, key), kind, expr,
                                ("transition_payoffs", i, field_, key)))
            if tp.qalys is not None:
                entries.append((sl, frm, channels.index("qalys"), "qalys", tp.qalys,
                                ("transition_payoffs", i, "qalys")))
    return np.concatenate(pairs_from), np.concatenate(pairs_to), entries


def _transition_values(scenario: Scenario, sname: str, layout: _Layout, found,
                       channels: Channels, ev: _Evaluator, n_draws: int,
                       cols: np.ndarray | None = None) -> TransitionValues | None:
    """One-off payoffs on transitions (``found``: :func:`_transition_entries`), on the
    channels ``cols`` (in that order) or every channel (None)."""
    if found is None:
        return None
    src = scenario.source
    pairs_from, pairs_to, entries = found
    n = len(pairs_from)
    if cols is not None:
        pos = {c: i for i, c in enumerate(cols)}
        entries = [(sl, frm, pos[c], *rest) for sl, frm, c, *rest in entries]
    n_channels = len(channels.kind) if cols is None else len(cols)
    labels = {frm: layout.row_labels(frm) for frm in layout.names}

    def values_at(k: int) -> np.ndarray:
        out = np.zeros((n, n_channels, ev.batch))  # [pair, channel, batch]
        for sl, frm, c, kind, expr, path in entries:
            x = ev(expr, k, sl.stop - sl.start, path=path, combos=True)
            checks.check_payoff(x, kind=kind, source=src, path=path, strategy=sname, state=frm,
                                cycle=k, n_draws=n_draws, n_sub=labels[frm])
            out[sl, c] += x[0]
        return out

    return TransitionValues(pairs_from, pairs_to, values_at)

