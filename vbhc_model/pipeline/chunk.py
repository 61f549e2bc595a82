"""One chunk of a PSA: sample its draws from their positions in the per-draw random streams and
simulate them, keeping the per-draw totals. The same function runs in-process and as a task on a
dask cluster (vbhc_model.pipeline.scaleout), so results do not depend on where a chunk runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from vbhc_model import dims
from vbhc_model.defaults import MICROSIM_CHUNK_CELLS, MICROSIM_CHUNK_STATES
from vbhc_model.engines.base import Outputs
from vbhc_model.engines.registry import get_engine
from vbhc_model.errors import VbhcError
from vbhc_model.model.outcomes import PSA_VARIABLES
from vbhc_model.model.stepped import level_names
from vbhc_model.model.trackers import build_trackers
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario.checks import profile_count
from vbhc_model.scenario.schema import Scenario

#: What a chunk keeps: the per-draw totals marked ``psa`` in the table of outcome variables
#: (vbhc_model.model.outcomes), never per-cycle detail or traces.
PSA_OUTPUTS = Outputs(variables=PSA_VARIABLES)


#: A chunk of fewer draws is simulated padded with copies of its last draw, and a draw's
#: result must not depend on the chunk it falls in: for a single draw numpy takes other paths
#: that round differently (a sum over states instead of over draws; ``pow`` where a batch
#: uses ``exp(b log a)``). Batches of 2 to 7 agreed with large chunks bit for bit on the
#: shipped scenarios (session 5); padding them too costs nothing and leaves a margin.
MIN_BATCH = 8


def draws_per_chunk(scenario: Scenario, chunk_size: int) -> int:
    """The draws a PSA simulates at once: ``chunk_size``, cut for a microsimulation so that a
    chunk's patient states (patients x draws x engagement strata, summed over the strategies)
    stay within :data:`vbhc_model.defaults.MICROSIM_CHUNK_STATES` and one cycle's transition
    rows (more with trackers: a row per combination of their values) within
    :data:`vbhc_model.defaults.MICROSIM_CHUNK_CELLS`.

    The microsimulation keeps every patient's current state through all cycles (an engine
    reads each cycle's transitions once), so its memory grows with patients x draws; results
    do not depend on the chunk.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> sc = load_scenario(default_scenario_path())
    >>> draws_per_chunk(sc, 10_000), draws_per_chunk(sc.with_settings(engine="microsim",
    ...                                                             patients=1_000_000), 10_000)
    (10000, 3)
    """
    s = scenario.settings
    if not get_engine(s.engine).individual:
        return chunk_size
    per_draw = columns(scenario)
    sub = sum(state.tunnel for state in scenario.states.values())
    trackers = build_trackers(scenario)
    cells = sub * sub * (trackers.n_combos if trackers is not None else 1) * per_draw
    return max(1, min(chunk_size, MICROSIM_CHUNK_STATES // (s.patients * per_draw),
                      MICROSIM_CHUNK_CELLS // cells))


def chunk_bytes(scenario: Scenario, n_draws: int) -> int:
    """An estimate of the bytes a chunk of ``n_draws`` holds at once: for each batch column
    (strategy x engagement level x attribute profile, :func:`columns`) and draw, one cycle's
    transition matrix (sub-states x sub-states), the occupancy before and after it, and in a
    microsimulation each patient's state, all as 8-byte numbers.

    Examples
    --------
    >>> from vbhc_model.scenario import load_scenario, default_scenario_path
    >>> sc = load_scenario(default_scenario_path())
    >>> chunk_bytes(sc, 10_000) < 2**30
    True
    """
    s = scenario.settings
    sub = sum(state.tunnel for state in scenario.states.values())
    per_column = sub * sub + 2 * sub
    if get_engine(s.engine).individual:
        per_column += s.patients
    return 8 * n_draws * columns(scenario) * per_column


def memory_bytes() -> int | None:
    """This machine's physical memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(scenario: Scenario, n_draws: int) -> None:
    """Refuse, before anything runs, a chunk of ``n_draws`` whose arrays would not fit in
    this machine's memory (:func:`chunk_bytes`), suggesting a ``--chunk-size`` that would.

    Raises
    ------
    VbhcError
        The estimate exceeds the physical memory.
    """
    need, have = chunk_bytes(scenario, n_draws), memory_bytes()
    if have is None or need <= have:
        return
    fits = max(1, int(n_draws * 0.5 * have / need))
    raise VbhcError(
        f"a chunk of {n_draws:,} draws would hold about {need / 2**30:,.1f} GiB at once "
        f"({columns(scenario)} strategy columns x {n_draws:,} draws x "
        f"{chunk_bytes(scenario, 1) // (8 * columns(scenario)):,} numbers each), more than "
        f"this machine's {have / 2**30:,.1f} GiB of memory: run with --chunk-size {fits:,} "
        f"(results do not depend on it)")


def columns(scenario: Scenario) -> int:
    """The engine's batch columns per draw, summed over the strategies: each strategy's
    engagement levels times the population's attribute profiles (every combination of
    levels, or every row of a patient table); a stepped strategy's levels are the
    combinations of its strategies' levels."""
    return profile_count(scenario) * sum(len(level_names(scenario, s))
                                         for s in scenario.strategies)


def simulate_chunk(scenario: Scenario, start: int, n: int, seed: int, method: str,
                   total: int, posteriors: Mapping[Path, Path] | None = None,
                   outputs: Outputs = PSA_OUTPUTS) -> xr.Dataset:
    """Sample draws ``start .. start + n - 1`` and simulate them; keep ``outputs`` (by
    default the per-draw totals). ``posteriors`` replaces posterior files, ``{named: read}``
    (``vbhc update``)."""
    draws = sample_draws(scenario, n, seed=seed, method=method, start=start, total=total,
                         posteriors=posteriors)
    if n < MIN_BATCH:
        padded = draws.isel({dims.DRAW: np.minimum(np.arange(MIN_BATCH), n - 1)})
        out = simulate(scenario, padded, outputs=outputs).isel({dims.DRAW: slice(0, n)})
        out.attrs["n_draws"] = n
    else:
        out = simulate(scenario, draws, outputs=outputs)
    out = out.assign_coords({dims.DRAW: draws[dims.DRAW].values})
    out["parameters"] = xr.DataArray(draws.values, dims=draws.dims, coords=draws.coords,
                                     attrs={"description": "sampled parameter values"})
    return out


