"""What every engine is given and what it returns: plain numpy data, no scenario, no labels.

An engine turns :class:`EngineInputs` (a starting distribution, the transitions of cycles
1..n, the payoff values of each cycle, and the quadrature and discounting of
:mod:`vbhc_model.engines.corrections`) into an :class:`EngineResult` (per-batch totals and,
when :class:`Outputs` asks for them, per-cycle detail and the state trace). The batch axis
holds draws (and engagement strata); the model layer builds the inputs and the pipeline
labels the result, so an engine never sees a Scenario or an xarray object.

Inputs are *batch-last* (``[state, batch]``, ``[from, to, batch]``,
``[state, channel, batch]``), results *batch-first* (``[batch, ...]``); see
:mod:`vbhc_model.engines.cohort` for why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vbhc_model.engines.corrections import Terms


@dataclass(frozen=True)
class TransitionValues:
    """One-off values on transitions: ``values_at(k)[pair, channel, b]`` for the pairs
    ``(from_index[pair], to_index[pair])``, accrued on the flow of cycle k.

    ``cycles``, when given, are the only cycles whose flows may carry values (a switch of
    stepped care happens in one cycle): the engines neither ask for the values nor form the
    flows in the other cycles. None: every cycle.
    """

    from_index: np.ndarray
    to_index: np.ndarray
    values_at: Callable[[int], np.ndarray]
    cycles: frozenset[int] | None = None

    def carries(self, k: int) -> bool:
        """Whether cycle k's flows may carry values."""
        return self.cycles is None or k in self.cycles


@dataclass(frozen=True)
class Outputs:
    """Which outcomes a run keeps.

    Attributes
    ----------
    trace : bool
        Keep the state trace (every row 0..n).
    per_cycle : bool
        Keep the payoffs of each cycle (discounted and undiscounted).
    variables : tuple of str, optional
        Names of the outcome variables to return (see ``vbhc_model.model.outcomes.OUTCOMES``);
        None returns every variable the run computes. Per-cycle variables and the trace are
        computed only when ``per_cycle`` / ``trace`` ask for them.
    mcse : int
        An individual engine also returns the totals of this many blocks of its patients
        (:attr:`EngineResult.blocks`), from which the Monte Carlo standard errors follow
        (0: none).
    paths : bool
        Keep each patient's state after each cycle (an individual engine's
        ``EngineResult.paths``; the cohort has no patients and ignores it).
    rows : tuple of int
        Keep these rows of the trace only (``EngineResult.rows``; the cohort; stepped care
        reads the row at a switch without keeping the whole trace).
    periods : int
        Also total the payoffs by periods of this many years (1: calendar years of the model,
        for a service plan; 0: none); ``EngineResult.by_period``.
    occupancy : tuple of str
        Also total the person-time in these states (the channel ``occupancy``, in years, like
        life years: a service plan's responders); empty: no such channel.

    Examples
    --------
    >>> Outputs(trace=True).per_cycle
    False
    >>> Outputs(variables=("qalys", "total_cost")).variables
    ('qalys', 'total_cost')
    """

    trace: bool = False
    per_cycle: bool = False
    variables: tuple[str, ...] | None = None
    mcse: int = 0
    paths: bool = False
    rows: tuple[int, ...] = ()
    periods: float = 0
    occupancy: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.variables is not None:
            if isinstance(self.variables, str):
                raise TypeError("Outputs.variables is a tuple of names, not one string")
            object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "occupancy", tuple(self.occupancy))


@dataclass(frozen=True)
class PatientStreams:
    """What defines a microsimulation's patients: their number and their random streams.

    Attributes
    ----------
    seed : int
        The Philox key (the scenario's ``settings.seed``), 0 <= seed < 2**128.
    draw_index : ndarray of int, shape (batch,)
        The global draw index of each batch column (strata of one draw share it).
    n_patients : int
        Patients per batch column.
    first_patient : ndarray of int, shape (batch,), optional
        The index of each column's first patient (its patients are ``first_patient[b] ..
        first_patient[b] + n_patients - 1``); default 0. Columns of one draw with the same
        first patient meet the same patients (the engagement strata of one draw); patients
        with other attributes are other patients.
    uniforms : ndarray of float, optional
        Uniforms in [0, 1) that replace the Philox streams (a replay of another run):
        ``[patient, cycle 0..n]``, the same for every batch column, or
        ``[table, patient, cycle 0..n]``, where a column of global draw index d reads table d.
        Column 0 draws the starting state, column k the transition of cycle k.
    """

    seed: int
    draw_index: np.ndarray
    n_patients: int
    first_patient: np.ndarray | None = None
    uniforms: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.n_patients < 1:
            raise ValueError(f"n_patients must be >= 1, got {self.n_patients}")
        draw_index = np.asarray(self.draw_index, dtype=np.int64)
        object.__setattr__(self, "draw_index", draw_index)
        first = (np.zeros_like(draw_index) if self.first_patient is None
                 else np.asarray(self.first_patient, dtype=np.int64))
        if first.shape != draw_index.shape or (first < 0).any():
            raise ValueError("first_patient must be >= 0, one per column of draw_index")
        object.__setattr__(self, "first_patient", first)
        if self.uniforms is not None:
            u = np.asarray(self.uniforms, dtype=np.float64)
            need = int(first.max()) + self.n_patients if first.size else self.n_patients
            if u.ndim not in (2, 3) or u.shape[-2] < need:
                raise ValueError(f"uniforms must be [patient, cycle] or [table, patient, cycle] "
                                 f"with {need} patients, got shape {u.shape}")
            if not ((u >= 0.0) & (u < 1.0)).all():
                raise ValueError("uniforms must lie in [0, 1)")
            object.__setattr__(self, "uniforms", u)


