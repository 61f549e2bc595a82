"""vbhc analyse: PSA tables from other tools give the same results as native runs."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS, VALIDATION, reference
from vbhc_model.analysis.acceptability import analyse_psa
from vbhc_model.analysis.voi import evppi_table
from vbhc_model.api import run_analyse
from vbhc_model.cli import app
from vbhc_model.errors import VbhcError
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.readers.tables import psa_to_frame, read_psa_csv
from vbhc_model.scenario import load_scenario

WTP = [2200.0, 10000.0, 20000.0]


@pytest.fixture(scope="module")
def native():
    return run_psa(load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml"), 2000)


def test_exported_psa_gives_the_native_results(native, tmp_path):
    path = tmp_path / "psa.csv"
    psa_to_frame(native).to_csv(path, index=False, float_format="%.17g")
    result, _ = run_analyse(path, wtp=WTP, out=tmp_path / "out")
    ours = analyse_psa(native, WTP)
    for var in ("ceac", "cost_mean", "effect_low"):
        np.testing.assert_allclose(result.summary[var].values, ours[var].values, rtol=1e-12)
    # EVPI is a difference of two means of order WTP x QALYs (~3e5): compare on that scale.
    np.testing.assert_allclose(result.summary["evpi"].values, ours["evpi"].values,
                               atol=1e-12 * 20000 * 15)
    names = ["lnrrNP1", "u_successP"]
    theirs = result.evppi.sel(group=names)["evppi"].values
    mine = evppi_table(native, {n: [n] for n in names}, WTP)["evppi"].values
    np.testing.assert_allclose(theirs, mine, rtol=1e-8)


def test_long_layout_equals_wide(native, tmp_path):
    wide = psa_to_frame(native)
    long = wide.melt(id_vars=["draw"], value_vars=[c for c in wide if c.startswith("cost_")],
                     var_name="strategy", value_name="cost")
    long["strategy"] = long["strategy"].str.removeprefix("cost_")
    eff = wide.melt(id_vars=["draw"], value_vars=[c for c in wide if c.startswith("effect_")],
                    var_name="strategy", value_name="effect")
    long["effect"] = eff["effect"].values
    long.to_csv(tmp_path / "long.csv", index=False, float_format="%.17g")
    wide.to_csv(tmp_path / "wide.csv", index=False, float_format="%.17g")
    a, b = read_psa_csv(tmp_path / "long.csv"), read_psa_csv(tmp_path / "wide.csv")
    order = list(native["strategy"].values)
    assert list(a["strategy"].values) == list(b["strategy"].values) == order
    np.testing.assert_allclose(a["total_cost"].values, b["total_cost"].values)
    np.testing.assert_allclose(a["qalys"].values, b["qalys"].values)


def test_reference_samples_reproduce_the_derived_reference(tmp_path):
    ref = reference("briggs_thr_dmhee")["psa"]["derived_reference"]
    # The first 500 reference draws ship with the tests; all 10,000 give the published values
    # exactly (checked by hand with shared/validation/data/...csv); here: the same arithmetic.
    psa = read_psa_csv(VALIDATION / "thr_lshtm_psa_samples_first500.csv")
    assert list(psa["strategy"].values) == ["SP0", "NP1"]
    assert psa.sizes["parameter"] == 12
    dc = (psa["total_cost"].sel(strategy="NP1") - psa["total_cost"].sel(strategy="SP0")).values
    assert abs(dc.mean() - ref["mean_inc_cost"]) < 4 * dc.std() / np.sqrt(500)


def test_bad_table_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(app, ["analyse", str(bad), "--wtp", "1000",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "expected cost_<strategy> and effect_<strategy>" in result.output
    assert not (tmp_path / "o").exists()


# --- The default scenario, exported long and wide: same order, same results as native -------

DEFAULT_WTP = [50000.0, 100000.0]


@pytest.fixture(scope="module")
def default_native():
    return run_psa(load_scenario(SCENARIOS / "chronic_pain_us.yaml"), 1000)


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_default_scenario_exported_gives_the_native_results(default_native, layout, tmp_path):
    native = default_native
    path = tmp_path / f"{layout}.csv"
    psa_to_frame(native, layout=layout).to_csv(path, index=False, float_format="%.17g")
    psa = read_psa_csv(path)
    # Order kept: usual_care stays the reference (first) strategy, not coach_cbt.
    assert list(psa["strategy"].values) == list(native["strategy"].values)
    assert psa["strategy"].values[0] == "usual_care"
    # Every parameter kept, including benefit_persistence_12m (no cost_ partner) and in order.
    assert list(psa["parameter"].values) == list(native["parameter"].values)
    assert "benefit_persistence_12m" in psa["parameter"].values
    np.testing.assert_array_equal(psa["total_cost"].values, native["total_cost"].values)
    np.testing.assert_array_equal(psa["parameters"].values, native["parameters"].values)

    result, _ = run_analyse(path, wtp=DEFAULT_WTP, out=tmp_path / "out")
    ours = analyse_psa(native, DEFAULT_WTP)
    theirs = result.summary
    assert list(theirs["strategy"].values) == list(ours["strategy"].values)
    for var in ("p_better_than_reference", "ceac", "expected_loss", "expected_nmb", "cost_mean",
                "effect_mean", "ceaf"):
        np.testing.assert_allclose(theirs[var].values, ours[var].values, rtol=1e-12, err_msg=var)
    assert list(theirs["ceaf_strategy"].values) == list(ours["ceaf_strategy"].values)
    assert not np.all(ours["p_better_than_reference"].sel(strategy="coach_cbt").values == 0)
    groups = [str(g) for g in result.evppi["group"].values]
    assert "benefit_persistence_12m" in groups
    names = ["benefit_persistence_12m", "rr_resp_paintrainer"]
    mine = evppi_table(native, {n: [n] for n in names}, DEFAULT_WTP)["evppi"].values
    np.testing.assert_allclose(result.evppi.sel(group=names)["evppi"].values, mine, rtol=1e-8)


def _write(tmp_path, text, name="psa.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_wide_strategy_needs_both_columns_and_keeps_column_order(tmp_path):
    path = _write(tmp_path, "draw,cost_zeta,qalys_zeta,effect_alpha,cost_alpha,effect_extra,"
                            "cost_only,label\n"
                            "0,1,2,3,4,0.5,10,x\n1,1.5,2.5,3.5,4.5,0.25,11,y\n"
                            "2,1,2,3,4,0.75,12,z\n")
    psa = read_psa_csv(path)
    assert list(psa["strategy"].values) == ["zeta", "alpha"]
    assert list(psa["parameter"].values) == ["effect_extra", "cost_only"]  # text column ignored
    extra = psa["parameters"].sel(parameter="effect_extra")
    np.testing.assert_array_equal(extra, [0.5, 0.25, 0.75])
    np.testing.assert_array_equal(psa["qalys"].sel(strategy="alpha"), [3, 3.5, 3])


def test_long_keeps_the_order_of_first_appearance(tmp_path):
    path = _write(tmp_path, "draw,strategy,cost,effect,p\n"
                            "0,zeta,1,2,7\n0,alpha,3,4,7\n\n1,alpha,5,6,8\n1,zeta,1.5,2.5,8\n")
    psa = read_psa_csv(path)
    assert list(psa["strategy"].values) == ["zeta", "alpha"]
    np.testing.assert_array_equal(psa["total_cost"].values, [[1, 3], [1.5, 5]])
    np.testing.assert_array_equal(psa["parameters"].values, [[7], [8]])


WIDE = "draw,cost_a,effect_a,cost_b,effect_b,p\n"
LONG = "draw,strategy,cost,effect\n"


@pytest.mark.parametrize("text, expected", [
    (WIDE + "0,1,2,3,4,5\n1,1,abc,3,4,6\n", ["line 3", "column 'effect_a'", "'abc'"]),
    (WIDE + "0,1,2,3,4,5\n1,,2,3,4,6\n", ["line 3", "column 'cost_a'", "empty cell"]),
    (WIDE + "0,1,2,3,4,5\n\n1,1,2,3,4,x\n", ["line 4", "column 'p'", "'x'"]),
    (WIDE + "0,1,2,3,4,5\n1,1,2,3,4,\n", ["line 3", "column 'p'", "empty cell"]),
    (WIDE + "0,1,2,3,inf,5\n1,1,2,3,4,6\n", ["line 2", "column 'effect_b'", "not a finite"]),
    (LONG + "0,b,1,2\n0,a,3,4\n1,b,1,2\n1,a,3,NA\n", ["line 5", "column 'effect'", "'NA'"]),
    (LONG + "0,b,1,2\n0,a,3,4\n1,b,1,2\n1,b,5,6\n1,a,3,4\n",
     ["draw 1, strategy 'b' appears more than once", "lines 4, 5"]),
    (LONG + "0,b,1,2\n0,a,3,4\n1,b,1,2\n2,b,1,2\n2,a,3,4\n",
     ["strategy 'a' has no row for draw 1"]),
    ("draw,strategy,cost,effect,q\n0,b,1,2,7\n0,a,3,4,8\n1,b,1,2,7\n1,a,3,4,7\n",
     ["line 3", "column 'q'", "same for every strategy of a draw"]),
    (LONG + "0,a,1,2\n1,a,3,4\n", ["one strategy"]),
    ("draw,cost_a,effect_a,qaly_a,cost_b,effect_b\n0,1,2,2,3,4\n1,1,2,2,3,4\n",
     ["strategy 'a' has more than one column", "effect_a, qaly_a"]),
    (WIDE + "0,1,2,3,4,5\n", ["one draw"]),
    ("", ["the file is empty"]),
    (WIDE, ["no data rows, only a header"]),
    # issue 11 (F2): a trailing comma would shift every column; a short row; a ragged row
    (WIDE + "0,1,2,3,4,5,\n1,1,2,3,4,6,\n", ["line 2: 7 fields, but the header (line 1) has 6",
                                             "a comma at the end of the line"]),
    (WIDE + "0,1,2,3,4,5\n1,1,2,3,4\n", ["line 3: 5 fields, but the header (line 1) has 6"]),
    (WIDE + "0,1,2,3,4,5\n\n1,1,2,3,4,6,7\n", ["line 4: 7 fields"]),
    # F9: a spreadsheet's CSV in a locale with decimal commas
    ("draw;cost_a;effect_a;cost_b;effect_b\n0;1,5;2;3;4\n1;1;2;3;4,5\n",
     ["seems separated by ';'", "'.' as the decimal point"]),
    ("cost_a,effect_a,cost_b,effect_b\n" + "x" * 5000 + ",2,3,4\n1,2,3,4\n",
     ["line 2, column 'cost_a': 'xxx", "...' is not a finite number"]),
], ids=["text-cost", "empty-cost", "text-parameter", "empty-parameter", "inf", "NA-long",
        "duplicate-row", "missing-strategy", "parameter-varies", "one-strategy",
        "two-effect-columns", "one-draw", "empty-file", "header-only", "trailing-comma",
        "short-row", "long-row", "semicolons", "huge-cell"])
def test_bad_cells_and_rows_are_user_errors(tmp_path, text, expected):
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["analyse", str(path), "--wtp", "1000",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    for fragment in expected:
        assert fragment in result.output
    assert "Traceback" not in result.output and "bug" not in result.output
    assert max(map(len, result.output.splitlines())) < 400  # an excerpt of a cell, never all
    assert not (tmp_path / "o").exists()


def test_r_row_names_are_read_and_lines_numbered_from_the_file(tmp_path):
    # R's write.table(sep=","): each row starts with a row name the header does not name
    head = '"cost_a","effect_a","cost_b","effect_b"\n'
    path = _write(tmp_path, head + '"1",1,2,3,4\n"2",1.5,2,3,4.5\n')
    psa = read_psa_csv(path)
    np.testing.assert_array_equal(psa["total_cost"].values, [[1, 3], [1.5, 3]])
    path = _write(tmp_path, head + '"1",1,2,3,4\n"2",1.5,x,3,4.5\n')
    with pytest.raises(VbhcError, match="line 3, column 'effect_a'"):
        read_psa_csv(path)


def test_a_cell_past_the_csv_field_limit_is_refused_without_echoing_it(tmp_path):
    path = _write(tmp_path, "cost_a,effect_a,cost_b,effect_b\n" + "9" * 200_000 + ",2,3,4\n")
    with pytest.raises(VbhcError, match="line 2: not a readable CSV table") as info:
        read_psa_csv(path)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("wtp", ["-1", "nan", "inf"])
def test_negative_or_infinite_wtp_is_a_user_error(tmp_path, wtp):
    path = _write(tmp_path, WIDE + "0,1,2,3,4,5\n1,1.5,2,3,4.5,6\n")
    result = CliRunner().invoke(app, ["analyse", str(path), "--wtp", "1000", "--wtp", wtp,
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "--wtp must be a finite number >= 0" in result.output
    assert not (tmp_path / "o").exists()


def _small_psa(parameters):
    return xr.Dataset(
        {"total_cost": (("draw", "strategy"), [[1.0, 2.0], [1.5, 2.5]]),
         "qalys": (("draw", "strategy"), [[0.5, 0.6], [0.4, 0.7]]),
         "parameters": (("draw", "parameter"), np.arange(2.0 * len(parameters)).reshape(2, -1))},
        coords={"draw": [0, 1], "strategy": ["b", "a"], "parameter": parameters},
    )


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_psa_to_frame_reads_back_to_the_same_psa(tmp_path, layout):
    psa = _small_psa(["effect_x", "cost_y"])
    path = tmp_path / "t.csv"
    psa_to_frame(psa, layout=layout).to_csv(path, index=False, float_format="%.17g")
    back = read_psa_csv(path)
    assert list(back["strategy"].values) == ["b", "a"]
    assert list(back["parameter"].values) == ["effect_x", "cost_y"]
    for var in ("total_cost", "qalys", "parameters"):
        np.testing.assert_array_equal(back[var].values, psa[var].values)


@pytest.mark.parametrize("layout, names", [("wide", ["cost_x", "effect_x"]),
                                           ("wide", ["effect_a", "p"]),
                                           ("long", ["cost", "p"])])
def test_psa_to_frame_refuses_a_table_that_would_not_read_back(layout, names):
    with pytest.raises(VbhcError, match=f"use layout='{'long' if layout == 'wide' else 'wide'}'"):
        psa_to_frame(_small_psa(names), layout=layout)
    other = "long" if layout == "wide" else "wide"
    assert list(psa_to_frame(_small_psa(names), layout=other).columns)[-2:] == names


def test_parameter_columns_that_never_vary_give_no_evppi(tmp_path):
    rng = np.random.default_rng(2)
    rows = ["cost_a,effect_a,cost_b,effect_b,k"]
    rows += [f"0,0,{c:.3f},{e:.5f},0.1" for c, e in zip(rng.normal(100, 10, 50),
                                                         rng.normal(0.01, 0.01, 50))]
    path = _write(tmp_path, "\n".join(rows) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["analyse", str(path), "--wtp", "20000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "EVPI" in result.output and (out / "summary.csv").exists()
    assert not (out / "evppi.nc").exists()


def test_names_are_stripped_and_unpaired_columns_are_noted(tmp_path):
    rng = np.random.default_rng(4)
    rows = ["draw, cost_a ,effect_a,cost_b,effect_b,cost_c,efect_c"]
    rows += [f"{i},0,0,{rng.normal(100, 5):.3f},{rng.normal(0.01, 0.005):.5f},"
             f"{rng.normal(200, 5):.3f},{rng.normal(0.02, 0.005):.5f}" for i in range(40)]
    path = _write(tmp_path, "\n".join(rows) + "\n")
    psa = read_psa_csv(path)
    assert [str(s) for s in psa["strategy"].values] == ["a", "b"]  # " cost_a " is cost_a
    result = CliRunner().invoke(app, ["analyse", str(path), "--wtp", "20000",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "note: cost_c: a cost or effect column without its partner" in result.stderr
    long = _write(tmp_path, "draw,strategy,cost,effect\n1,usual care ,1,0.1\n1,new,2,0.2\n"
                  "2,usual care,1.1,0.1\n2,new,2.1,0.25\n", "long.csv")
    assert [str(s) for s in read_psa_csv(long)["strategy"].values] == ["usual care", "new"]


def test_a_column_named_twice_is_refused(tmp_path):
    path = _write(tmp_path, "draw,cost_a,effect_a,cost_b,effect_b,cost_b \n1,0,0,1,1,2\n2,0,0,1,1,2\n")
    with pytest.raises(VbhcError, match="column 'cost_b' appears twice in the header"):
        read_psa_csv(path)


def test_a_draw_on_two_rows_of_a_wide_table_is_refused(tmp_path):
    path = _write(tmp_path, "draw,cost_a,effect_a,cost_b,effect_b\n1,0,0,1,1\n2,0,0,1,2\n"
                            "2,0,0,1,2\n3,0,0,2,1\n")
    result = CliRunner().invoke(app, ["analyse", str(path), "--wtp", "1",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "draw 2 appears on more than one row (lines 3, 4)" in result.output
    assert not (tmp_path / "out").exists()


def test_spaces_after_commas_and_quoted_commas_are_read(tmp_path):
    """The row-length check reads fields as pandas does (a space after a comma, a quoted
    field holding a comma): such a table is not refused (review of issue 11's change)."""
    from vbhc_model.readers.tables import read_psa_csv

    f = tmp_path / "spaced.csv"
    f.write_text('draw, strategy, cost, qalys\n0, "CBT, coach-led", 100, 0.5\n'
                 '0, usual care, 50, 0.4\n1, "CBT, coach-led", 110, 0.55\n1, usual care, 55, 0.45\n')
    psa = read_psa_csv(f)
    assert sorted(map(str, psa["strategy"].values)) == ["CBT, coach-led", "usual care"]
