"""Waiting for a programme when clinicians are scarce: the M/M/c queue (Erlang C), and a
fluid backlog when demand exceeds capacity.

A clinician role is a pool of ``c`` parallel places (the patients its FTEs can carry at once:
weekly hours available / weekly hours a patient needs); a patient holds a place for the
programme's duration ``S``; patients arrive at ``lam`` a week. With Poisson arrivals and
exponential holding times this is the M/M/c queue, whose mean wait in the queue is

    W_q = C(c, a) * S / (c - a),   a = lam * S (the offered load, in places),

with C(c, a) Erlang's C formula, the probability that an arriving patient waits (Kleinrock,
Queueing Systems vol. 1, 1975, ch. 3; Gross & Harris, Fundamentals of Queueing Theory). A
programme's fixed duration makes this an M/D/c queue in fact, whose waits are shorter (about
half for one server, the Pollaczek-Khinchine formula); M/M/c is the conservative standard
the plan uses, stated as such. When ``a >= c`` no steady state exists: the queue grows by the
arrivals the places cannot take, a fluid backlog carried from year to year.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["erlang_c", "mmc_wait", "mmc_wait_array"]

#: A load within this relative distance of the servers is taken as reaching them: a plan's
#: load is often exactly a whole number of places (600 patients a year, 8.67 weeks each: 100),
#: and a rounding error below it would give a steady-state wait of 10^14 weeks.
_ROUNDING = 1e-9


def erlang_c(c: int, a: float) -> float:
    """Erlang's C: the probability that an arrival waits, ``c`` servers, offered load ``a``
    (< c). Computed through Erlang's B recursion (stable for large c).

    Examples
    --------
    >>> round(erlang_c(1, 0.5), 12)  # M/M/1: the utilisation
    0.5
    """
    if c < 1:
        raise ValueError("c must be at least 1")
    if not 0 <= a < c:
        raise ValueError(f"the offered load a = {a} must be below c = {c}")
    b = 1.0
    for k in range(1, c + 1):  # Erlang B: B(k) = a B(k-1) / (k + a B(k-1))
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)


def mmc_wait(lam: float, service: float, places: float) -> tuple[float, float, float]:
    """Mean wait in the queue ``W_q``, mean number waiting ``L_q`` and the probability of
    waiting of an M/M/c queue with ``floor(places)`` servers; ``(inf, inf, 1)`` when the
    offered load reaches the servers.

    Parameters
    ----------
    lam : float
        Arrivals per unit of time.
    service : float
        Mean holding time, same unit.
    places : float
        Parallel places (fractions are dropped: a place is a whole patient).

    Examples
    --------
    >>> w, lq, p = mmc_wait(0.5, 1.0, 1)  # M/M/1, rho = 0.5: W_q = rho / (mu - lam) = 1
    >>> round(w, 12), round(lq, 12)
    (1.0, 0.5)
    """
    c = int(math.floor(places + 1e-9))
    a = lam * service
    if lam <= 0:
        return 0.0, 0.0, 0.0
    if c < 1 or a >= c * (1 - _ROUNDING):
        return math.inf, math.inf, 1.0
    p = erlang_c(c, a)
    w = p * service / (c - a)
    return w, lam * w, p


def mmc_wait_array(lam, service, places) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mmc_wait`'s mean wait and probability of waiting, elementwise over arrays
    (draws of a PSA): Erlang's B recursion run once up to the largest number of servers;
    ``inf`` (and probability 1) where the load reaches the servers, 0 without arrivals."""
    lam, service, places = np.broadcast_arrays(*(np.asarray(x, dtype=float)
                                                  for x in (lam, service, places)))
    c = np.floor(places + 1e-9).astype(int)
    a = lam * service
    stable = (c >= 1) & (a < c * (1 - _ROUNDING))
    b = np.ones_like(a)
    for k in range(1, int(c.max(initial=0)) + 1):
        b = np.where(k <= c, a * b / (k + a * b), b)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(c >= 1, a / np.maximum(c, 1), np.inf)
        p = np.where(stable, b / (1 - rho + rho * b), 1.0)
        w = np.where(stable, p * service / (c - a), np.inf)
    none = lam <= 0
    return np.where(none, 0.0, w), np.where(none, 0.0, p)


def _simulate_mmc(lam: float, service: float, c: int, n: int, seed: int = 0) -> float:
    """Mean wait of ``n`` customers of an M/M/c queue, simulated (first come, first served):
    the independent check of :func:`mmc_wait` in the tests."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    holds = rng.exponential(service, n)
    free = np.zeros(c)  # when each server is next free
    waits = np.empty(n)
    for i in range(n):
        k = int(np.argmin(free))
        start = max(arrivals[i], free[k])
        waits[i] = start - arrivals[i]
        free[k] = start + holds[i]
    return float(waits[n // 10:].mean())  # the first tenth is warm-up
