"""Value of information: EVPI >= EVPPI >= 0; EVPPI of all parameters approaches EVPI."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.analysis.psa import analyse_psa
from vbhc_model.analysis.voi import evppi, evppi_table
from vbhc_model.cli import app
from vbhc_model.psa import run_psa
from vbhc_model.scenario import load_scenario

WTP = [2200.0, 20000.0]


@pytest.fixture(scope="module")
def thr_psa():
    return run_psa(load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml"), 5000)


def sampled(psa):
    return [str(p) for p in psa["parameter"].values if psa["parameters"].sel(parameter=p).std() > 0]


def test_evppi_bounds_and_all_parameters_approach_evpi(thr_psa):
    evpi = analyse_psa(thr_psa, WTP)["evpi"].values
    names = sampled(thr_psa)
    table = evppi_table(thr_psa, {"all": names, **{n: [n] for n in names}}, WTP)
    single = table["evppi"].sel(group=names).values
    assert (single >= 0).all()
    assert (single <= evpi[None, :] + 1e-9).all()
    # At the decision-relevant WTP (near the ICER) EVPI is material; all parameters recover it.
    assert table["evppi"].sel(group="all").values[0] == pytest.approx(evpi[0], rel=0.05)
    assert float(table["r2_effect_min"].sel(group="all")) > 0.99


def test_evppi_of_an_irrelevant_parameter_is_near_zero():
    rng = np.random.default_rng(2)
    n = 5000
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    costs = np.zeros((n, 2))
    effects = np.column_stack([np.zeros(n), 0.2 + signal])
    full = evppi(costs, effects, signal, [1.0])["evppi"][0]
    none = evppi(costs, effects, noise, [1.0], n_se=50)
    assert none["evppi"][0] < 0.02 * full
    assert none["se"][0] > 0


def test_cli_voi_on_a_finished_run(tmp_path):
    out = tmp_path / "r"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                               "--draws", "2000", "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["voi", str(out), "--group", "cons,ageC,lngamma,lnrrNP1"])
    assert result.exit_code == 0, result.output
    assert "EVPI" in result.output and "cons+ageC+lngamma+lnrrNP1" in result.output
    assert (out / "evppi.nc").exists()
    again = runner.invoke(app, ["voi", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["voi", str(out), "--params", "nope", "--force"])
    assert bad.exit_code == 2 and "unknown parameter 'nope'" in bad.output
