"""Engines by name: what a scenario's ``settings.engine`` chooses.

A new engine is a new module with a class satisfying :class:`vbhc_model.engines.base.Engine`
and one entry here (and in the ``settings.engine`` choices of the scenario schema).
"""

from __future__ import annotations

from vbhc_model.engines.base import Engine
from vbhc_model.engines.cohort import CohortEngine
from vbhc_model.engines.microsim import MicrosimEngine

#: Engine name -> engine.
ENGINES: dict[str, Engine] = {"cohort": CohortEngine(), "microsim": MicrosimEngine()}


def get_engine(name: str) -> Engine:
    """The engine called ``name``.

    Raises
    ------
    ValueError
        No engine has that name (a scenario's value is checked by its schema first).

    Examples
    --------
    >>> get_engine("cohort").name
    'cohort'
    """
    try:
        return ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; expected one of {sorted(ENGINES)}") from None
