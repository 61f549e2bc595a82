"""Issue 11: finite or refused, located messages and untrusted files (the scenario side).

The hostile scenario files themselves are pinned in tests/data/bad_scenarios/ (hexadecimal
numbers, lookalike names, infinite parameters, overflowing costs and WTP, empty rows and
starting states, a samples file with trailing commas); these tests cover what a corpus file
cannot: accepted inputs, draws of a PSA, posterior files and paths.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from tests.conftest import SCENARIOS
from vbhc_model.cli import app
from vbhc_model.errors import ExpressionError, ScenarioError
from vbhc_model.scenario.expressions import (
    explain_nonfinite,
    non_ascii,
    nonfinite_draws,
    parse_expression,
)
from vbhc_model.scenario.loader import scenario_from_text

HIV = (SCENARIOS / "reference" / "hiv_chancellor_1997.yaml").read_text()
RR = '  rr_comb: {value: 0.509, source: "Chancellor 1997 (DMHEE Ex 2.5): relative risk of ' \
     'progression on combination therapy"}'


def _hiv(tmp_path, rr_line: str, name: str = "h.yaml"):
    assert RR in HIV
    path = tmp_path / name
    path.write_text(HIV.replace(RR, rr_line))
    return path


@pytest.mark.parametrize("text", ["0x15E", "0X10 + 1", "0o17", "0b101 * 2"])
def test_hexadecimal_octal_and_binary_literals_are_refused(text):
    with pytest.raises(ExpressionError, match="(hexadecimal|octal|binary) number .* not allowed"):
        parse_expression(text)


def test_decimal_numbers_with_leading_zeros_and_exponents_still_parse():
    assert parse_expression("0.5 + 0e0 + 1e-1 + 1E2").evaluate({}) == pytest.approx(100.6)


@pytest.mark.parametrize(("text", "expect"), [
    ("\uff50_AC * 2", r"'ｐ' \(FULLWIDTH LATIN SMALL LETTER P, U\+FF50\) looks like 'p'"),
    ("a \u2212 b", r"'−' \(MINUS SIGN, U\+2212\) is not ASCII"),
])
def test_non_ascii_in_expressions_is_refused_naming_the_character(text, expect):
    with pytest.raises(ExpressionError, match=expect):
        parse_expression(text)
    assert non_ascii("p_AC") is None


def test_a_lookalike_parameter_name_says_which_character():
    text = HIV.replace("  p_AC:", "  \uff50_AC:", 1)
    with pytest.raises(ScenarioError, match=r"not a valid name.*FULLWIDTH LATIN SMALL LETTER P"):
        scenario_from_text(text, "h.yaml")


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    # N2: YAML 1.1 reads 1e-1 as text; a distribution's numbers accept it as 0.1
    path = _hiv(tmp_path, "  rr_comb: {value: 5e-1, distribution: {type: gamma, mean: 5e-1, "
                          "se: 5E-2}, source: x}")
    sc = scenario_from_text(path.read_text(), str(path))
    assert sc.parameters["rr_comb"].distribution.model_dump()["mean"] == 0.5
    assert sc.parameters["rr_comb"].value.evaluate({}) == 0.5


@pytest.mark.parametrize("value", ["0x10", "010", "0b11", "1:30"])
def test_yaml_integers_that_are_not_decimal_are_refused_with_their_line(value):
    text = HIV.replace(RR, f"  rr_comb: {{value: {value}, source: x}}")
    with pytest.raises(ScenarioError, match=rf"line 46: parameters\.rr_comb\.value: '{value}' is "
                                            r"a .* number.*, which YAML reads as \d+"):
        scenario_from_text(text, "h.yaml")


def test_hidden_infinity_is_found_in_the_draws_it_happens_and_not_in_an_unchosen_branch():
    e = parse_expression("rate_to_prob(n / (rr - 0.5))")
    bad = nonfinite_draws(e, {"n": 3.0, "rr": np.array([0.4, 0.5, 0.6])})
    assert bad.tolist() == [False, True, False]
    assert nonfinite_draws(parse_expression("where(x > 0, 1 / x, 0)"),
                           {"x": np.array([0.0, 2.0])}) is None
    assert explain_nonfinite(e, {"n": 3.0, "rr": 0.5}) == "'n / (rr - 0.5)' divides by zero"


def test_validate_draws_finds_a_non_finite_parameter_in_a_sampled_draw(tmp_path):
    # base case fine (log(0.059)); some normal draws of rr_comb fall below 0.45: log of < 0
    path = _hiv(tmp_path, "  rr_comb: {value: 0.509, distribution: {type: normal, mean: 0.509, "
                          "sd: 0.05}, source: x}\n  rr_log: {value: 0.5 + 0 * log(rr_comb - 0.45),"
                          " source: x}")
    ok = CliRunner().invoke(app, ["validate", str(path)])
    assert ok.exit_code == 0, ok.output
    result = CliRunner().invoke(app, ["validate", str(path), "--draws", "200"])
    assert result.exit_code == 2, result.output
    assert "parameters.rr_log.value: 0.5 + 0 * log(rr_comb - 0.45) is nan" in result.stderr
    assert "'log(rr_comb - 0.45)' is nan (rr_comb - 0.45 = -" in result.stderr
    assert "in sampled draw" in result.stderr and "Traceback" not in result.output


def _posterior(path, **variables):
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in variables.items()},
                    coords={"chain": [0, 1], "draw": np.arange(3)})
    ds.to_netcdf(path, group="posterior", engine="h5netcdf")


def test_posterior_draws_outside_the_parameters_domain_are_refused(tmp_path):
    # N10: a relative risk of -1 would otherwise be clipped by a max(0, ...) downstream
    _posterior(tmp_path / "fit.nc", rr_x=np.array([[0.5, -1.0, 0.6], [0.5, 0.4, 0.6]]),
               label=np.array([["a", "b", "c"]] * 2))
    path = _hiv(tmp_path, "  rr_comb: {value: 0.509, posterior: {file: fit.nc, variable: "
                          "rr_x}, source: x}")
    with pytest.raises(ScenarioError, match=r"line 46: parameters\.rr_comb\.posterior: 1 of 6 "
                                            r"posterior draws of 'rr_x' in 'fit.nc' are outside "
                                            r">= 0.*draw 1: -1"):
        scenario_from_text(path.read_text(), str(path))
    path = _hiv(tmp_path, "  rr_comb: {value: 0.509, posterior: {file: fit.nc, variable: "
                          "label}, source: x}")
    with pytest.raises(ScenarioError, match=r"variable 'label' holds text, not numbers"):
        scenario_from_text(path.read_text(), str(path))


def test_files_outside_the_folder_need_an_explicit_path_and_are_noted(tmp_path):
    (tmp_path / "boot.csv").write_text("rr\n0.5\n0.6\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    path = _hiv(inner, "  rr_comb: {value: 0.509, samples: {file: ../boot.csv, column: rr}, "
                       "source: x}")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert (f"note: {path}, line 46: parameters.rr_comb.samples.file: reads "
            f"{(tmp_path / 'boot.csv').resolve()}, outside the scenario's folder") in result.output
    (inner / "link.csv").symlink_to(tmp_path / "boot.csv")
    path = _hiv(inner, "  rr_comb: {value: 0.509, samples: {file: link.csv, column: rr}, "
                       "source: x}")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "'link.csv' leads outside the scenario's folder" in result.stderr
    path = _hiv(inner, "  rr_comb: {value: 0.509, samples: {file: link2.csv, column: rr}, "
                       "source: x}")
    (inner / "link2.csv").symlink_to(inner / "boot2.csv")
    (inner / "boot2.csv").write_text("rr\n0.5\n0.6\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and "note" not in result.output, result.output


def test_a_huge_wtp_is_refused_on_the_command_line_too(tmp_path):
    result = CliRunner().invoke(app, ["dsa", str(SCENARIOS / "reference" / "thr_dmhee.yaml"),
                                      "--wtp", "1e308", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "--wtp must be a finite number >= 0 and at most 1e+10" in result.output
