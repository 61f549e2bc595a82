"""Total hip replacement model (Briggs et al. 2004; DMHEE Exercise 3.5), reproduced to 1e-6.

Sources: Briggs A et al. Appl Health Econ Health Policy 2004;3(2):79-89; DMHEE (OUP 2006)
Exercise 3.5; heemod tests/testthat/test_dmhee.R ("Exactly match THR model").
Reference numbers: ../shared/validation/briggs_thr_dmhee.json.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SCENARIOS, reference
from vbhc_model.api import run_scenario

REL = 1e-6


@pytest.fixture(scope="module")
def thr():
    return run_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml", trace=True)


@pytest.fixture(scope="module")
def ref() -> dict:
    return reference("briggs_thr_dmhee")


def test_arms_and_icer(thr, ref):
    pub, rep = ref["reference_dmhee_excel"], ref["reproduced_independently_R"]
    out = thr.outcomes.mean("draw")
    for arm, key in (("standard", "std"), ("np1", "np1")):
        cost = float(out["total_cost"].sel(strategy=arm))
        qaly = float(out["qalys"].sel(strategy=arm))
        assert cost == pytest.approx(rep[f"{key}_cost"], rel=REL)
        assert qaly == pytest.approx(rep[f"{key}_qaly"], rel=REL)
        assert cost == pytest.approx(pub[f"{key}_cost"], abs=1e-6)
        assert qaly == pytest.approx(pub[f"{key}_qaly"], rel=REL)
    icer = float(thr.table["icer"].sel(strategy="np1"))
    assert icer == pytest.approx(rep["icer"], rel=REL)
    assert icer == pytest.approx(pub["icer"], rel=REL)


def test_trace_and_per_row_values(thr, ref):
    pub = ref["reference_dmhee_excel"]
    states = ["SuccessP", "RevisionTHR", "SuccessR", "Death"]
    for arm, key in (("standard", "trace_standard_rows1to8"), ("np1", "trace_np1_rows1to8")):
        trace = thr.outcomes["trace"].sel(strategy=arm, state=states).isel(draw=0).values[1:9]
        np.testing.assert_allclose(trace, pub[key], atol=5e-9)  # published to 8 decimals
    cost = thr.outcomes["cycle_costs"].sel(strategy="standard", category="revision").isel(draw=0)
    qaly = thr.outcomes["cycle_qalys"].sel(strategy="standard").isel(draw=0)
    # The workbook's per-row values are discounted (row k weighted 1/1.06^k and 1/1.015^k).
    rows = np.asarray(pub["per_row_values_standard_rows1to8"])
    np.testing.assert_allclose(cost.values[1:9], rows[:, 0], rtol=REL, atol=1e-12)
    np.testing.assert_allclose(qaly.values[1:9], rows[:, 1], rtol=REL)
