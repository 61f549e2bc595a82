"""THR probabilistic model (DMHEE ch. 4; LSHTM DM4HEE A3.3.3a) against the derived reference.

Two checks: (1) replaying the reference's own per-draw parameter samples reproduces its
per-draw costs and QALYs exactly; (2) our own 10,000 draws give mean incremental cost and QALYs
within 3 Monte Carlo standard errors of the reference (the SE of the difference of two
independent Monte Carlo means: both estimates carry sampling error).
Reference: ../shared/validation/briggs_thr_dmhee.json ("psa" -> "derived_reference").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SCENARIOS, VALIDATION, reference
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.psa import run_psa
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

COLUMNS = {"omrP": "omrPTHR", "omrR": "omrRTHR", "rrr": "rrr", "cRev": "c_revision",
           "uP": "u_successP", "uR": "u_successR", "uRev": "u_revision", "lngamma": "lngamma",
           "cons": "cons", "age": "ageC", "male": "maleC", "NP1": "lnrrNP1"}


@pytest.fixture(scope="module")
def thr():
    return load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")


def test_replaying_reference_draws_reproduces_each_draw(thr):
    ref = pd.read_csv(VALIDATION / "thr_lshtm_psa_samples_first500.csv")
    draws = base_draws(thr, len(ref)).copy()
    for col, name in COLUMNS.items():
        draws.loc[{"parameter": name}] = ref[col].values
    out = simulate(thr, draws)
    np.testing.assert_allclose(out["total_cost"].sel(strategy="standard"), ref["cost_SP0"], rtol=1e-9)
    np.testing.assert_allclose(out["qalys"].sel(strategy="standard"), ref["qaly_SP0"], rtol=1e-9)
    np.testing.assert_allclose(out["total_cost"].sel(strategy="np1"), ref["cost_NP1"], rtol=1e-9)
    np.testing.assert_allclose(out["qalys"].sel(strategy="np1"), ref["qaly_NP1"], rtol=1e-9)


def test_10000_draws_within_3_monte_carlo_se(thr):
    r = reference("briggs_thr_dmhee")["psa"]["derived_reference"]
    psa = run_psa(thr, 10_000)
    dc = (psa["total_cost"].sel(strategy="np1") - psa["total_cost"].sel(strategy="standard")).values
    dq = (psa["qalys"].sel(strategy="np1") - psa["qalys"].sel(strategy="standard")).values
    n = len(dc)
    for ours, ref_mean, ref_se in ((dc, r["mean_inc_cost"], r["se_inc_cost"]),
                                   (dq, r["mean_inc_qaly"], r["se_inc_qaly"])):
        se = np.hypot(ours.std(ddof=1) / np.sqrt(n), ref_se)
        assert abs(ours.mean() - ref_mean) < 3 * se
