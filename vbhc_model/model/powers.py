"""Powers with rows kept between evaluations: ``(cycle - 1) ** g`` and ``cycle ** g`` share rows.

A Weibull or Gompertz hazard evaluated over a block of cycles computes ``v ** g`` for every
cycle value ``v`` and every draw's exponent ``g``; consecutive expressions of one block use
the same cycle values (shifted by one). :class:`PowerMemo` keeps the row ``v ** g`` of each
distinct base value for the exponent array it was computed with, and is passed to
:meth:`vbhc_model.scenario.expressions.Expression.evaluate` as its ``power``. Its values are
those of the language's own rule (:func:`vbhc_model.scenario.expressions.power`): the same
choice of ``exp(b log a)`` or ``pow`` per element, so a draw's value does not depend on
whether a memo was used, on the chunk of draws or on the block of cycles.
"""

from __future__ import annotations

import numpy as np

from vbhc_model.scenario.expressions import exp_log_applies, power, special_base

#: Rows shorter than this are computed, not looked up: the look-up is a Python step per base
#: value, worth it only when a row (the exponent's size, e.g. the draws) is long.
MIN_ROW = 256


class PowerMemo:
    """``a ** b`` that keeps the rows ``v ** b`` of each base value ``v`` while it lives.

    Create one for a block of evaluations and drop it afterwards: the memory is that of the
    rows computed in the block. Exponent arrays are recognised by identity (each is held, so
    its id is not reused while the memo lives); rows are keyed by the base's bit pattern, so
    that -0.0 and 0.0 differ and a nan finds its row.

    Examples
    --------
    >>> import numpy as np
    >>> from vbhc_model.scenario.expressions import parse_expression
    >>> memo = PowerMemo()
    >>> e = parse_expression("(cycle - 1) ** g - cycle ** g")
    >>> env = {"cycle": np.arange(1.0, 4.0)[:, None], "g": np.linspace(0.5, 2.0, 300)}
    >>> bool((e.evaluate(env, power=memo) == e.evaluate(env)).all()), memo.n_rows
    (True, 4)
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[np.ndarray, dict[int, np.ndarray]]] = {}

    @property
    def n_rows(self) -> int:
        """Rows kept, over every exponent array."""
        return sum(len(rows) for _, rows in self._rows.values())

    def __call__(self, a, b):
        """``a ** b`` with the values of :func:`vbhc_model.scenario.expressions.power`."""
        if exp_log_applies(a, b) and b.size >= MIN_ROW and _outer(a, b):
            return self._power_rows(a, b)
        return power(a, b)

    def _power_rows(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a ** b`` row by row of ``a``'s values, from and into the memo."""
        entry = self._rows.get(id(b))
        if entry is None or entry[0] is not b:
            entry = self._rows[id(b)] = (b, {})
        rows = entry[1]
        bp = b.reshape((1,) * (a.ndim - b.ndim) + b.shape)
        axes = [i for i, n in enumerate(a.shape) if n > 1]
        keys = np.ascontiguousarray(a, dtype=np.float64).reshape(-1).view(np.int64).tolist()
        todo = [k for k in dict.fromkeys(keys) if k not in rows]
        if todo:
            values = np.array(todo, dtype=np.int64).view(np.float64)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                block = np.exp(np.multiply.outer(np.log(values), bp))  # every new row at once
                for k, v, special, row in zip(todo, values, special_base(values), block):
                    rows[k] = np.power(v, bp) if special else row
        out = np.empty(np.broadcast_shapes(a.shape, bp.shape))
        keep = [i for i in range(a.ndim) if i not in axes]
        for pos, k in zip(np.ndindex(*[a.shape[i] for i in axes]), keys):
            idx = [slice(None)] * a.ndim
            for ax, p in zip(axes, pos):
                idx[ax] = p
            out[tuple(idx)] = rows[k].reshape([bp.shape[i] for i in keep])
        return out


def _outer(a: np.ndarray, b: np.ndarray) -> bool:
    """True when no axis varies in both ``a`` and ``b`` (b's shape padded on the left)."""
    if b.ndim > a.ndim:
        return False
    pad = (1,) * (a.ndim - b.ndim) + b.shape
    return all(x == 1 or y == 1 for x, y in zip(a.shape, pad))
