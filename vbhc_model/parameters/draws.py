"""Parameter draws: the values of a scenario's free parameters, one row per draw.

A *free* parameter has a constant value (and, in a PSA, a distribution); a *derived* parameter
is an expression of others and is evaluated from the draws, per strategy, because a strategy
may set its own value of any parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.scenario.checks import parameter_order
from vbhc_model.scenario.schema import Scenario, Table


def free_parameters(scenario: Scenario) -> list[str]:
    """Names of the parameters whose value is a constant, in file order."""
    return [name for name, p in scenario.parameters.items() if p.value.is_constant]


def uncertain(scenario: Scenario) -> list[str]:
    """The free parameters that vary between PSA draws: a distribution other than fixed, a
    joint group, a posterior or a samples file."""
    joint = {n for g in scenario.joint.values() for n in g.parameters}
    return [n for n in free_parameters(scenario)
            if n in joint or scenario.parameters[n].posterior is not None
            or scenario.parameters[n].samples is not None
            or (scenario.parameters[n].distribution is not None
                and scenario.parameters[n].distribution.type != "fixed")]


def base_draws(scenario: Scenario, n_draws: int = 1) -> xr.DataArray:
    """The base values of the free parameters, repeated for ``n_draws`` draws.

    The deterministic base case is one draw; many identical draws are used to measure the
    engine's speed with the same path the probabilistic analysis takes.

    Parameters
    ----------
    scenario : Scenario
    n_draws : int, default 1

    Returns
    -------
    xarray.DataArray
        Dims ``(draw, parameter)``.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> draws = base_draws(load_scenario(default_scenario_path()), 3)
    >>> draws.sizes["draw"]
    3
    """
    names = free_parameters(scenario)
    values = np.array(
        [float(scenario.parameters[n].value.evaluate({})) for n in names], dtype=float
    )
    data = np.broadcast_to(values, (n_draws, len(names))).copy()
    return xr.DataArray(
        data,
        dims=(dims.DRAW, dims.PARAMETER),
        coords={dims.DRAW: np.arange(n_draws), dims.PARAMETER: names},
        name="parameters",
        attrs={"kind": "base values"},
    )


def table_functions(scenario: Scenario) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The scenario's lookup tables as functions usable in expressions."""
    return {name: _table_function(t) for name, t in scenario.tables.items()}


def _table_function(table: Table) -> Callable[[np.ndarray], np.ndarray]:
    x = np.asarray(table.x, dtype=float)
    y = np.asarray(table.y, dtype=float)
    if table.kind == "linear":
        return lambda v: np.interp(v, x, y)

    def step(v: np.ndarray) -> np.ndarray:
        # The y of the largest x <= v; values below x[0] take y[0].
        idx = np.searchsorted(x, np.asarray(v, dtype=float), side="right") - 1
        return y[np.clip(idx, 0, len(y) - 1)]

    return step


def resolve_parameters(
    scenario: Scenario, draws: xr.DataArray, strategy: str | None = None,
    extra: Mapping[str, Any] | None = None, *, compact: bool = False,
) -> dict[str, np.ndarray]:
    """Every parameter's values, shape ``(n_draws,)``, as seen by one strategy.

    Free parameters come from ``draws``; derived ones are evaluated in dependency order; a
    strategy's own ``parameters:`` replace the shared definitions.

    With ``compact``, a parameter that no PSA varies (no distribution, posterior or samples
    file: :func:`uncertain`) and whose column is the same in
    every draw of ``draws`` has shape ``(1,)``, and so has a derived parameter computed from
    such parameters only: expressions of them (``cycle <= programme_months``) are then
    evaluated once, not once per draw. The choice depends on the scenario, not on the
    chunk's values, so a draw's arithmetic is the same in every chunk of a PSA; a column an
    analysis varies (a DSA's) is not constant and keeps its draws.

    Parameters
    ----------
    scenario : Scenario
    draws : xarray.DataArray
        Dims ``(draw, parameter)``, as from :func:`base_draws`.
    strategy : str, optional
        Apply this strategy's parameter values.
    extra : mapping of str to Expression, optional
        Values on top of the strategy's (a stepped-care step's ``parameters``).

    Returns
    -------
    dict of str to numpy.ndarray
    """
    overrides = dict(scenario.strategies[strategy].parameters) if strategy else {}
    overrides.update(extra or {})
    functions = table_functions(scenario)
    n_draws = draws.sizes[dims.DRAW]
    matrix = draws.transpose(dims.DRAW, dims.PARAMETER).values
    given: Mapping[str, np.ndarray] = {
        str(p): matrix[:, i] for i, p in enumerate(draws[dims.PARAMETER].values)
    }
    if compact:
        varied = set(uncertain(scenario))
        given = {n: v[:1] if n not in varied and (v == v[0]).all() else v
                 for n, v in given.items()}
    values: dict[str, np.ndarray] = {}
    for name in parameter_order(scenario):
        if name in overrides:
            expr = overrides[name]
        elif name in given:
            values[name] = given[name]
            continue
        else:
            expr = scenario.parameters[name].value
        result = np.asarray(expr.evaluate(values, functions), dtype=float)
        size = 1 if compact and result.size == 1 else n_draws
        values[name] = np.broadcast_to(result, (size,)).copy()
    return values
