"""The value-based price of each programme: the highest programme cost per person at which it
has the highest net monetary benefit, and, from a PSA, the highest at which it does so with a
given probability (the headroom a payer has in a price negotiation).

Let NMB_s = lambda x E_s - C_s, with the programme's own cost P_s inside C_s. Replacing P_s by a
price x changes NMB_s by P_s - x and no other strategy's; so s is optimal at x exactly when
x <= P_s + NMB_s - max_{t != s} NMB_t =: the *value-based price* of s at lambda. Over PSA
draws, s is optimal at x in the draws whose price is at least x; the price at which it is
optimal with probability p is therefore the (1 - p) quantile of the draws' prices. A negative
price means the strategy is not the best even if its programme were free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from vbhc_model import dims

__all__ = ["PROBABILITIES", "value_based_price"]

#: Probabilities of being the best at which the PSA's prices are reported.
PROBABILITIES = (0.5, 0.8)


def value_based_price(costs: np.ndarray, effects: np.ndarray, programme: np.ndarray,
                      wtp: Sequence[float], strategies: Sequence[str],
                      probabilities: Sequence[float] = PROBABILITIES) -> xr.Dataset:
    """Value-based prices by strategy and willingness to pay.

    Parameters
    ----------
    costs, effects, programme : ndarray, shape (draw, strategy)
        Total costs, effects and the programme's own cost (per person, discounted); one draw
        for the base case.
    wtp : sequence of float
    strategies : sequence of str
    probabilities : sequence of float
        With more than one draw, also the price at which each is the best with these
        probabilities.

    Returns
    -------
    xarray.Dataset
        ``programme_cost`` (strategy: the mean), ``price`` (strategy x wtp: on the mean costs
        and effects) and, with draws, ``price_at_probability`` (strategy x wtp x
        probability) and ``p_best_at_current`` (the probability it is the best at its
        current cost).

    Examples
    --------
    >>> import numpy as np
    >>> ds = value_based_price(np.array([[100.0, 600.0]]), np.array([[1.0, 1.02]]),
    ...                        np.array([[0.0, 500.0]]), [50000], ["a", "b"])
    >>> float(ds["price"].sel(strategy="b").item())  # 500 + 50,400 - 49,900
    1000.0
    """
    costs, effects, programme = (np.asarray(x, dtype=float) for x in (costs, effects, programme))
    lam = np.asarray(list(wtp), dtype=float)
    names = [str(s) for s in strategies]

    def caps(c, e, p):  # [..., strategy, wtp]: the price at which each is just the best
        nmb = lam * e[..., None] - c[..., None]
        best_other = np.empty_like(nmb)
        for s in range(nmb.shape[-2]):
            others = np.delete(nmb, s, axis=-2)
            best_other[..., s, :] = others.max(axis=-2)
        return p[..., None] + nmb - best_other

    out = xr.Dataset(
        {"programme_cost": (dims.STRATEGY, programme.mean(axis=0)),
         "price": ((dims.STRATEGY, dims.WTP),
                   caps(costs.mean(axis=0), effects.mean(axis=0), programme.mean(axis=0)))},
        coords={dims.STRATEGY: names, dims.WTP: lam})
    if costs.shape[0] > 1:
        per_draw = caps(costs, effects, programme)  # [draw, strategy, wtp]
        q = np.quantile(per_draw, [1 - p for p in probabilities], axis=0)
        out["price_at_probability"] = ((dims.STRATEGY, dims.WTP, "probability"),
                                       np.moveaxis(q, 0, -1))
        out = out.assign_coords(probability=list(probabilities))
        out["p_best_at_current"] = ((dims.STRATEGY, dims.WTP),
                                    (per_draw >= programme[..., None]).mean(axis=0))
    out["price"].attrs["description"] = (
        "the highest programme cost per person at which the strategy has the highest net "
        "monetary benefit (negative: not the best even if its programme were free)")
    return out
