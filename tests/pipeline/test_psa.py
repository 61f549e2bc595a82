"""The probabilistic analysis: chunk independence, acceptability, EVPI, CLI output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.analysis.acceptability import acceptability, analyse_psa, evpi
from vbhc_model.analysis.frontier import net_monetary_benefit
from vbhc_model.cli import app
from vbhc_model.pipeline.psa import run_psa, simulate_chunk
from vbhc_model.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIOS / "chronic_pain_us.yaml")


def test_same_seed_same_results_in_one_or_seven_chunks(scenario):
    one = run_psa(scenario, 350, chunk_size=350)
    seven = run_psa(scenario, 350, chunk_size=50)
    for var in one.data_vars:
        np.testing.assert_array_equal(one[var].values, seven[var].values)


def test_acceptability_sums_to_one_and_evpi_non_negative(scenario):
    psa = run_psa(scenario, 500)
    s = analyse_psa(psa, [0, 20_000, 50_000, 100_000, 1e6])
    np.testing.assert_allclose(s["ceac"].sum("strategy").values, 1.0)
    assert (s["evpi"].values >= 0).all()
    # The acceptability frontier follows the highest expected net benefit.
    best = s["expected_nmb"].argmax("strategy").values
    assert list(s["ceaf_strategy"].values) == list(s["strategy"].values[best])


def test_evpi_by_hand():
    # Two strategies, three equally likely draws, one WTP of 1 (NMB = effect - cost).
    costs = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    effects = np.array([[1.0, 3.0], [2.0, 1.0], [1.0, 1.5]])
    nmb = net_monetary_benefit(costs, effects, np.array([1.0]))  # [[1, 2], [2, 0], [1, 0.5]]
    # E[max] = (2 + 2 + 1)/3 = 5/3; max E = max(4/3, 2.5/3) = 4/3; EVPI = 1/3.
    assert evpi(nmb)[0] == pytest.approx(1 / 3)
    np.testing.assert_allclose(acceptability(nmb)[:, 0], [2 / 3, 1 / 3])


def test_cli_draws_writes_psa_and_json(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", "--draws", "200", "--chunk-size", "64", "--json",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    for rec in records:
        p = rec["psa"]["p_cost_effective"]
        assert set(p) == {"50000", "100000", "150000"}
        assert rec["psa"]["cost"]["low"] <= rec["psa"]["cost"]["mean"] <= rec["psa"]["cost"]["high"]
    total = {w: sum(r["psa"]["p_cost_effective"][w] for r in records) for w in ("50000",)}
    assert total["50000"] == pytest.approx(1.0)
    psa = xr.open_dataset(out / "psa.nc")
    assert psa.sizes["draw"] == 200 and psa.attrs["chunk_size"] == 64
    assert "parameters" in psa
    psa.close()
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert "psa_cost_mean" in header and "p_ce_at_50000" in header


def test_figures_are_written(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", "--draws", "100", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("ce_plane", "ceac", "evpi"):
        for ext in ("png", "svg"):
            path = out / "figures" / f"{name}.{ext}"
            assert path.exists() and path.stat().st_size > 1000


@pytest.mark.slow
def test_local_cluster_gives_identical_results(scenario):
    in_process = run_psa(scenario, 300, chunk_size=100)
    environ = dict(os.environ)
    on_cluster = run_psa(scenario, 300, chunk_size=100, workers=2)
    # The workers' settings (one thread, no dask trim, dask's PYTHONHASHSEED) do not linger
    # in this process.
    assert dict(os.environ) == environ
    for var in in_process.data_vars:
        np.testing.assert_array_equal(in_process[var].values, on_cluster[var].values)
    assert on_cluster.attrs["execution"] == "dask (LocalCluster, 2 workers)"


def test_powers_give_the_same_result_in_any_chunk(monkeypatch):
    # THR with a revision hazard whose powers take every path: a base over cycles that is nan
    # in a cycle where() discards (sqrt(-1)), and a per-draw base with an exponent over
    # cycles. 600 draws in one chunk use the kept power rows (256+ draws), chunks of 100 do
    # not, and chunks of 199 end with a chunk of 3 draws, simulated padded. Small blocks of
    # cycles (one or two at 600 draws, a dozen at 100) as a large chunk would have.
    from vbhc_model.model import build
    from vbhc_model.scenario.loader import scenario_from_text

    monkeypatch.setattr(build, "BLOCK_ELEMENTS", 2**13)
    path = SCENARIOS / "reference" / "thr_dmhee.yaml"
    old = ("RevisionTHR: 1 - exp(weibull_lambda * rr_revision * ((cycle - 1) ** weibull_gamma"
           " - cycle ** weibull_gamma))")
    new = ("RevisionTHR: where(cycle >= 2, 1 - exp(weibull_lambda * rr_revision"
           " * (sqrt(cycle - 2) ** (2 * weibull_gamma) - sqrt(cycle - 1) ** (2 * weibull_gamma)))"
           " * (0.5 + 0.5 * rr_revision ** (cycle / 40)), 0)")
    text = path.read_text()
    assert old in text
    thr = scenario_from_text(text.replace(old, new), str(path))
    one = run_psa(thr, 600, chunk_size=600)
    for chunk in (100, 199):
        other = run_psa(thr, 600, chunk_size=chunk)
        for var in one.data_vars:
            np.testing.assert_array_equal(one[var].values, other[var].values, err_msg=var)


@pytest.mark.slow
def test_environment_written_during_a_run_is_put_back(scenario, monkeypatch):
    # A nanny restarting a worker mid-run writes its variables into this process again; here
    # the callback receiving each chunk stands in for it.
    from vbhc_model.pipeline.scaleout import run_chunks

    monkeypatch.setenv("VBHC_TEST_KEPT", "before")
    before = dict(os.environ)

    def keep(i, part):
        os.environ["VBHC_TEST_KEPT"] = "changed"
        os.environ["VBHC_TEST_ADDED"] = str(i)

    run_chunks(scenario, [(0, 20), (20, 20)], seed=1, method="mc", total=40, workers=1,
               keep=keep)
    assert dict(os.environ) == before


def test_expected_loss_pairwise_and_population(scenario):
    psa = run_psa(scenario, 400)
    s = analyse_psa(psa, [50_000, 100_000], population=1000.0)
    # The strategy with the highest expected NMB has the lowest expected loss, equal to EVPI.
    best = s["expected_nmb"].argmax("strategy").values
    loss = s["expected_loss"].values
    np.testing.assert_allclose(loss[best, [0, 1]], s["evpi"].values, rtol=1e-10)
    assert (loss >= loss[best, [0, 1]] - 1e-9).all()
    assert (s["p_better_than_reference"].sel(strategy="usual_care") == 0).all()
    np.testing.assert_allclose(s["population_evpi"].values, 1000 * s["evpi"].values)


def test_population_effective_size():
    from vbhc_model.scenario.schema import Population

    p = Population(size=100, annual_incidence=10, horizon_years=3, discount=0.0, source="t")
    assert p.effective() == 130
    q = Population(annual_incidence=10, horizon_years=2, discount=0.05, source="t")
    assert q.effective() == pytest.approx(10 + 10 / 1.05)


def test_streamed_chunks_equal_in_memory(scenario, tmp_path):
    in_memory = run_psa(scenario, 250, chunk_size=100)
    streamed = run_psa(scenario, 250, chunk_size=100, store=tmp_path)
    assert len(list(tmp_path.glob("part_*.nc"))) == 3
    for var in in_memory.data_vars:
        np.testing.assert_array_equal(in_memory[var].values, streamed[var].values)
    streamed.close()


@pytest.mark.parametrize("name", ["chronic_pain_us.yaml", "reference/thr_dmhee.yaml"])
def test_threads_do_not_change_results(name):
    """Strategies run side by side on threads; every number must equal the one-thread run."""
    from vbhc_model.parameters.sampling import sample_draws
    from vbhc_model.pipeline.simulate import simulate

    sc = load_scenario(SCENARIOS / name)
    draws = sample_draws(sc, 1_500)
    one = simulate(sc, draws, threads=1)
    two = simulate(sc, draws, threads=2)
    for var in one.data_vars:
        np.testing.assert_array_equal(one[var].values, two[var].values, err_msg=var)


def test_renderer_draws_in_process_if_its_helper_dies(scenario, tmp_path):
    """The figure helper is an optimisation: if it dies, the figures are still drawn."""
    from vbhc_model.api import run_scenario
    from vbhc_model.report.render import Renderer
    from vbhc_model.report.write import figure_jobs

    result = run_scenario(scenario, draws=200, chunk_size=200)
    jobs = figure_jobs(result)
    with Renderer() as r:
        r.submit(jobs, tmp_path / "alive").result()
        for proc in list(r._pool._processes.values()):
            proc.kill()
            proc.join()
        r.submit(jobs, tmp_path / "dead").result()
    for folder in ("alive", "dead"):
        names = sorted(p.name for p in (tmp_path / folder).iterdir())
        assert names == sorted(f"{n}.{ext}" for n in jobs for ext in ("png", "svg"))


def test_a_chunk_padded_to_min_batch_says_how_many_draws_it_holds():
    thr = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")
    part = simulate_chunk(thr, 5, 3, 1, "mc", 100)
    assert part.sizes["draw"] == 3 and part.attrs["n_draws"] == 3
    np.testing.assert_array_equal(part["draw"].values, [5, 6, 7])


def test_a_draw_gives_the_same_result_in_any_chunk():
    # The THR model has correlated (multivariate normal) coefficients. The engine buffers
    # fewer trace rows than cycles above about 6,900 THR draws, so 20,001 draws in one chunk
    # and in chunks of 10,000 or 6,998 fold their traces in buffers of different lengths; the
    # last chunks (1 and 6,005 draws) are simulated padded to MIN_BATCH and not.
    thr = load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")
    one = run_psa(thr, 20001, chunk_size=20001)
    for chunk in (10000, 6998):
        other = run_psa(thr, 20001, chunk_size=chunk)
        for var in one.data_vars:
            np.testing.assert_array_equal(one[var].values, other[var].values, err_msg=var)


@pytest.mark.parametrize("address", ["notanaddress", "tcp://127.0.0.1:notaport"])
def test_a_malformed_scheduler_address_is_a_users_error(tmp_path, address):
    result = CliRunner().invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                      "--draws", "20", "--scheduler", address,
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"--scheduler {address}: cannot reach a dask scheduler" in result.output


def test_an_unreachable_scheduler_is_a_users_error(tmp_path):
    import dask

    out = tmp_path / "out"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = CliRunner().invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                          "--draws", "100", "--scheduler", "tcp://127.0.0.1:1",
                                          "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--scheduler tcp://127.0.0.1:1: cannot reach a dask scheduler" in result.output
    assert not out.exists()


def test_frontier_on_means_has_intervals_of_the_increments():
    from vbhc_model.analysis.acceptability import mean_frontier

    rng = np.random.default_rng(3)
    n = 4000
    # A cheapest; B on the frontier; C dominated by B (dearer, worse); D on the frontier.
    costs = np.column_stack([rng.normal(100, 10, n), rng.normal(300, 30, n),
                             rng.normal(400, 30, n), rng.normal(900, 50, n)])
    effects = np.column_stack([rng.normal(1.0, 0.1, n), rng.normal(1.2, 0.1, n),
                               rng.normal(1.1, 0.1, n), rng.normal(1.4, 0.1, n)])
    f = mean_frontier(costs, effects, ["A", "B", "C", "D"])
    assert f["frontier_status"].values.tolist() == ["frontier", "frontier", "dominated",
                                                    "frontier"]
    assert f["comparator"].values.tolist() == ["", "A", "B", "B"]
    for i, j in ((1, 0), (2, 1), (3, 1)):
        dc, de = costs[:, i] - costs[:, j], effects[:, i] - effects[:, j]
        np.testing.assert_allclose(
            [f[k].values[i] for k in ("inc_cost_mean", "inc_cost_low", "inc_cost_high")],
            [dc.mean(), *np.quantile(dc, [0.025, 0.975])])
        np.testing.assert_allclose(
            [f[k].values[i] for k in ("inc_effect_mean", "inc_effect_low", "inc_effect_high")],
            [de.mean(), *np.quantile(de, [0.025, 0.975])])
    np.testing.assert_allclose(f["icer"].values[3], (costs[:, 3].mean() - costs[:, 1].mean())
                               / (effects[:, 3].mean() - effects[:, 1].mean()))
    assert np.isnan(f["icer"].values[2]) and np.isnan(f["inc_cost_mean"].values[0])


def test_run_reports_the_frontier_on_means_in_every_output(tmp_path):
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                      "--draws", "500", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = {r["strategy"]: r for r in json.loads(result.stdout)}
    np1 = records["np1"]["psa"]["frontier_on_means"]
    assert np1["status"] == "frontier" and np1["comparator"] == "standard"
    assert np1["inc_cost"]["low"] < np1["inc_cost"]["mean"] < np1["inc_cost"]["high"]
    import pandas as pd

    csv = pd.read_csv(out / "summary.csv").set_index("strategy")
    assert csv.loc["np1", "psa_inc_cost_mean"] == pytest.approx(np1["inc_cost"]["mean"])
    with xr.open_dataset(out / "psa_summary.nc") as s:
        assert str(s["comparator"].sel(strategy="np1").values) == "standard"


def test_figures_split_with_a_forked_child_are_all_drawn_even_if_the_child_dies(tmp_path):
    """render_split shares the figures with a forked child; what the child did not draw
    (here: it fails) is drawn by the helper itself. In a fresh interpreter, as in the figure
    helper: a pytest worker may hold threads, and then render_split does not fork."""
    script = f"""
import os, sys
from pathlib import Path
from vbhc_model.api import run_scenario
from vbhc_model.report import render as R
from vbhc_model.report.write import figure_jobs

jobs = figure_jobs(run_scenario({str(SCENARIOS / "chronic_pain_us.yaml")!r}, draws=200,
                                chunk_size=200))
expected = sorted(f"{{n}}.{{e}}" for n in jobs for e in ("png", "svg"))
out = Path({str(tmp_path)!r})
assert R.render_split(jobs, out / "ok") == sorted(jobs)
assert sorted(p.name for p in (out / "ok").iterdir()) == expected
parent, real, forks, fork = os.getpid(), R.render, [], os.fork
os.fork = lambda: forks.append(1) or fork()

def child_fails(some, folder):
    if os.getpid() != parent:
        raise RuntimeError("the child dies")
    return real(some, folder)

R.render = child_fails
R.render_split(jobs, out / "child_died")
assert forks == [1], forks
assert sorted(p.name for p in (out / "child_died").iterdir()) == expected
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
