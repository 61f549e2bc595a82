"""``settings.uniforms`` and ``vbhc run --uniforms``: a run replaying supplied uniforms, end to
end, and every mistake in a uniforms file as a message with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from tests.engines.test_replay import UNIFORMS
from vbhc_model import api
from vbhc_model.cli import app
from vbhc_model.engines.microsim import patient_uniforms
from vbhc_model.scenario import load_scenario

runner = CliRunner()

#: The hand-computed example of tests/engines/test_replay.py as a scenario, undiscounted (so
#: every total is a sum of quarters and exact).
HAND = """\
metadata: {title: replay, currency: USD, price_year: 2025, perspective: payer, country: US}
settings:
  cycle_length: 1 year
  n_cycles: 2
  discount: {costs: 0, effects: 0}
  start: {healthy: 0.5, sick: 0.5}
  wtp: [50000]
  engine: microsim
  uniforms: u.csv
states:
  healthy: {}
  sick: {}
  dead: {absorbing: true, alive: false}
transitions:
  healthy: {sick: 0.2, dead: 0.1, healthy: complement}
  sick: {dead: 0.4, sick: complement}
payoffs:
  healthy: {utility: 1, costs: {care: 100}}
  sick: {utility: 0.5, costs: {care: 1000}}
strategies:
  usual: {}
  treat:
    transitions:
      healthy: {sick: 0.1, dead: 0.1, healthy: complement}
