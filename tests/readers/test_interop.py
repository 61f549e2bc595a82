"""Issue 11: interop both ways. ``vbhc export`` writes a run's PSA in four layouts (wide, long,
BCEA's matrices, dampack's); ``vbhc analyse`` reads each back to the run's results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app

runner = CliRunner()
FORMATS = ("csv", "long", "bcea", "dampack")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A PSA of the THR reference model (two strategies on the frontier: an ICER to compare)."""
    out = tmp_path_factory.mktemp("interop") / "thr"
    result = runner.invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                 "--draws", "300", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_then_analyse_gives_the_run_frontier_and_acceptability(run_folder, tmp_path, fmt):
    target = tmp_path / f"psa_{fmt}"
    res = runner.invoke(app, ["export", str(run_folder), "--format", fmt, "--out", str(target)])
    assert res.exit_code == 0, res.output
    assert str(target) in res.output
    with xr.open_dataset(run_folder / "psa_summary.nc") as summary:
        run = summary.load()
    args = ["analyse", str(target), "--out", str(tmp_path / "a")]
    for w in run["wtp"].values:
        args += ["--wtp", f"{w:.17g}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    with xr.open_dataset(tmp_path / "a" / "psa_summary.nc") as back:
        back = back.load()
    assert len(back["strategy"]) == len(run["strategy"]) == 2
    for var in ("ceac", "evpi", "expected_nmb", "cost_mean", "effect_mean", "inc_cost_mean",
                "inc_effect_mean", "icer"):
        np.testing.assert_allclose(back[var].values, run[var].values, rtol=1e-12, atol=0,
                                   err_msg=var)
    assert np.isfinite(run["icer"].values).any()  # a real ICER was compared
    assert list(back["frontier_status"].values) == list(run["frontier_status"].values)
    if fmt in ("bcea", "dampack"):  # the matrices carry the labels
        assert list(back["strategy"].values) == list(run["strategy_label"].values)
    else:
        assert list(back["strategy"].values) == list(run["strategy"].values)


def test_the_matrix_layouts_are_what_bcea_and_dampack_take(run_folder, tmp_path):
    with xr.open_dataset(run_folder / "psa.nc") as psa:
        psa = psa.load()
    labels = [str(v) for v in psa["strategy_label"].values]
    assert runner.invoke(app, ["export", str(run_folder), "--format", "bcea", "--out",
                               str(tmp_path / "b")]).exit_code == 0
    e = pd.read_csv(tmp_path / "b" / "e.csv")
    c = pd.read_csv(tmp_path / "b" / "c.csv")
    assert list(e.columns) == list(c.columns) == labels  # draws x strategies, labelled
    assert e.shape == (300, 2)
    np.testing.assert_array_equal(c.to_numpy(), psa["total_cost"].transpose("draw", "strategy"))
    assert "BCEA::bcea(e, c" in (tmp_path / "b" / "README.txt").read_text()
    assert runner.invoke(app, ["export", str(run_folder), "--format", "dampack", "--out",
                               str(tmp_path / "d")]).exit_code == 0
    eff = pd.read_csv(tmp_path / "d" / "effectiveness.csv")
    params = pd.read_csv(tmp_path / "d" / "parameters.csv")
    assert list(eff.columns) == labels and len(params) == 300
    assert list(params.columns) == [str(p) for p in psa["parameter"].values]
    assert "make_psa_obj(cost, effectiveness, parameters" in (
        tmp_path / "d" / "README.txt").read_text()
    # an export is never overwritten silently, and --force replaces it
    again = runner.invoke(app, ["export", str(run_folder), "--format", "dampack", "--out",
                                str(tmp_path / "d")])
    assert again.exit_code == 2 and "already exists" in again.output
    assert runner.invoke(app, ["export", str(run_folder), "--format", "dampack", "--out",
                               str(tmp_path / "d"), "--force"]).exit_code == 0


def test_analyse_maps_other_column_names(run_folder, tmp_path):
    """A wide table with BCEA-style prefixes, and a long one with other column names."""
    assert runner.invoke(app, ["export", str(run_folder), "--out",
                               str(tmp_path / "w.csv")]).exit_code == 0
    wide = pd.read_csv(tmp_path / "w.csv")
    wide.columns = [c.replace("cost_", "Cost.").replace("effect_", "Eff.") for c in wide.columns]
    wide.to_csv(tmp_path / "mine.csv", index=False, float_format="%.17g")
    refused = runner.invoke(app, ["analyse", str(tmp_path / "mine.csv"), "--wtp", "20000",
                                  "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "--map cost=PREFIX,effect=PREFIX" in refused.output
    ok = runner.invoke(app, ["analyse", str(tmp_path / "mine.csv"), "--wtp", "20000",
                             "--map", "cost=Cost.,effect=Eff.", "--out", str(tmp_path / "m")])
    assert ok.exit_code == 0, ok.output
    direct = runner.invoke(app, ["analyse", str(tmp_path / "w.csv"), "--wtp", "20000",
                                 "--out", str(tmp_path / "n")])
    a = xr.open_dataset(tmp_path / "m" / "psa_summary.nc")
    b = xr.open_dataset(tmp_path / "n" / "psa_summary.nc")
    assert direct.exit_code == 0 and np.array_equal(a["ceac"].values, b["ceac"].values)
    a.close()
    b.close()

    assert runner.invoke(app, ["export", str(run_folder), "--format", "long", "--out",
                               str(tmp_path / "l.csv")]).exit_code == 0
    long = pd.read_csv(tmp_path / "l.csv").rename(columns={
        "draw": "iter", "strategy": "arm", "cost": "Cost", "effect": "QALY"})
    long.to_csv(tmp_path / "l2.csv", index=False, float_format="%.17g")
    ok = runner.invoke(app, ["analyse", str(tmp_path / "l2.csv"), "--wtp", "20000", "--map",
                             "cost=Cost,effect=QALY,strategy=arm,draw=iter",
                             "--out", str(tmp_path / "l")])
    assert ok.exit_code == 0, ok.output
    c = xr.open_dataset(tmp_path / "l" / "psa_summary.nc")
    assert np.array_equal(c["ceac"].values, np.asarray(
        xr.open_dataset(tmp_path / "n" / "psa_summary.nc")["ceac"].values))
    c.close()


@pytest.mark.parametrize("args, message", [
    (["--map", "price=p_"], "--map: 'price=p_' is not KEY=NAME with KEY one of cost, effect"),
    (["--map", "cost"], "is not KEY=NAME"),
])
def test_a_bad_map_is_a_user_error(run_folder, tmp_path, args, message):
    runner.invoke(app, ["export", str(run_folder), "--out", str(tmp_path / "w.csv")])
    res = runner.invoke(app, ["analyse", str(tmp_path / "w.csv"), "--wtp", "1", *args,
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_bad_matrices_and_exports_are_located_errors(run_folder, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    res = runner.invoke(app, ["analyse", str(folder), "--wtp", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "needs c.csv and e.csv (BCEA) or cost.csv" in res.output
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(folder / "c.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.0], "x": [3.0, 4.0]}).to_csv(folder / "e.csv", index=False)
    res = runner.invoke(app, ["analyse", str(folder), "--wtp", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "e.csv: its columns (a, x) are not the strategies" in res.output
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 4.0, 5.0]}).to_csv(folder / "e.csv",
                                                                     index=False)
    res = runner.invoke(app, ["analyse", str(folder), "--wtp", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "e.csv: 3 draws (rows), but c.csv has 2" in res.output
    # R's write.csv keeps row names in an unnamed first column: an index, not a strategy
    (folder / "e.csv").write_text('"","a","b"\n"1",0.5,0.6\n"2",0.7,"x"\n')
    res = runner.invoke(app, ["analyse", str(folder), "--wtp", "1", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "e.csv, line 3, column 'b'" in res.output
    res = runner.invoke(app, ["export", str(tmp_path), "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "psa.nc: not found" in res.output
    res = runner.invoke(app, ["export", str(run_folder), "--format", "stata"])
    assert res.exit_code == 2 and "stata" in res.output
