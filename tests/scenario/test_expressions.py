"""Tests for vbhc_model.scenario.expressions: evaluation, helpers, refusals, limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vbhc_model.errors import ExpressionError
from vbhc_model.model.powers import PowerMemo
from vbhc_model.scenario.expressions import (
    BUILTIN_FUNCTIONS,
    Expression,
    check_names,
    parse_expression,
)

RNG = np.random.default_rng(12345)
A = RNG.uniform(0.1, 0.9, 5)
B = RNG.uniform(0.1, 0.9, 5)
C3 = np.array([[0.5], [1.0], [2.0]])  # shape (3, 1): broadcasts with (5,) to (3, 5)
ENV = {"a": A, "b": B, "c": C3}


def ev(text, env=ENV, functions=None):
    return parse_expression(text).evaluate(env, functions)


# ---------------------------------------------------------------- arithmetic and logic
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * 2", A + B * 2),
        ("(a + b) * 2", (A + B) * 2),
        ("a - b - 1", (A - B) - 1),
        ("a / b / 2", (A / B) / 2),
        ("-a ** 2", -(A**2)),
        ("2 ** 3 ** 0.5", 2 ** (3**0.5)),
        ("a ** b", A**B),
        ("a % 0.3", np.remainder(A, 0.3)),
        ("+a - -b", A + B),
        ("1 - exp(-a * 2)", 1 - np.exp(-A * 2)),
    ],
)
def test_arithmetic_and_precedence(text, expected):
    np.testing.assert_allclose(ev(text), expected, rtol=1e-15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a < b", A < B),
        ("a <= b", A <= B),
        ("a > b", A > B),
        ("a >= b", A >= B),
        ("a == a", np.ones(5, bool)),
        ("a != b", A != B),
        ("0.3 < a < 0.7", (A > 0.3) & (A < 0.7)),
        ("a < b and b > 0.5", (A < B) & (B > 0.5)),
        ("a < b or b > 0.5", (A < B) | (B > 0.5)),
        ("not a < b", ~(A < B)),
        ("a > 0.5 and b > 0.2 and a < 0.8", (A > 0.5) & (B > 0.2) & (A < 0.8)),
    ],
)
def test_comparisons_and_logic(text, expected):
    out = ev(text)
    assert out.dtype == np.float64  # bool results come back as 1.0/0.0
    np.testing.assert_array_equal(out, expected.astype(float))


def test_bools_count_as_numbers_in_arithmetic():
    np.testing.assert_array_equal(ev("(a > 0.5) + (b > 0.5)"), (A > 0.5) * 1.0 + (B > 0.5))
    np.testing.assert_array_equal(ev("(a > 0.5) - (b > 0.5)"), (A > 0.5) * 1.0 - (B > 0.5))
    np.testing.assert_allclose(ev("exp(a > 0.5)"), np.exp((A > 0.5) * 1.0))


def test_where_and_conditional():
    expected = np.where(A < B, A * 2, B)
    np.testing.assert_array_equal(ev("where(a < b, a * 2, b)"), expected)
    np.testing.assert_array_equal(ev("a * 2 if a < b else b"), expected)
    cycle = np.arange(5)
    out = ev("where(cycle <= 2, p * rr, p)", {"cycle": cycle, "p": 0.1, "rr": 0.5})
    np.testing.assert_allclose(out, [0.05, 0.05, 0.05, 0.1, 0.1])


def test_broadcasting_with_column():
    out = ev("a * c + b")
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out, A * C3 + B)
    np.testing.assert_allclose(ev("where(c > 0.7, a, b)"), np.where(C3 > 0.7, A, B))
    np.testing.assert_allclose(ev("max(a, c, 1.5)"), np.maximum(np.maximum(A, C3), 1.5))


#: Expressions with a power, and the same computed with numpy's ``**`` (pow throughout).
_POWERS = {
    "rrr * decline ** (cycle - 1)":  # a per-draw base, an exponent over cycles
        lambda c, k, s, g, d, r: r * d ** (c - 1),
    "(cycle - 1) ** g - cycle ** g":  # a base over cycles, an exponent over draws
        lambda c, k, s, g, d, r: (c - 1) ** g - c ** g,
    "(cycle - 4) ** g":  # negative bases in some cycles only
        lambda c, k, s, g, d, r: (c - 4) ** g,
    "(cycle + k) ** g":  # a base over cycles and sub-states
        lambda c, k, s, g, d, r: (c + k) ** g,
    "s ** g":  # 0, -0, 1, inf, nan and ordinary bases over cycles
        lambda c, k, s, g, d, r: s ** g,
    "decline ** g":  # both over draws, one draw's base negative
        lambda c, k, s, g, d, r: d ** g,
}


@pytest.mark.parametrize("text", list(_POWERS))
@pytest.mark.parametrize("memo", [False, True])
def test_a_power_does_not_depend_on_which_draws_and_cycles_are_evaluated_with_it(text, memo):
    # pow and exp(b * log a) differ in the last bits; which one a value gets must not depend
    # on the chunk of draws or the block of cycles it is evaluated in.
    e = parse_expression(text)
    cycle = np.arange(1.0, 31.0)[:, None, None]
    k = np.array([[0.0], [0.5], [2.0]])
    special = np.resize([0.0, -0.0, 1.0, np.inf, np.nan, 2.5, -2.0, 0.3], 30)[:, None, None]
    n = 600
    g = RNG.uniform(0.3, 3.0, n)
    g[:4] = [0.0, -1.0, np.inf, np.nan]  # pow's special exponents
    decline = RNG.uniform(0.5, 1.0, n)
    decline[7] = -0.9
    rrr = RNG.uniform(0.1, 0.9, n)
    shape = (30, 3 if "k" in text else 1, n)

    def run(cycles: slice, draws: slice) -> np.ndarray:
        env = {"cycle": cycle[cycles], "k": k, "s": special[cycles], "g": g[draws],
               "decline": decline[draws], "rrr": rrr[draws]}
        out = e.evaluate(env, power=PowerMemo() if memo else None)
        return np.broadcast_to(out, (len(cycle[cycles]), shape[1], len(g[draws])))

    whole = run(slice(None), slice(None))
    for cycles in (slice(0, 7), slice(7, 8), slice(8, 30)):
        for draws in (slice(0, 8), slice(8, 300), slice(300, n)):
            np.testing.assert_array_equal(run(cycles, draws), whole[cycles, :, draws])
    # Bases that are not finite and positive, or are 1, get pow's values exactly (1 ** nan
    # and x ** 0 are 1, (-0.0) ** -1 is -inf); the others pow's to a few units in the last
    # place.
    with np.errstate(all="ignore"):
        reference = np.broadcast_to(_POWERS[text](cycle, k, special, g, decline, rrr), shape)
    np.testing.assert_allclose(whole, reference, rtol=1e-13, equal_nan=True)
    if text == "s ** g":
        exact = ~(special > 0) | (special == 1) | np.isinf(special)
        np.testing.assert_array_equal(whole[exact[:, 0, 0]], reference[exact[:, 0, 0]])


def test_scalars_return_float_and_ints_become_floats():
    assert ev("2 + 3", {}) == 5.0 and type(ev("2 + 3", {})) is float
    assert type(ev("x * 2", {"x": 0.5})) is float
    assert ev("x / y", {"x": 1, "y": 2}) == 0.5  # Python ints in env: true division
    out = ev("n ** 40", {"n": np.array([10])})  # integer arrays become floats: no overflow
    assert out.dtype == np.float64 and out[0] == pytest.approx(1e40)


def test_bare_name_result_is_a_copy():
    x = np.arange(3.0)
    out = ev("x", {"x": x})
    out[0] = 99.0
    assert x[0] == 0.0


def test_nan_and_inf_are_not_errors_at_evaluation():
    out = ev("log(x) / y", {"x": np.array([-1.0, 1.0]), "y": np.array([1.0, 0.0])})
    assert np.isnan(out[0]) and np.isnan(out[1])  # log(1)/0 = 0/0 = nan
    assert ev("1 / y", {"y": 0.0}) == math.inf


# ---------------------------------------------------------------- builtin helpers
P = np.array([0.0, 0.01, 0.2, 0.5, 0.9])
R = np.array([0.0, 0.01, 0.3, 1.0, 3.0])


with np.errstate(divide="ignore"):  # logit(0) = -inf is expected
    HELPER_CASES = [
        ("exp(r)", np.exp(R)),
        ("log(p + 1)", np.log(P + 1)),
        ("log1p(p)", np.log1p(P)),
        ("expm1(r)", np.expm1(R)),
        ("sqrt(r)", np.sqrt(R)),
        ("abs(p - 0.5)", np.abs(P - 0.5)),
        ("floor(r * 2)", np.floor(R * 2)),
        ("ceil(r * 2)", np.ceil(R * 2)),
        ("min(p, r)", np.minimum(P, R)),
        ("min(p, r, 0.1)", np.minimum(np.minimum(P, R), 0.1)),
        ("max(p, r)", np.maximum(P, R)),
        ("clip(r, 0.1, 1)", np.clip(R, 0.1, 1)),
        ("logit(p)", np.log(P / (1 - P))),
        ("expit(r)", 1 / (1 + np.exp(-R))),
        ("expit(logit(p))", P),
        ("odds(p)", P / (1 - P)),
        ("rate_to_prob(r)", 1 - np.exp(-R)),
        ("rate_to_prob(r, 0.5)", 1 - np.exp(-R * 0.5)),
        ("prob_to_rate(p)", -np.log(1 - P)),
        ("prob_to_rate(p, 0.5)", -np.log(1 - P) / 0.5),
        ("rate_to_prob(prob_to_rate(p, 2), 2)", P),
        ("prob_to_prob(p, 12, 1)", 1 - (1 - P) ** (1 / 12)),
        ("prob_to_prob(p, 1, 5)", 1 - (1 - P) ** 5),
        ("apply_rr(p, 0.7)", P * 0.7),
        ("apply_hr(p, 0.7)", 1 - (1 - P) ** 0.7),
        ("apply_or(p, 1.8)", (P / (1 - P)) * 1.8 / (1 + (P / (1 - P)) * 1.8)),
    ]


@pytest.mark.parametrize(("text", "expected"), HELPER_CASES)
def test_helpers_match_formulas(text, expected):
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(ev(text, {"p": P, "r": R}), expected, rtol=1e-12, atol=1e-15)


def test_helper_edge_values():
    assert ev("apply_or(1, 2)", {}) == 1.0
    assert ev("prob_to_prob(1, 1, 0.5)", {}) == 1.0
    assert ev("logit(0)", {}) == -math.inf
    assert set(BUILTIN_FUNCTIONS) >= {"exp", "where", "apply_hr", "prob_to_prob", "min"}


def test_user_functions_come_first_and_are_checked_at_call_time():
    table = {"mr_female": lambda age: age / 100.0, "exp": lambda x: x + 1000}
    assert ev("mr_female(age + 1)", {"age": 59}, table) == 0.6
    assert ev("exp(1)", {}, table) == 1001.0  # a user function may stand in for a builtin
    with pytest.raises(ExpressionError, match="function 'mr_female' takes 1 argument, got 2"):
        ev("mr_female(1, 2)", {}, table)
    with pytest.raises(ExpressionError, match="unknown function 'mr_femal'; did you mean"):
        ev("mr_femal(1)", {}, table)


def test_unknown_name_at_evaluation():
    with pytest.raises(
        ExpressionError, match="unknown name 'p_reponse'; did you mean 'p_response'"
    ):
        ev("p_reponse * 2", {"p_response": 0.1})


# ---------------------------------------------------------------- names, functions, constants
def test_names_functions_is_constant():
    e = parse_expression("where(cycle <= 2, apply_rr(p_AB, rr), lookup(age)) + exp(-x)")
    assert isinstance(e, Expression)
    assert e.names == {"cycle", "p_AB", "rr", "age", "x"}
    assert e.functions == {"where", "apply_rr", "lookup", "exp"}
    assert not e.is_constant
    c = parse_expression("exp(-0.05) * 2")
    assert c.is_constant and c.names == frozenset()
    assert c.evaluate({}) == pytest.approx(2 * math.exp(-0.05))
    assert parse_expression(" 1 - 0.25 ").evaluate({}) == 0.75
    assert parse_expression(3).evaluate({}) == 3.0 and parse_expression(0.1).text == "0.1"


def test_expression_is_immutable_and_keeps_text():
    e = parse_expression("a +\n b")
    assert e.text == "a +\n b"
    with pytest.raises(AttributeError):
        e.text = "x"  # type: ignore[misc]
    assert e == parse_expression("a +\n b") and hash(e) == hash(parse_expression("a +\n b"))


def test_check_names_suggests_closest():
    e = parse_expression("p_reponse * exq(x) + lookp(age) + exp")
    msgs = check_names(e, ["p_response", "x", "age"], ["lookup"])
    assert "unknown name 'p_reponse'; did you mean 'p_response'?" in msgs
    assert "unknown function 'exq'; did you mean 'exp'?" in msgs
    assert "unknown function 'lookp'; did you mean 'lookup'?" in msgs
    assert any(m.startswith("unknown name 'exp'; 'exp' is a function") for m in msgs)
    assert check_names("exp(x) + lookup(age)", ["x", "age"], ["lookup"]) == []
    assert check_names("zzz", ["p_response"], []) == ["unknown name 'zzz'"]


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x.y", "attribute access 'x.y' is not allowed"),
        ("np.exp(1)", "only plain function names can be called, not 'np.exp'"),
        ("x[0]", "subscript 'x\\[0\\]' is not allowed"),
        ("lambda x: x", "lambda 'lambda x: x' is not allowed"),
        ("'abc'", "string \"'abc'\" is not allowed"),
        ("f'{x}'", "f-string"),
        ("[x for x in y]", "comprehension"),
        ("[1, 2]", "list '\\[1, 2\\]' is not allowed"),
        ("(1, 2)", "tuple"),
        ("{1: 2}", "dict"),
        ("{1}", "set"),
        ("(y := 2)", "assignment expression"),
        ("await x", "await"),
        ("f(1)(2)", "only plain function names can be called"),
        ("exp(x=1)", "keyword argument 'x=' in 'exp\\(x=1\\)' is not allowed"),
        ("f(**k)", "'\\*\\*' argument"),
        ("f(*a)", "starred argument '\\*a' is not allowed"),
        ("__import__(1)", "names starting with '_' are not allowed"),
        ("_x + 1", "names starting with '_' are not allowed"),
        ("a ^ 2", "operator '\\^' .* use '\\*\\*' for powers"),
        ("a // 2", "operator '//'"),
        ("a & b", "operator '&'"),
        ("a is b", "operator 'is'"),
        ("a in b", "operator 'in'"),
        ("True", "'True' is not allowed"),
        ("1j", "complex number '1j' is not allowed"),
        ("a # comment", "'#' is not allowed"),
        ("", "empty expression"),
        ("1 +", "not a valid expression: invalid syntax"),
        ("x = 1", "not a valid expression: .* at column 3"),
        ("exp(1, 2)", "function 'exp' takes 1 argument, got 2"),
        ("min(1)", "function 'min' takes at least 2 arguments, got 1"),
        ("rate_to_prob(1, 2, 3)", "function 'rate_to_prob' takes 1 or 2 arguments, got 3"),
        ("where(a, b)", "function 'where' takes 3 arguments, got 2"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse_expression(text)


def test_unknown_function_is_not_a_parse_error():
    e = parse_expression("lookup(1, 2, 3)")
    assert e.functions == {"lookup"}


@pytest.mark.parametrize(
    "text", ["9**9**9", "1/0", "0/0", "1e999", "(-8) ** 0.5", "exp(1) * 1e999", "2 ** 10000"]
)
def test_non_finite_constants(text):
    with pytest.raises(ExpressionError, match="non-finite"):
        parse_expression(text)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 10**400, True, None, [1]])
def test_bad_non_text_values(value):
    with pytest.raises(ExpressionError):
        parse_expression(value)


def test_size_limits():
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("(" * 10000)
    with pytest.raises(ExpressionError, match="too long \\(3000 characters"):
        parse_expression(" + ".join(["a"] * 750)[:3000].ljust(3000))
    with pytest.raises(ExpressionError, match="not a valid expression|nested too deeply"):
        parse_expression("(" * 900 + "1" + ")" * 900)  # the parser's own limit
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("-" * 1999 + "1")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("f(" * 101 + "x" + ")" * 101)
    assert parse_expression("f(" * 100 + "x" + ")" * 100).functions == {"f"}
    with pytest.raises(ExpressionError, match="too large"):
        parse_expression("f(" + ", ".join(["a"] * 600) + ")")


# ---------------------------------------------------------------- property test
NAMES = {"a": RNG.uniform(-3, 3, 7), "b": RNG.uniform(-3, 3, 7)}
NAMES["b"][0] = 0.0  # make division by zero reachable


def _leaf():
    consts = st.floats(-100, 100, allow_nan=False).map(lambda v: (repr(v), lambda i, v=v: v))
    names = st.sampled_from(["a", "b"]).map(lambda n: (n, lambda i, n=n: float(NAMES[n][i])))
    return consts | names


def _pydiv(x, y):
    if y == 0:
        return (
            math.nan
            if x == 0 or math.isnan(x)
            else math.copysign(math.inf, x) * (math.copysign(1, y))
        )
    return x / y


_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y, "/": _pydiv}


def _combine(children):
    def make(args):
        (lt, lf), op, (rt, rf) = args
        return f"({lt} {op} {rt})", lambda i: _OPS[op](lf(i), rf(i))

    return st.tuples(children, st.sampled_from(list(_OPS)), children).map(make)


def _safe(f, i):
    try:
        return f(i)
    except OverflowError:
        return math.inf


@settings(max_examples=300, deadline=None)
@given(st.recursive(_leaf(), _combine, max_leaves=12))
def test_property_matches_python(expr):
    text, f = expr
    try:
        e = parse_expression(text)
    except ExpressionError as exc:  # a constant part was folded to inf/nan
        assert "non-finite" in str(exc)
        return
    out = np.broadcast_to(e.evaluate(NAMES), (7,))
    with np.errstate(all="ignore"):
        expected = np.array([_safe(f, i) for i in range(7)])
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_where_with_one_answer_everywhere_is_a_broadcast_of_it():
    """A block of cycles all inside (or all after) a programme: the chosen branch, as a
    read-only view that does not vary along the cycles (the model builder writes such a
    cell once per block)."""
    from vbhc_model.scenario.expressions import _where

    cycles = np.arange(4.0, 10.0)[:, None, None]
    after = np.array([0.1, 0.2, 0.3])
    x = _where(cycles <= 3, 0, after)
    assert x.shape == (6, 1, 3) and x.strides[0] == 0 and not x.flags.writeable
    np.testing.assert_array_equal(x, np.where(cycles <= 3, 0, after))
    assert x.dtype == np.where(cycles <= 3, 0, after).dtype
    mixed = _where(np.arange(1.0, 7.0)[:, None, None] <= 3, 0, after)
    np.testing.assert_array_equal(mixed, np.where(np.arange(1.0, 7.0)[:, None, None] <= 3, 0, after))
