"""``vbhc run --patient-file`` (``settings.patient_output``): each patient's states and totals,
written as patients.nc, whose means are the run's totals."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from tests.engines.test_replay import UNIFORMS
from tests.pipeline.test_replay import HAND, write_csv
from vbhc_model import api
from vbhc_model.cli import app
from vbhc_model.pipeline.run import MAX_PATIENT_STATES

runner = CliRunner()

#: A tunnel state, one-off values on transitions (from one state, and from any), a service
#: costed per unit, the half-cycle correction and discounting: what a patient's totals add up.
TUNNELS = """\
metadata: {title: t, currency: USD, price_year: 2025, perspective: payer, country: US}
settings:
  cycle_length: 1 year
  n_cycles: 6
  discount: {costs: 0.03, effects: 0.05}
  within_cycle_correction: half_cycle
  start: {well: 1}
  wtp: [50000]
  engine: microsim
  patients: 300
  patient_output: true
parameters:
  p_sick: {value: 0.3, source: test}
services:
  visit: {unit_cost: 40, category: care}
states:
  well: {}
  sick: {tunnel: 3}
  dead: {absorbing: true, alive: false}
transitions:
  well: {sick: p_sick, dead: 0.05, well: complement}
  sick: {dead: 0.1 * time_in_state, well: 0.2, sick: complement}
payoffs:
  well: {utility: 0.9}
  sick: {utility: 0.6, costs: {care: 100 * time_in_state}, utilisation: {visit: 2}}
transition_payoffs:
  - {from: well, to: sick, costs: {care: 500}, qalys: -0.01}
  - {to: dead, costs: {end_of_life: 1000}}
strategies:
  a: {}
  b:
    parameters: {p_sick: 0.2}
"""

TOTALS = ("total_cost", "qalys", "life_years")


def check_means(result):
    """The mean over patients of each total is the run's, to rounding."""
    patients, outcomes = result.patients, result.outcomes.isel(draw=0)
    for var in TOTALS:
        for name in (var, f"{var}_undiscounted"):
            expected = (outcomes[name] if name in outcomes
                        else outcomes["costs_undiscounted"].sum("category"))
            np.testing.assert_allclose(patients[name].mean("patient"), expected,
                                       rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("path, patients", [
    # engagement levels, unit costs, half-cycle (the default scenario has a population:
    # section, and a per-patient file with one is not there yet)
    (SCENARIOS / "pain_course_au.yaml", 400),
    (SCENARIOS / "reference" / "thr_dmhee.yaml", 400),
])
def test_the_mean_over_patients_is_the_runs_total(path, patients):
    result = api.run_scenario(path, engine="microsim", patients=patients, patient_file=True,
                              trace=True)
    check_means(result)
    # the states: for a strategy without engagement levels, the share of patients in each
    # state after each cycle is the trace
    ds, trace = result.patients, result.outcomes["trace"].isel(draw=0)
    for sname, strat in result.scenario.strategies.items():
        if strat.engagement:
            continue
        path = ds["path"].sel(strategy=sname, level="all")
        shares = np.stack([(path == i).mean("patient") for i in range(ds.sizes["state"])], -1)
        np.testing.assert_allclose(shares, trace.sel(strategy=sname), rtol=0, atol=1e-15)


def test_tunnels_and_one_off_values_on_transitions_add_up_per_patient(tmp_path):
    (tmp_path / "t.yaml").write_text(TUNNELS)
    result = api.run_scenario(tmp_path / "t.yaml")
    check_means(result)
    ds = result.patients
    assert list(ds["state"].values) == ["well", "sick", "dead"]  # sub-states collapsed
    assert ds["path"].dtype == np.int8 and ds.sizes == {
        "strategy": 2, "level": 1, "patient": 300, "cycle": 7, "state": 3}
    # a patient who dies pays the end-of-life cost once
    died = (ds["path"].isel(level=0, cycle=-1) == 2)
    assert bool(died.any()) and bool((~died).any())
    assert float(ds["total_cost_undiscounted"].where(died).min()) >= 1000


def test_the_per_patient_file_of_the_hand_example(tmp_path):
    write_csv(tmp_path / "u.csv", UNIFORMS)
    (tmp_path / "hand.yaml").write_text(HAND)
    out = tmp_path / "res"
    result = runner.invoke(app, ["run", str(tmp_path / "hand.yaml"), "--patient-file",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "patients.nc" in result.output
    with xr.open_dataset(out / "patients.nc") as ds:
        # by hand (tests/engines/test_replay.py): healthy 0, sick 1, dead 2
        assert ds["path"].isel(level=0).values.tolist() == [
            [[0, 0, 2], [1, 1, 2], [0, 1, 1], [1, 2, 2]],   # usual care
            [[0, 0, 2], [1, 1, 2], [0, 0, 0], [1, 2, 2]],   # treatment
        ]
        assert ds["path"].attrs["flag_meanings"] == "healthy sick dead"
        # undiscounted scenario: cost 100 a cycle healthy, 1000 sick; QALYs 1, 0.5
        for name in ("total_cost", "total_cost_undiscounted"):
            assert ds[name].values.tolist() == [[100, 1000, 2000, 0], [100, 1000, 200, 0]]
        assert ds["qalys"].values.tolist() == [[1, 0.5, 1, 0], [1, 0.5, 2, 0]]
        assert ds["life_years"].values.tolist() == [[1, 1, 2, 0], [1, 1, 2, 0]]
        assert ds.attrs["n_patients"] == 4 and ds.attrs["engine"] == "microsim"
    # replacing it with --force: patients.nc is a file vbhc writes
    again = runner.invoke(app, ["run", str(tmp_path / "hand.yaml"), "--out", str(out),
                                "--force"])
    assert again.exit_code == 0, again.output
    assert not (out / "patients.nc").exists()


def test_the_cohort_writes_no_per_patient_file(tmp_path):
    result = runner.invoke(app, ["run", "--patient-file", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "settings.engine: 'cohort' has no individual patients, so it writes no " \
           "per-patient file" in result.output
    assert not (tmp_path / "r").exists()


def test_a_per_patient_file_too_large_is_refused_before_any_work(tmp_path):
    # the Pain Course: 37 cycles x 2 strategies x 4 engagement levels (with 'all')
    n = MAX_PATIENT_STATES // (37 * 2 * 4) + 1
    result = runner.invoke(app, ["run", str(SCENARIOS / "pain_course_au.yaml"), "--engine",
                                 "microsim", "--patients", str(n), "--patient-file", "--out",
                                 str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert (f"--patient-file (settings.patient_output): {n:,} patients x 37 cycles (0..36) x 2 "
            f"strategies x 4 engagement levels is {n * 296:,} patient-states, more than the "
            f"50,000,000 a per-patient file may hold: run at most {n - 1:,} patients"
            ) in result.output
    assert not (tmp_path / "r").exists()
