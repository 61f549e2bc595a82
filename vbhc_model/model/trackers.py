"""Trackers: a patient's history as whole numbers, without expanding the transition matrix.

A tracker (``trackers:`` in a scenario) is updated each time a patient moves, from the state
it leaves and the state it enters, and expressions in transitions and payoffs may use its
name. Each tracker takes finitely many values (its cap: "N means N or more"), so the
trackers' joint values are finitely many *combinations*; the model layer evaluates every
transition row and payoff once per combination (an axis, as ``time_in_state`` is an axis over
a tunnel's sub-states), and the update rules become one lookup table
``next_combo[combo, from, to]``.

Why not expand the states, as tunnel states do: a Markov model on (state, combination) has a
transition matrix of ``(states x combinations)**2`` cells, almost all zero, since a patient's
next combination is fixed by its combination, its state and its next state. Kept as
``[combination, from, to]`` the rows are ``combinations x states**2`` cells, and the
microsimulation draws a patient's next state from its row and looks its next combination up.
The cohort engine has no patients to carry the combination, so it refuses trackers
(:mod:`vbhc_model.pipeline.simulate`).

The rules, for an ``event: {enter: [states]}`` (entering a listed state from another state;
the starting state is not an event):

- ``time_in_state``: 1 in the first cycle in a state (also the starting state), +1 for each
  further cycle in it, up to ``cap``; values 1..cap.
- ``time_since``: ``never`` until the first event, then 1 in the cycle after it, +1 each
  cycle after, up to ``cap``, back to 1 at each new event; values never, 1..cap.
- ``count``: the events so far, up to ``cap``; values 0..cap.
- ``ever``: 1 from the first event on, else 0.

Combinations are numbered mixed-radix, the first tracker slowest (like
:func:`itertools.product`).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["Trackers", "build_trackers"]


@dataclass(frozen=True)
class Trackers:
    """The trackers of a scenario as arrays.

    Attributes
    ----------
    names : tuple of str
    values : ndarray, shape (combination, tracker)
        What an expression sees for each tracker in each combination.
    start : int
        The combination every patient starts in.
    next_combo : ndarray of int, shape (combination, from state, to state)
        The combination after a move from -> to.
    """

    names: tuple[str, ...]
    values: np.ndarray
    start: int
    next_combo: np.ndarray

    @property
    def n_combos(self) -> int:
        return self.values.shape[0]

    @functools.cached_property
    def _labels(self) -> tuple[str, ...]:
        return tuple(", ".join(f"{n}={v:g}" for n, v in zip(self.names, row))
                     for row in self.values)

    def labels(self) -> tuple[str, ...]:
        """Each combination as text, ``t_sick=2, n_relapse=0`` (for error messages)."""
        return self._labels


def _one(kind: str, cap: int | None, never: float | None, event: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """One tracker: its values by code, and ``next_code[code, from, to]``."""
    n_states = event.shape[0]
    stay = np.eye(n_states, dtype=bool)
    if kind == "time_in_state":
        code = np.arange(cap)[:, None, None]
        return (np.arange(1.0, cap + 1.0),
                np.where(stay, np.minimum(code + 1, cap - 1), 0))
    if kind == "time_since":  # code 0: never; code k >= 1: value k
        code = np.arange(cap + 1)[:, None, None]
        later = np.where(code == 0, 0, np.minimum(code + 1, cap))
        return (np.concatenate([[never], np.arange(1.0, cap + 1.0)]),
                np.where(event, 1, later))
    if kind == "count":
        code = np.arange(cap + 1)[:, None, None]
        return np.arange(cap + 1.0), np.minimum(code + event, cap)
    if kind == "ever":
        code = np.arange(2)[:, None, None]
        return np.array([0.0, 1.0]), np.maximum(code, event).astype(np.int64)
    raise ValueError(f"unknown tracker kind {kind!r}")


def build_trackers(scenario) -> Trackers | None:
    """The scenario's trackers (None without any).

    Examples
    --------
    >>> from vbhc_model.scenario.schema import Tracker
    >>> class S:  # the two fields read here
    ...     states = {"well": None, "sick": None, "dead": None}
    ...     trackers = {"t": Tracker(kind="time_in_state", cap=3),
    ...                 "ill": Tracker(kind="ever", event={"enter": ["sick"]})}
    >>> tr = build_trackers(S())
    >>> tr.n_combos, tr.labels()[tr.start]
    (6, 't=1, ill=0')
    >>> c = tr.next_combo[tr.start, 0, 1]  # well -> sick
    >>> tr.labels()[c], tr.labels()[tr.next_combo[c, 1, 1]]
    ('t=1, ill=1', 't=2, ill=1')
    """
    if not scenario.trackers:
        return None
    states = list(scenario.states)
    n = len(states)
    parts = []
    for tracker in scenario.trackers.values():
        event = np.zeros((n, n), dtype=bool)
        if tracker.event is not None:
            entered = np.isin(states, tracker.event.enter)
            event = entered[None, :] & ~np.eye(n, dtype=bool)  # into a listed state, moving
        parts.append(_one(tracker.kind, tracker.cap, tracker.never, event))
    sizes = [len(v) for v, _ in parts]
    grid = np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)
    radix = np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)
    values = np.column_stack([v[grid[:, i]] for i, (v, _) in enumerate(parts)])
    next_combo = np.zeros((len(grid), n, n), dtype=np.int64)
    for i, (_, step) in enumerate(parts):
        next_combo += step[grid[:, i]] * radix[i]
    return Trackers(tuple(scenario.trackers), values, 0, next_combo)
