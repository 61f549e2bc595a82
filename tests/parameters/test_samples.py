"""Parameters whose PSA draws come from a CSV table of samples (``samples: {file, column}``)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import SCENARIOS, VALIDATION
from vbhc_model.cli import app
from vbhc_model.errors import ScenarioError, VbhcError
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.scenario import load_scenario

REFERENCE = VALIDATION / "thr_lshtm_psa_samples_first500.csv"
#: Reference columns -> THR parameters.
COLUMNS = {"omrP": "omrPTHR", "omrR": "omrRTHR", "rrr": "rrr", "cRev": "c_revision",
           "uP": "u_successP", "uR": "u_successR", "uRev": "u_revision", "lngamma": "lngamma",
           "cons": "cons", "age": "ageC", "male": "maleC", "NP1": "lnrrNP1"}


def thr_from_samples(tmp_path, pick: str = "in_order", csv=REFERENCE, edit=None):
    """The THR scenario with its twelve uncertain parameters read from a samples table."""
    shutil.copy(csv, tmp_path / "samples.csv")
    doc = yaml.safe_load((SCENARIOS / "reference" / "thr_dmhee.yaml").read_text())
    del doc["joint"]
    for column, name in COLUMNS.items():
        p = doc["parameters"][name]
        p.pop("distribution", None)
        p["samples"] = {"file": "samples.csv", "column": column, "pick": pick}
    if edit:
        edit(doc)
    path = tmp_path / "thr_samples.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_in_order_replays_another_tools_psa_draw_by_draw(tmp_path):
    # The derived THR reference (R, 500 of its draws): our engine on its parameter rows gives
    # its per-draw costs and QALYs, in one chunk or in seven.
    ref = pd.read_csv(REFERENCE)
    sc = load_scenario(thr_from_samples(tmp_path))
    for chunk in (500, 72):
        psa = run_psa(sc, 500, chunk_size=chunk)
        for column, name in COLUMNS.items():
            np.testing.assert_array_equal(psa["parameters"].sel(parameter=name), ref[column])
        for strategy, suffix in (("standard", "SP0"), ("np1", "NP1")):
            np.testing.assert_allclose(psa["total_cost"].sel(strategy=strategy),
                                       ref[f"cost_{suffix}"], rtol=1e-9)
            np.testing.assert_allclose(psa["qalys"].sel(strategy=strategy),
                                       ref[f"qaly_{suffix}"], rtol=1e-9)


def test_random_pick_keeps_rows_together_and_is_chunk_independent(tmp_path):
    ref = pd.read_csv(REFERENCE)
    sc = load_scenario(thr_from_samples(tmp_path, pick="random"))
    draws = sample_draws(sc, 3000, seed=4)
    rows = {tuple(r) for r in ref[list(COLUMNS)].to_numpy()}
    picked = draws.sel(parameter=list(COLUMNS.values())).values
    assert all(tuple(r) in rows for r in picked)  # whole rows: the joint distribution kept
    # Every row equally likely: 3,000 draws of 500 rows, about 6 each.
    counts = pd.Series([tuple(r) for r in picked]).value_counts()
    assert len(counts) > 490 and counts.max() < 20
    parts = [sample_draws(sc, 1000, seed=4, start=s) for s in (0, 1000, 2000)]
    np.testing.assert_array_equal(np.concatenate([p.values for p in parts]), draws.values)


def test_in_order_refuses_more_draws_than_rows_before_any_work(tmp_path):
    sc = load_scenario(thr_from_samples(tmp_path))
    with pytest.raises(VbhcError, match=r"has 500 rows.*draw 500 would need row 501"):
        run_psa(sc, 501)
    result = CliRunner().invoke(app, ["run", str(thr_from_samples(tmp_path)), "--draws", "600",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "pick: random" in result.output
    assert "PSA draws" not in result.stderr  # refused before the progress bar shows
    assert not (tmp_path / "out").exists()


def _bad(tmp_path, **kwargs) -> str:
    with pytest.raises(ScenarioError) as err:
        load_scenario(thr_from_samples(tmp_path, **kwargs))
    return str(err.value)


def test_samples_errors_name_the_file_line_and_column(tmp_path):
    assert "samples file not found" in _bad(
        tmp_path, edit=lambda d: d["parameters"]["rrr"]["samples"].update(file="nope.csv"))
    msg = _bad(tmp_path, edit=lambda d: d["parameters"]["rrr"]["samples"].update(column="rr"))
    assert "parameters.rrr.samples.column" in msg and "did you mean 'rrr'" in msg
    bad_csv = tmp_path / "bad.csv"
    text = REFERENCE.read_text().splitlines()
    cells = text[3].split(",")
    cells[2] = "abc"
    bad_csv.write_text("\n".join(text[:3] + [",".join(cells)] + text[4:]) + "\n")
    msg = _bad(tmp_path, csv=bad_csv)
    assert "line 4, column 'rrr': 'abc' is not a finite number" in msg
    msg = _bad(tmp_path, edit=lambda d: d["parameters"]["rrr"]["samples"].update(pick="random"))
    assert "parameters.rrr.samples.pick" in msg and "pick them the same way" in msg
    msg = _bad(tmp_path, edit=lambda d: d["parameters"]["rrr"].update(
        distribution={"type": "beta", "alpha": 4, "beta": 96}))
    assert "not distribution and samples" in msg


def test_cli_run_with_samples_writes_the_psa(tmp_path):
    path = thr_from_samples(tmp_path, pick="random")
    result = CliRunner().invoke(app, ["run", str(path), "--draws", "2000",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "psa.nc").exists()


def test_dsa_varies_a_samples_parameter_over_its_sample_interval(tmp_path):
    from vbhc_model.parameters.ranges import parameter_ranges

    sc = load_scenario(thr_from_samples(tmp_path))
    ranges = parameter_ranges(sc)
    ref = pd.read_csv(REFERENCE)
    low, high, basis = ranges["lnrrNP1"]
    np.testing.assert_allclose([low, high], np.quantile(ref["NP1"], [0.025, 0.975]))
    assert basis == "95% interval of its samples"


@pytest.mark.parametrize(("text", "expected"), [
    ("a,a \n1,2\n", "column 'a' appears twice in the header"),
    ("a,b\n1,2\n\n\nx,3\n", "line 5, column .a.: .x. is not a finite number"),
    ("a,b\n1,2\n3,\n", None),  # an empty cell in a column nobody asks for
    ("id,a\nx1,0.1\nx2,0.2\n", None),  # a text column beside the samples
    ("a,b\n", "no data rows, only a header"),
    # issue 11 (F2): with a trailing comma 'a' would be read from the next column
    ("a,b\n0.1,5,\n0.2,6,\n", "line 2: 3 fields, but the header .line 1. has 2"),
    ("b,c\n1,2\n", "no column 'a'; it has 'b', 'c'"),
    ("x" * 500 + "\n1\n", "no column 'a'; it has 'x{76}\\.\\.\\.$"),
])
def test_samples_table_edge_cases(tmp_path, text, expected):
    from vbhc_model.readers.samples import SamplesError, read_samples

    path = tmp_path / "s.csv"
    path.write_text(text)
    if expected is None:
        np.testing.assert_array_equal(read_samples(path).get("a"), [0.1, 0.2] if "id" in text
                                      else [1.0, 3.0])
    else:
        with pytest.raises(SamplesError, match=expected):
            read_samples(path).get("a")
