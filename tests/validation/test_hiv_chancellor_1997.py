"""Chancellor et al. 1997 HIV model, three published variants, reproduced to 1e-6 relative.

Sources: Chancellor JV et al. PharmacoEconomics 1997;12(1):54-66; Briggs, Claxton & Sculpher,
Decision Modelling for Health Economic Evaluation (OUP 2006), Exercise 2.5; heemod
tests/testthat/test_dmhee.R and vignettes/c_homogeneous.Rmd; LSHTM DM4HEE R course F3.3.3.
Reference numbers: ../shared/validation/hiv_chancellor_1997.json.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import SCENARIOS, reference
from vbhc_model.api import run_scenario

REL = 1e-6


@pytest.fixture(scope="module")
def ref() -> dict:
    return reference("hiv_chancellor_1997")["variants"]


def _run(stem: str, trace: bool = False):
    return run_scenario(SCENARIOS / "reference" / f"{stem}.yaml", trace=trace)


def _arm(result, strategy: str, var: str) -> float:
    return float(result.outcomes[var].sel(strategy=strategy).mean("draw"))


def test_dmhee_exact(ref):
    r = ref["dmhee_exact"]
    res = _run("hiv_chancellor_1997", trace=True)
    pub, rep = r["reference"], r["reproduced_independently_R"]
    for arm in ("mono", "comb"):
        assert _arm(res, arm, "total_cost") == pytest.approx(rep[f"cost_{arm}"], rel=REL)
        assert _arm(res, arm, "total_cost") == pytest.approx(pub[f"cost_{arm}"], abs=1e-7)
        assert _arm(res, arm, "life_years") == pytest.approx(rep[f"ly_{arm}"], rel=REL)
    icer = float(res.table["icer"].sel(strategy="comb"))
    assert icer == pytest.approx(rep["icer"], rel=REL)
    assert round(icer) == 6276  # the book's figure
    trace = res.outcomes["trace"].isel(draw=0)
    np.testing.assert_allclose(trace.sel(strategy="mono").values[:6], r["trace_mono_first6"], rtol=REL)
    np.testing.assert_allclose(trace.sel(strategy="comb").values[:6], r["trace_comb_first6"], rtol=REL)
    np.testing.assert_allclose(trace.sel(strategy="mono").values[20], r["trace_mono_cycle20"], rtol=REL)
    np.testing.assert_allclose(trace.sel(strategy="comb").values[20], r["trace_comb_cycle20"], rtol=REL)


def test_lshtm_discounted(ref):
    r = ref["lshtm_3p5pct"]
    res = _run("hiv_chancellor_1997_lshtm")
    rep, pub = r["reproduced_independently_R"], r["reference"]
    for arm in ("mono", "comb"):
        cost_u = float(res.outcomes["costs_undiscounted"].sel(strategy=arm).sum("category").mean())
        assert _arm(res, arm, "total_cost") == pytest.approx(rep[arm]["dc"], rel=REL)
        assert cost_u == pytest.approx(rep[arm]["uc"], rel=REL)
        assert _arm(res, arm, "life_years") == pytest.approx(rep[arm]["dl"], rel=REL)
        assert _arm(res, arm, "life_years_undiscounted") == pytest.approx(rep[arm]["ul"], rel=REL)
    t = res.table.sel(strategy="comb")
    assert float(t["inc_cost"]) == pytest.approx(pub["inc_cost"], rel=REL)
    assert float(t["inc_effect"]) == pytest.approx(pub["inc_ly"], rel=REL)
    assert float(t["icer"]) == pytest.approx(pub["icer_per_ly"], rel=REL)
    assert _arm(res, "mono", "total_cost") == pytest.approx(pub["disc_cost_mono"], abs=0.005)


def test_heemod_vignette(ref):
    r = ref["heemod_vignette_homogeneous"]
    res = _run("hiv_chancellor_1997_heemod")
    rep, pub = r["reproduced_independently_R"], r["reference"]
    n = r["cohort_size"]
    for arm in ("mono", "comb"):
        costs = res.outcomes["costs"].sel(strategy=arm).mean("draw")
        assert float(costs.sel(category="health")) * n == pytest.approx(rep[arm]["cost_health"], rel=REL)
        assert float(costs.sel(category="drugs")) * n == pytest.approx(rep[arm]["cost_drugs"], rel=REL)
        assert _arm(res, arm, "total_cost") * n == pytest.approx(pub[arm]["cost_total"], abs=0.5)
        assert _arm(res, arm, "life_years") * n == pytest.approx(rep[arm]["life_year"], rel=REL)
    assert float(res.table["icer"].sel(strategy="comb")) == pytest.approx(pub["icer_per_ly"], abs=0.005)
