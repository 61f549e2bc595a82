"""Within-cycle corrections and discounting as quadrature terms over the Markov trace.

A cohort model's total of a payoff is an integral over time of (state membership x value x
discount factor). The trace gives membership at the cycle boundaries (rows 0..n); a within-cycle
correction is the quadrature rule that turns those rows into the integral:

- ``none``, ``count_start=False`` (state membership at the end of each cycle): cycle k uses
  row k (DMHEE convention; heemod ``method = "end"``);
- ``none``, ``count_start=True``: cycle k uses row k-1 (heemod ``"beginning"``);
- ``half_cycle``: cycle k uses the mean of rows k-1 and k with cycle k's values (heemod's
  "life-table" method);
- ``trapezoidal``: the trapezoid rule on rows 0..n, each row valued and discounted at its own
  time (Elbasha & Chhatwal, Med Decis Making 2016;36(1):115-131);
- ``simpson``: Simpson's 1/3 rule on rows 0..n (n even), as above (Elbasha & Chhatwal 2016);
- ``weights``: any rule given row by row, weights w_0..w_n (in cycles), as above.

For the cycle-based rules the payoffs of cycle k are discounted at the start, middle or end of
the cycle (``discount_timing``). Discounting is discrete and annual: factor (1 + r)^-t for t in
years (Drummond et al., Methods for the Economic Evaluation of Health Care Programmes, 4th ed.).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("none", "half_cycle", "trapezoidal", "simpson", "weights")
NODE_METHODS = ("trapezoidal", "simpson", "weights")


@dataclass(frozen=True)
class Terms:
    """Quadrature terms: ``weight`` x (trace row ``row`` . values of ``cycle``) at ``time``."""

    row: np.ndarray  # int, trace row 0..n
    cycle: np.ndarray  # int, the cycle whose payoff values apply
    weight: np.ndarray  # float
    time: np.ndarray  # float, years from the start, for discounting


def default_timing(method: str, count_start: bool) -> str:
    """Discount timing used when a scenario does not set one."""
    if method == "none":
        return "start" if count_start else "end"
    return "start" if method == "half_cycle" else "node"


def quadrature_terms(
    n_cycles: int,
    cycle_length: float,
    method: str = "none",
    count_start: bool = False,
    timing: str | None = None,
    weights: np.ndarray | None = None,
) -> Terms:
    """The quadrature terms of a within-cycle correction.

    Parameters
    ----------
    n_cycles : int
        Number of cycles n; the trace has rows 0..n.
    cycle_length : float
        Cycle length in years.
    method : {"none", "half_cycle", "trapezoidal", "simpson", "weights"}
    count_start : bool
        With ``"none"``: cycle k counts row k-1 instead of row k.
    timing : {"start", "middle", "end"}, optional
        When cycle k is discounted, for the cycle-based methods.
    weights : numpy.ndarray, optional
        With ``"weights"``: the weight of each trace row 0..n (n + 1 values, in cycles).

    Returns
    -------
    Terms

    Examples
    --------
    >>> t = quadrature_terms(4, 1.0, "trapezoidal")
    >>> t.weight.tolist()
    [0.5, 1.0, 1.0, 1.0, 0.5]
    """
    n = n_cycles
    k = np.arange(1, n + 1)
    timing = timing or default_timing(method, count_start)
    if method in NODE_METHODS:
        rows = np.arange(n + 1)
        if method == "weights":
            w = np.asarray(weights, dtype=float)
            if w.shape != rows.shape:
                raise ValueError(f"expected {n + 1} weights (trace rows 0..{n}), got {w.size}")
        elif method == "trapezoidal":
            w = np.ones(n + 1)
            w[[0, -1]] = 0.5
        else:
            if n % 2:
                raise ValueError(f"Simpson's 1/3 rule needs an even number of cycles, got {n}")
            w = np.where(rows % 2 == 1, 4.0, 2.0)
            w[[0, -1]] = 1.0
            w /= 3.0
        return Terms(rows, rows, w, rows * cycle_length)
    offset = {"start": 1.0, "middle": 0.5, "end": 0.0}[timing]
    t = (k - offset) * cycle_length
    if method == "none":
        rows = k - 1 if count_start else k
        return Terms(rows, k, np.ones(n), t)
    if method == "half_cycle":
        return Terms(
            np.concatenate([k - 1, k]),
            np.concatenate([k, k]),
            np.full(2 * n, 0.5),
            np.concatenate([t, t]),
        )
    raise ValueError(f"unknown within-cycle correction {method!r}; expected one of {METHODS}")


def transition_times(n_cycles: int, cycle_length: float, method: str, timing: str | None,
                     count_start: bool = False) -> np.ndarray:
    """Discount time (years) of one-off values on the transitions of cycle k = 1..n."""
    k = np.arange(1, n_cycles + 1)
    timing = timing or default_timing(method, count_start)
    offset = {"start": 1.0, "middle": 0.5, "end": 0.0, "node": 0.0}[timing]
    return (k - offset) * cycle_length


def discount_factors(times: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """(1 + r)^-t for each time (rows) and channel rate (columns).

    Examples
    --------
    >>> discount_factors(np.array([0.0, 1.0]), np.array([0.0, 0.06])).round(6).tolist()
    [[1.0, 1.0], [1.0, 0.943396]]
    """
    return (1.0 + np.asarray(rates)[None, :]) ** -np.asarray(times)[:, None]