"""


def write_csv(path, table, header="cycle_0,cycle_1,cycle_2"):
    path.write_text(header + "\n" + "".join(",".join(map(repr, map(float, row))) + "\n"
                                            for row in table))
    return path


@pytest.fixture
def hand(tmp_path):
    write_csv(tmp_path / "u.csv", UNIFORMS)
    path = tmp_path / "hand.yaml"
    path.write_text(HAND)
    return path


def test_a_scenario_replays_its_uniforms_file_exactly(hand, tmp_path):
    # Paths by hand (tests/engines/test_replay.py): usual care H H D, S S D, H S S, S D D;
    # treatment H H D, S S D, H H H, S D D. Costs per cycle 100 (H), 1000 (S), QALYs 1, 0.5:
    # usual care costs 100 + 1000 + 2000 + 0 = 3100 / 4 patients, QALYs 1 + 0.5 + 1 + 0;
    # treatment costs 100 + 1000 + 200 + 0 = 1300 / 4, QALYs 1 + 0.5 + 2 + 0.
    out = tmp_path / "res"
    result = runner.invoke(app, ["run", str(hand), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(out / "outcomes.nc") as ds:
        assert ds["total_cost"].values.tolist() == [[775.0, 325.0]]
        assert ds["qalys"].values.tolist() == [[0.625, 0.875]]
        # the number of patients is the file's rows (settings.patients not given)
        assert ds.attrs["n_patients"] == 4 and ds.attrs["uniforms"] == str(tmp_path / "u.csv")


def test_the_command_line_names_a_uniforms_file(hand, tmp_path, monkeypatch):
    # --uniforms is relative to the working directory; a .npy holds the same table
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "mine.npy", UNIFORMS)
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = runner.invoke(app, ["run", str(hand), "--uniforms", "mine.npy", "--engine",
                                 "microsim", "--patients", "4", "--out", "res"])
    assert result.exit_code == 0, result.output
    with xr.open_dataset(tmp_path / "elsewhere" / "res" / "outcomes.nc") as ds:
        assert ds["total_cost"].values.tolist() == [[775.0, 325.0]]


def test_every_psa_draw_replays_the_same_table(hand):
    # No parameter has a distribution: every draw is the base case, with the same uniforms.
    res = api.run_scenario(hand, draws=3)
    assert res.psa["total_cost"].values.tolist() == [[775.0, 325.0]] * 3


def test_a_table_per_draw_of_the_engines_own_streams_replays_its_psa_bit_for_bit(tmp_path):
    path = SCENARIOS / "reference" / "thr_dmhee.yaml"
    sc = load_scenario(path)
    n, n_draws = 40, 3
    table = np.stack([np.stack([patient_uniforms(sc.settings.seed, d, k, 0, n)
                                for k in range(sc.settings.n_cycles + 1)], axis=1)
                      for d in range(n_draws)])
    np.save(tmp_path / "philox.npy", table)
    normal = api.run_scenario(path, draws=n_draws, engine="microsim", patients=n)
    replayed = api.run_scenario(path, draws=n_draws, engine="microsim",
                                uniforms=tmp_path / "philox.npy")
    for var in ("total_cost", "qalys", "life_years"):
        assert np.array_equal(normal.psa[var].values, replayed.psa[var].values), var
        assert np.array_equal(normal.outcomes[var].values, replayed.outcomes[var].values), var


def errors_of(args) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("content, expected", [
    ("cycle_0,cycle_1,cycle_2\n0.1,0.5,0.9\n0.2,abc,0.3\n",
     "u.csv, line 3, column 'cycle_1': 'abc' is not a number"),
    ("cycle_0,cycle_1,cycle_2\n0.1,0.5,0.9\n0.2,,0.3\n",
     "u.csv, line 3, column 'cycle_1': empty cell, expected a number"),
    ("cycle_0,cycle_1,cycle_2\n0.1,0.5,1.0\n", "u.csv, line 2, column 'cycle_2': 1.0 is "
                                                "outside [0, 1)"),
    ("cycle_0,cycle_1,cycle_2\n-0.5,0.5,0.3\n", "line 2, column 'cycle_0': -0.5 is outside"),
    ("cycle_0,cycle_1,cycle_2\n0.1,nan,0.3\n", "line 2, column 'cycle_1': NaN is not a uniform"),
    ("cycle_0,cycle_1\n0.1,0.5\n", "u.csv: 2 columns; 2 cycles need 3, one per cycle 0..2"),
    ("cycle_0,cycle_1,cycle_2\n0.1,0.5,0.3\n0.1,0.5\n", "u.csv, line 3: 2 values; the header "
                                                        "(line 1) has 3 columns"),
    ("0.1,0.5,0.3\n0.1,0.5,0.2\n", "u.csv, line 1: holds numbers; the first line is a header"),
    ("cycle_0,cycle_1,cycle_2\n", "u.csv: no rows, only a header"),
])
def test_a_bad_uniforms_file_is_a_located_error(hand, tmp_path, content, expected):
    (tmp_path / "u.csv").write_text(content)
    for args in (["run", str(hand)], ["validate", str(hand)]):
        output = errors_of(args + ["--out", str(tmp_path / "r")] if args[0] == "run" else args)
        # the scenario's key and line, then the uniforms file's own location
        assert "hand.yaml, line 9: settings.uniforms: " in output
        assert expected in output


def test_a_missing_or_bad_command_line_file_is_an_error(hand, tmp_path):
    out = ["--out", str(tmp_path / "r")]
    assert "nope.csv: uniforms file not found" in errors_of(
        ["run", str(hand), "--uniforms", str(tmp_path / "nope.csv")] + out)
    np.save(tmp_path / "bad.npy", np.array([[[0.5, 0.5, 1.5]] * 4]))
    assert "bad.npy: draw 0, patient 0, cycle 2: 1.5 is outside [0, 1) (4 such values)" in \
        errors_of(["run", str(hand), "--uniforms", str(tmp_path / "bad.npy")] + out)
    (tmp_path / "u.txt").write_text("x")
    assert "u.txt: expected a .csv or .npy file of uniforms" in errors_of(
        ["run", str(hand), "--uniforms", str(tmp_path / "u.txt")] + out)


def test_the_cohort_cannot_replay_uniforms(hand, tmp_path):
    output = errors_of(["run", str(hand), "--engine", "cohort", "--out", str(tmp_path / "r")])
    assert "hand.yaml, line 8: settings.engine: 'cohort' draws no random numbers, so it " \
           "cannot replay the uniforms of settings.uniforms" in output
    thr = str(SCENARIOS / "reference" / "thr_dmhee.yaml")  # a cohort scenario, --uniforms
    assert "settings.engine: 'cohort' draws no random numbers" in errors_of(
        ["run", thr, "--uniforms", str(tmp_path / "u.csv"), "--out", str(tmp_path / "r")])


def test_the_number_of_patients_must_agree_with_the_file(hand, tmp_path):
    output = errors_of(["run", str(hand), "--patients", "5", "--out", str(tmp_path / "r")])
    assert "settings.patients: 5 patients, but" in output
    assert "u.csv holds uniforms for 4 (one row per patient)" in output


def test_a_table_per_draw_needs_one_for_every_draw(hand, tmp_path):
    np.save(tmp_path / "two.npy", np.stack([UNIFORMS, UNIFORMS]))
    output = errors_of(["run", str(hand), "--uniforms", str(tmp_path / "two.npy"), "--draws",
                        "3", "--out", str(tmp_path / "r")])
    assert "two.npy: holds uniforms for 2 draws (draws x patients x cycles) and the run " \
           "needs 3" in output
