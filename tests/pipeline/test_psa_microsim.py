"""A two-level PSA (parameter draws x patients) under the microsimulation: bit-identical
results whatever the chunk of draws and however many dask workers run the chunks (issue 13)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from vbhc_model.defaults import MICROSIM_CHUNK_STATES
from vbhc_model.pipeline.chunk import columns, draws_per_chunk
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.scenario import load_scenario


@pytest.fixture(scope="module")
def thr():
    return load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml").with_settings(
        engine="microsim", patients=300)


@pytest.fixture(scope="module")
def one_chunk(thr):
    return run_psa(thr, 12, chunk_size=12)


def assert_identical(a, b):
    assert set(a.data_vars) == set(b.data_vars)
    for var in a.data_vars:
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)


def test_the_psa_ran_the_microsimulation(thr, one_chunk):
    assert one_chunk.attrs["engine"] == "microsim" and one_chunk.attrs["n_patients"] == 300
    # The same parameter draws as the cohort's PSA, other results (300 patients per draw).
    cohort = run_psa(thr.with_settings(engine="cohort"), 12, chunk_size=12)
    np.testing.assert_array_equal(one_chunk["parameters"].values, cohort["parameters"].values)
    assert (one_chunk["qalys"].values != cohort["qalys"].values).all()


def test_draw_chunks_give_bit_identical_results(thr, one_chunk):
    # Chunks of 5, 5 and 2 (the last simulated padded to MIN_BATCH) and of 1 draw each.
    for chunk in (5, 1):
        assert_identical(one_chunk, run_psa(thr, 12, chunk_size=chunk))


def test_chunks_of_draws_are_cut_to_bound_the_patient_states(thr, one_chunk, monkeypatch):
    # THR: 2 strategies x 300 patients per draw; room for 5 draws' states.
    monkeypatch.setattr("vbhc_model.pipeline.chunk.MICROSIM_CHUNK_STATES", 5 * 2 * 300 + 599)
    cut = run_psa(thr, 12, chunk_size=12)
    assert cut.attrs["chunk_size"] == 5
    assert_identical(one_chunk, cut)
    # The cohort keeps the chunk it is given.
    assert run_psa(thr.with_settings(engine="cohort"), 12, chunk_size=12).attrs["chunk_size"] == 12


def test_a_chunk_counts_every_column_of_a_draw():
    # A population's attribute profiles and the strategies' engagement levels are columns.
    sc = load_scenario(Path(__file__).parents[1] / "data" / "population" / "two_attributes.yaml")
    profiles = np.prod([len(a.levels) for a in sc.population.attributes.values()])
    levels = sum(len(st.engagement or ()) or 1 for st in sc.strategies.values())
    assert profiles > 1 and columns(sc) == profiles * levels
    micro = sc.with_settings(engine="microsim", patients=1_000)
    assert draws_per_chunk(micro, 10**6) == MICROSIM_CHUNK_STATES // (1_000 * columns(sc))


@pytest.mark.slow
def test_one_or_two_dask_workers_give_bit_identical_results(thr, one_chunk):
    one = run_psa(thr, 12, chunk_size=5, workers=1)
    two = run_psa(thr, 12, chunk_size=5, workers=2)
    assert two.attrs["execution"] == "dask (LocalCluster, 2 workers)"
    assert two.attrs["engine"] == "microsim" and two.attrs["n_patients"] == 300
    assert_identical(one_chunk, one)
    assert_identical(one_chunk, two)


def test_the_run_seed_keys_the_patient_streams_as_well_as_the_sampling(thr, one_chunk):
    """--seed 7 is the scenario with settings.seed 7: the same draws and the same patients,
    in process and on a worker; and other patients than the file's seed."""
    from vbhc_model.pipeline.scaleout import run_task

    seeded = run_psa(thr, 12, chunk_size=5, seed=7)
    assert seeded.attrs["seed"] == 7
    assert_identical(seeded, run_psa(thr.with_settings(seed=7), 12, chunk_size=12))
    src = thr.source
    task = run_task(src.text, src.file, 0, 5, 7, "mc", 12, None, ("microsim", 300))
    for var in ("total_cost", "qalys"):
        np.testing.assert_array_equal(task[var].values, seeded[var].values[:5], err_msg=var)
    # the base case of a run with --seed 7 meets the patients of settings.seed 7
    from vbhc_model.parameters import base_draws
    from vbhc_model.pipeline.run import run
    from vbhc_model.pipeline.simulate import simulate

    base = run(thr, draws=12, chunk_size=12, seed=7).outcomes
    expected = simulate(thr.with_settings(seed=7), base_draws(thr))
    other = simulate(thr, base_draws(thr))
    np.testing.assert_array_equal(base["qalys"].values, expected["qalys"].values)
    assert (base["qalys"].values != other["qalys"].values).all()