@dataclass(frozen=True)
class EngineInputs:
    """Everything an engine needs to run one strategy, as plain arrays.

    Attributes
    ----------
    start : ndarray, shape (state, batch)
        Starting distribution (row 0 of the trace).
    transitions : callable or iterable
        The ``[from, to, batch]`` transition matrices of cycles 1..n, rows summing to one:
        either ``transitions(k)`` for k = 1..n, asked for in cycle order, or a one-pass
        iterable yielding them in cycle order. An engine reads each matrix before asking for
        the next, so it may be one buffer refilled each cycle.
    values : callable
        ``values(k)`` -> ``[state, channel, batch]`` payoff per cycle in each state for cycle
        k (k = 0..n, as the terms require). Returning the *same array object* for successive
        cycles says the values have not changed (see
        :class:`vbhc_model.engines.accumulate.Accumulator`).
    terms : Terms
        Quadrature terms of the within-cycle correction.
    discount : ndarray, shape (term, channel)
        Discount factor of each term for each channel.
    n_cycles : int
    transition_values : TransitionValues, optional
        One-off payoffs on transitions.
    transition_discount : ndarray, shape (cycle, channel), optional
        Discount factors of cycle k's transitions (row k-1); needed with
        ``transition_values``.
    patients : PatientStreams, optional
        The patients of a microsimulation (their number and random streams); the cohort
        ignores it.
    next_row : ndarray of int, shape (row, to), optional
        Trackers (a patient's history, :mod:`vbhc_model.model.trackers`): the rows of
        ``start``, ``values`` and the transitions' ``from`` axis are (state, combination of
        tracker values), so the transitions are ``[row, to, batch]`` with ``to`` the states,
        and a patient in row r who moves to state j is then in row ``next_row[r, j]``; the
        transition values' pairs are (row, row). Only an individual engine can carry the
        combination; the cohort refuses it.
    pattern : ndarray of bool, shape (from, to), optional
        The cells of the transition matrices that can be non-zero in any cycle; an engine may
        skip the others (the cohort does, when at most half the cells can be non-zero:
        stepped care's arms are blocks of one matrix). None: any cell.
    """

    start: np.ndarray
    transitions: Callable[[int], np.ndarray] | Iterable[np.ndarray]
    values: Callable[[int], np.ndarray]
    terms: Terms
    discount: np.ndarray
    n_cycles: int
    transition_values: TransitionValues | None = None
    transition_discount: np.ndarray | None = None
    patients: PatientStreams | None = None
    next_row: np.ndarray | None = None
    pattern: np.ndarray | None = None
    #: Each cycle's period (``Outputs.periods``), cycle 0..n; None: no periods.
    period_of: np.ndarray | None = None

    def transition_at(self) -> Callable[[int], np.ndarray]:
        """The transitions as a function of the cycle, asked for in order 1..n."""
        if callable(self.transitions):
            return self.transitions
        return _in_order(iter(self.transitions), self.n_cycles)


def _in_order(matrices: Iterator[np.ndarray], n_cycles: int) -> Callable[[int], np.ndarray]:
    expected = [1]

    def transition_at(k: int) -> np.ndarray:
        if k != expected[0]:
            raise ValueError(f"transitions are a one-pass iterator: asked for cycle {k}, "
                             f"expected cycle {expected[0]}")
        try:
            p = next(matrices)
        except StopIteration:
            raise ValueError(f"the transitions ended before cycle {k} of {n_cycles}") from None
        expected[0] += 1
        return p

    return transition_at


@dataclass(frozen=True)
class EngineResult:
    """Accumulated outcomes, each ``[batch, channel]``, plus optional detail."""

    discounted: np.ndarray
    undiscounted: np.ndarray
    by_cycle: np.ndarray | None = None  # [batch, cycle 0..n, channel], discounted
    by_cycle_undiscounted: np.ndarray | None = None
    trace: np.ndarray | None = None  # [batch, row 0..n, state]
    paths: np.ndarray | None = None  # [batch, row 0..n, patient], an individual engine's
    #: An individual engine's totals of contiguous blocks of each column's patients
    #: (``Outputs.mcse``): discounted and undiscounted ``[block, batch, channel]``, and the
    #: patients in each block.
    blocks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: The trace rows ``Outputs.rows`` asked for: row -> ``[state, batch]``.
    rows: dict[int, np.ndarray] | None = None
    #: The undiscounted totals by period (``Outputs.periods``), ``[batch, period, channel]``.
    by_period: np.ndarray | None = None


class Engine(Protocol):
    """A simulation engine: runs one strategy's inputs and accumulates its payoffs.

    Attributes
    ----------
    name : str
        The name a scenario's ``settings.engine`` gives (and the ``engine`` provenance attr).
    individual : bool
        Whether it simulates individual patients (and so needs ``EngineInputs.patients``).
    """

    name: str
    individual: bool

    def run(self, inputs: EngineInputs, outputs: Outputs) -> EngineResult:
        """Run the model over ``inputs.n_cycles`` cycles.

        Parameters
        ----------
        inputs : EngineInputs
        outputs : Outputs
            ``trace`` and ``per_cycle`` say which detail to keep; ``variables`` is applied
            by the caller when it labels the result.

        Returns
        -------
        EngineResult
        """
        ...
