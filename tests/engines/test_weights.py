"""Within-cycle weights given row by row (``within_cycle_correction: {weights: ...}``).

A list equal to the trapezoid's (0.5, 1, ..., 1, 0.5) or Simpson's ((1, 4, 2, ..., 4, 1) / 3)
weights, or an expression of the row ``k`` and ``n`` giving them, reproduces the named rule;
bad weights are refused with file, line and key (tests/data/bad_scenarios/weights_*.yaml run
through ``validate`` and ``run`` by tests/scenario/test_bad_scenarios.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT
from vbhc_model.engines.corrections import quadrature_terms
from vbhc_model.errors import ScenarioError
from vbhc_model.parameters.sampling import sample_draws
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario

SMALL = ROOT / "tests" / "data" / "stepped" / "small.yaml"  # n = 10, ages, stepped care
HIV = ROOT / "scenarios" / "reference" / "hiv_chancellor_1997.yaml"  # n = 20
OUTPUTS = ("total_cost", "costs", "qalys", "life_years", "clinician_hours", "cycle_costs",
           "cycle_qalys")
TRAPEZOID_EXPR = "where((k == 0) or (k == n), 0.5, 1)"
SIMPSON_EXPR = "where((k == 0) or (k == n), 1, where(k % 2 == 1, 4, 2)) / 3"


def trapezoid(n: int) -> list[float]:
    return [0.5] + [1.0] * (n - 1) + [0.5]


def simpson(n: int) -> list[float]:
    return [1 / 3] + [4 / 3 if k % 2 else 2 / 3 for k in range(1, n)] + [1 / 3]


def _run(sc, correction, draws):
    return simulate(sc.with_settings(within_cycle_correction=correction), draws, per_cycle=True)


@pytest.mark.parametrize("path", [SMALL, HIV], ids=["stepped_small", "hiv"])
@pytest.mark.parametrize("named, weights, rtol", [
    ("trapezoidal", trapezoid, 0.0), ("trapezoidal", TRAPEZOID_EXPR, 0.0),
    ("simpson", simpson, 1e-12), ("simpson", SIMPSON_EXPR, 1e-12),
], ids=["trapezoid_list", "trapezoid_expr", "simpson_list", "simpson_expr"])
def test_weights_reproduce_the_named_rule(path, named, weights, rtol):
    sc = load_scenario(path)
    n = sc.settings.n_cycles
    draws = sample_draws(sc, 8, seed=11)
    ref = _run(sc, named, draws)
    given = weights(n) if callable(weights) else weights
    out = _run(sc, {"weights": given}, draws)
    for var in OUTPUTS:
        if var not in ref:
            continue
        if rtol == 0.0:  # the trapezoid's weights are the same floats: bit for bit
            np.testing.assert_array_equal(out[var].values, ref[var].values, err_msg=var)
        else:
            np.testing.assert_allclose(out[var].values, ref[var].values, rtol=rtol, atol=1e-12,
                                       err_msg=var)
    assert out.attrs["within_cycle_correction"].startswith("weights ")
    # and it is not the default rule
    assert not np.allclose(_run(sc, "none", draws)["total_cost"].values,
                           out["total_cost"].values)


def test_weights_reproduce_trapezoidal_in_the_microsimulation():
    sc = load_scenario(SMALL).with_settings(engine="microsim", patients=500)
    draws = sample_draws(sc, 3, seed=2)
    ref = _run(sc, "trapezoidal", draws)
    out = _run(sc, {"weights": TRAPEZOID_EXPR}, draws)
    for var in ("total_cost", "qalys", "life_years"):
        np.testing.assert_array_equal(out[var].values, ref[var].values, err_msg=var)


def test_simpson_with_an_odd_number_of_cycles_as_weights():
    # Simpson's 1/3 rule on rows 0..n-1 and the trapezoid on the last cycle: a variant some
    # tutorials use when n is odd, which 'simpson' itself refuses.
    odd = ("where(k == n, 0.5, where(k == n - 1, 1/3 + 0.5, where(k == 0, 1/3, "
           "where(k % 2 == 1, 4/3, 2/3))))")
    sc = load_scenario(SMALL).with_settings(n_cycles=9)
    with pytest.raises(ValueError, match="even number of cycles"):
        quadrature_terms(9, 1.0, "simpson")
    sc = sc.with_settings(within_cycle_correction={"weights": odd})
    w = sc.settings.correction_weights()
    expected = np.array(simpson(8)[:-1] + [1 / 3 + 0.5, 0.5])
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    assert w.sum() == pytest.approx(9, abs=1e-12)  # a constant integrates to n cycles
    out = simulate(sc, sample_draws(sc, 2, seed=1))
    assert np.isfinite(out["qalys"].values).all()


def test_a_constant_payoff_totals_n_cycles_of_it():
    # any weights that pass the checks count a constant payoff n times, undiscounted
    n = 6
    w = np.array([0.2, 1.3, 0.9, 1.1, 1.0, 0.9, 0.6])
    assert w.sum() == pytest.approx(n)
    terms = quadrature_terms(n, 0.5, "weights", weights=w)
    assert terms.row.tolist() == list(range(n + 1))
    np.testing.assert_array_equal(terms.weight, w)
    np.testing.assert_array_equal(terms.time, np.arange(n + 1) * 0.5)
    with pytest.raises(ValueError, match="expected 7 weights"):
        quadrature_terms(n, 0.5, "weights", weights=w[:-1])


def test_an_expression_of_k_and_n_follows_n_cycles():
    sc = load_scenario(SMALL).with_settings(within_cycle_correction={"weights": TRAPEZOID_EXPR})
    assert sc.with_settings(n_cycles=12).settings.correction_weights().sum() == 12


def test_bad_weights_given_in_python_are_refused():
    sc = load_scenario(SMALL)
    with pytest.raises(ScenarioError, match=r"greater than or equal to 0"):
        sc.with_settings(within_cycle_correction={"weights": [0.5, -1, 0.5]})
    with pytest.raises(ScenarioError, match=r"may use only k .* got 'age'"):
        sc.with_settings(within_cycle_correction={"weights": "age / 10"})


def test_the_odd_simpson_example_in_methods_md_is_checked():
    import re

    import yaml

    text = (ROOT / "docs" / "methods.md").read_text()
    block = re.search(r"```yaml\n(within_cycle_correction:.*?)```", text, re.S).group(1)
    correction = yaml.safe_load(block)["within_cycle_correction"]
    sc = load_scenario(SMALL).with_settings(n_cycles=9, within_cycle_correction=correction)
    assert sc.settings.correction_weights().sum() == pytest.approx(9, abs=1e-12)
