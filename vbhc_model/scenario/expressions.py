"""A small, safe expression language for scenario files.

Formulas such as ``where(cycle <= 2, p_AB * rr, p_AB)`` are parsed once by
:func:`parse_expression` (with :mod:`ast`, accepting a whitelist of node types only; user text
never reaches ``eval``/``exec``/``compile``), compiled into nested closures, and evaluated many
times with numpy over arrays whose trailing axis is the draws. Semantics, elementwise throughout:

* numbers are floats (``2`` is ``2.0``): no unbounded integer arithmetic can happen;
* ``+ - * / ** %`` follow numpy (``(-8) ** 0.5`` is nan, ``1 / 0`` inf), evaluated under
  ``np.errstate(all="ignore")``: the caller checks results for nan/inf/range;
* comparisons give bools (chains ``a < b < c`` mean ``a < b and b < c``); bools used in
  arithmetic or passed to functions count as 1.0/0.0, and a bool result is returned as float;
* ``and``/``or``/``not`` are ``np.logical_*`` and ``a if c else b`` is ``np.where(c, a, b)``:
  every operand is evaluated (no short circuit);
* ``True``, ``False`` and ``None`` are refused (write 1 or 0, or a comparison);
* constant parts without names or calls are folded at parse time, and one that is not finite
  (``1/0``, ``9**9**9``, ``1e999``) is an error.

Rate/probability helpers follow Briggs, Claxton & Sculpher (2006), *Decision Modelling for
Health Economic Evaluation*, ch. 3, and Fleurence & Hollenbeak (2007), PharmacoEconomics 25:3.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import types
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from vbhc_model.errors import ExpressionError
from vbhc_model.suggest import did_you_mean

__all__ = ["BUILTIN_FUNCTIONS", "Expression", "check_names", "exp_log_applies",
           "explain_nonfinite", "non_ascii", "nonfinite_draws", "parse_expression", "power",
           "special_base"]

MAX_LENGTH = 2000  # characters
MAX_DEPTH = 100  # levels of nesting below the top node (a sum of n terms nests n deep)
MAX_NODES = 500  # names, numbers, operations and calls
_INF = float("inf")


# ---------------------------------------------------------------- builtin functions
def _where(cond, a, b):
    """``where(cond, a, b)``: ``a`` where ``cond`` is true (non-zero), else ``b``.

    When ``cond`` is the same everywhere (a block of cycles all inside or all after a
    programme), the chosen branch comes back as a read-only broadcast view (stride 0 where
    it does not vary), which later stages recognise as constant along those axes."""
    if isinstance(cond, np.ndarray) and cond.size > 1:
        chosen = a if cond.all() else b if not cond.any() else None
        if chosen is not None:
            shape = np.broadcast_shapes(np.shape(cond), np.shape(a), np.shape(b))
            dtype = np.result_type(a, b)
            return np.broadcast_to(np.asarray(chosen, dtype=dtype), shape)
    return np.where(cond, a, b)


def _clip(x, lo, hi):
    """``clip(x, lo, hi)``: ``x`` limited to ``[lo, hi]``."""
    return np.clip(x, lo, hi)


def _min(a, b, *rest):
    """``min(a, b, ...)``: elementwise minimum (nan propagates)."""
    return functools.reduce(np.minimum, rest, np.minimum(a, b))


def _max(a, b, *rest):
    """``max(a, b, ...)``: elementwise maximum (nan propagates)."""
    return functools.reduce(np.maximum, rest, np.maximum(a, b))


def logit(p):
    """Log-odds ``log(p / (1 - p))``, computed as ``log(p) - log1p(-p)``."""
    return np.log(p) - np.log1p(-p)


def expit(x):
    """Inverse logit ``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + np.exp(-x))


def odds(p):
    """Odds ``p / (1 - p)``."""
    return p / (1.0 - p)


def rate_to_prob(r, t=1.0):
    """Probability of an event within ``t`` at constant rate ``r``: ``1 - exp(-r * t)``."""
    return -np.expm1(-r * t)  # = 1 - exp(-r t), accurate for small rates


def prob_to_rate(p, t=1.0):
    """Constant rate giving probability ``p`` within ``t``: ``-log(1 - p) / t``."""
    return -np.log1p(-p) / t


def prob_to_prob(p, t_from, t_to):
    """Probability ``p`` over ``t_from`` as one over ``t_to`` (constant rate).

    ``1 - (1 - p) ** (t_to / t_from)``, i.e. ``rate_to_prob(prob_to_rate(p, t_from), t_to)``.
    """
    return -np.expm1(np.log1p(-p) * (t_to / t_from))


def apply_rr(p, rr):
    """Relative risk applied to a probability: ``p * rr`` (the caller checks ``[0, 1]``)."""
    return p * rr


def apply_hr(p, hr):
    """Hazard ratio applied to a probability: ``1 - (1 - p) ** hr`` (proportional hazards)."""
    return 1.0 - (1.0 - p) ** hr


def apply_or(p, or_):
    """Odds ratio applied to a probability: ``odds(p) * or_ / (1 + odds(p) * or_)``.

    Computed in the equal form ``p * or_ / (1 - p + p * or_)``, which is also right at p = 1.
    """
    return p * or_ / (1.0 - p + p * or_)


BUILTIN_FUNCTIONS: Mapping[str, Callable] = types.MappingProxyType({
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "min": _min, "max": _max,
    "where": _where, "clip": _clip, "logit": logit, "expit": expit, "odds": odds,
    "rate_to_prob": rate_to_prob, "prob_to_rate": prob_to_rate, "prob_to_prob": prob_to_prob,
    "apply_rr": apply_rr, "apply_hr": apply_hr, "apply_or": apply_or,
})  # fmt: skip


def _arity(f: Callable) -> tuple[int, float]:
    """(fewest, most) positional arguments; a ufunc's extra one would be `out`, so not counted."""
    if isinstance(f, np.ufunc):
        return f.nin, f.nin
    params = inspect.signature(f).parameters.values()
    positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    required = sum(p.default is p.empty for p in positional)
    return required, _INF if any(p.kind == p.VAR_POSITIONAL for p in params) else len(positional)


_ARITY = {name: _arity(f) for name, f in BUILTIN_FUNCTIONS.items()}


# ---------------------------------------------------------------- compiler
def _num(x):
    """Bools and integers as floats: numpy adds bools as logical or, and integers overflow."""
    if isinstance(x, float):  # the common case first (np.float64 is a float too)
        return x
    if isinstance(x, int):  # includes bool
        return float(x)
    if getattr(getattr(x, "dtype", None), "kind", "f") in "biu":
        return x.astype(np.float64)
    return x


def _lift(c):
    """A compiled node is a constant (folded) or a closure ``(env, fns, pw) -> value``."""
    return c if callable(c) else (lambda env, fns, pw: c)


def _call_user(name: str, f: Callable, args: list):
    try:
        return f(*args)
    except TypeError:  # only a wrong argument count is the expression's fault
        try:
            inspect.signature(f).bind(*args)
        except TypeError:
            n = len(args)
            params = inspect.signature(f).parameters.values()
            fixed = [p for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
            wanted = f"{len(fixed)} argument{'s' if len(fixed) != 1 else ''}"
            raise ExpressionError(
                f"function {name!r} takes {wanted}, got {n}"
            ) from None
        except ValueError:  # no signature to check against
            pass
        raise


def power(a, b):
    """``a ** b``, the rule of the compiled ``**`` node unless the caller passes its own
    (:meth:`Expression.evaluate`'s ``power``).

    When the base does not vary over the draws (the trailing axis: ``cycle``, ``time`` and
    expressions of them) and the exponent does (``cycle ** shape``, a Weibull hazard), as
    ``exp(b * log(a))``: the logarithm is then taken once per cycle and ``exp`` is several
    times cheaper than ``pow``. The two agree to a few units in the last place for a finite
    positive base other than 1; every other base (zero of either sign, negative, 1, infinite,
    nan) is left to ``pow``, whose special cases (``x ** 0`` is 1, ``1 ** nan`` is 1,
    ``(-0.0) ** -1`` is -inf) are then kept.

    The choice is made from the shapes (:func:`exp_log_applies`) and, per element, from the
    base's value (:func:`special_base`), never from how many draws or cycles are evaluated
    together, so that a draw's value is the same in any chunk and any block of cycles. A
    caller's rule (``vbhc_model.model.powers``) must make the same choices.

    Examples
    --------
    >>> import numpy as np
    >>> power(np.array([[2.0], [0.0]]), np.array([0.5, 2.0])).round(6).tolist()
    [[1.414214, 4.0], [0.0, 0.0]]
    """
    if not exp_log_applies(a, b):
        return np.power(a, b)
    special = special_base(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.exp(b * np.log(a))
        if special.any():
            out = np.where(special, np.power(a, b), out)
    return out


def exp_log_applies(a, b) -> bool:
    """True when :func:`power` computes ``a ** b`` as ``exp(b * log(a))`` (for the ordinary
    bases): ``a`` does not vary over the trailing (draw) axis and ``b`` does."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and (a.ndim == 0 or a.shape[-1] == 1) and b.ndim > 0 and b.shape[-1] > 1)


def special_base(a: np.ndarray) -> np.ndarray:
    """Bases whose power is left to ``pow``: not finite and positive, or exactly 1."""
    return ~(a > 0) | (a == 1) | np.isinf(a)


_power = power  # the default rule, by a name that Expression.evaluate's argument does not hide


_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
           ast.Div: np.true_divide, ast.Pow: power, ast.Mod: np.remainder,
           ast.UAdd: np.positive, ast.USub: np.negative, ast.Not: np.logical_not,
           ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
           ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}  # fmt: skip
# Operators Python has but the language refuses, with a hint at what was likely meant.
_REFUSED_OPS = {ast.BitXor: "'^'; use '**' for powers", ast.BitAnd: "'&'; use 'and'",
                ast.BitOr: "'|'; use 'or'", ast.Invert: "'~'; use 'not'",
                ast.FloorDiv: "'//'; use floor(a / b)", ast.LShift: "'<<'", ast.RShift: "'>>'",
                ast.MatMult: "'@'", ast.Is: "'is'; use '=='", ast.IsNot: "'is not'; use '!='",
                ast.In: "'in'", ast.NotIn: "'not in'"}  # fmt: skip
_REFUSED_NODES = {ast.Attribute: "attribute access", ast.Subscript: "subscript",
                  ast.ListComp: "comprehension", ast.SetComp: "comprehension",
                  ast.DictComp: "comprehension", ast.GeneratorExp: "comprehension",
                  ast.JoinedStr: "f-string", ast.NamedExpr: "assignment expression ':='",
                  ast.Starred: "starred expression", ast.YieldFrom: "yield"}  # fmt: skip


class _Compiler:
    """Checks an :mod:`ast` tree against the whitelist and turns it into closures."""

    def __init__(self, source: str):
        self.source = source
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def seg(self, node: ast.AST) -> str:
        return repr(ast.get_source_segment(self.source, node) or type(node).__name__)

    def compile(self, node: ast.expr):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            segment = ast.get_source_segment(self.source, node) or ""
            if isinstance(node, ast.Tuple) and re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d*)?", segment):
                raise ExpressionError(
                    f"{self.seg(node)} is not a number: write numbers without thousands "
                    "separators (1000, not 1,000)"
                )
            what = _REFUSED_NODES.get(type(node), type(node).__name__.lower())
            raise ExpressionError(f"{what} {self.seg(node)} is not allowed")
        return method(node)

    def op(self, op: ast.AST, node: ast.expr):
        if type(op) in _BINOPS:
            return _BINOPS[type(op)]
        symbol, _, hint = _REFUSED_OPS.get(type(op), repr(type(op).__name__)).partition(";")
        raise ExpressionError(
            f"operator {symbol} in {self.seg(node)} is not allowed{hint and ';'}{hint}"
        )

    def fold(self, node: ast.expr, fn, children: list):
        """``fn`` itself, or its value now when all ``children`` are constants."""
        if any(callable(c) for c in children):
            return fn
        with np.errstate(all="ignore"):
            value = fn({}, {}, power)
        if not np.isfinite(value):
            raise ExpressionError(f"{self.seg(node)} evaluates to a non-finite number")
        return value

    def check_name(self, name: str):
        if name.startswith("_"):  # keeps dunder tricks out, whatever may be added later
            raise ExpressionError(f"names starting with '_' are not allowed: {name!r}")

    def _Constant(self, node: ast.Constant):
        v = node.value
        if isinstance(v, bool) or v is None:
            raise ExpressionError(f"{self.seg(node)} is not allowed; write a number such as 1")
        if not isinstance(v, (int, float)):
            what = {str: "string", bytes: "string", complex: "complex number"}.get(type(v))
            raise ExpressionError(f"{what or 'constant'} {self.seg(node)} is not allowed")
        segment = ast.get_source_segment(self.source, node) or ""
        base = {"x": "hexadecimal", "o": "octal", "b": "binary"}.get(segment[1:2].lower())
        if segment.startswith("0") and base:
            raise ExpressionError(f"{base} number {self.seg(node)} is not allowed; write numbers "
                                  "in decimal")
        try:
            value = float(v)
        except OverflowError:  # an integer literal too large for a float
            value = _INF
        return self.fold(node, lambda env, fns, pw: value, [])

    def _Name(self, node: ast.Name):
        name = node.id
        self.check_name(name)
        self.names.add(name)

        def fn(env, fns, pw):
            try:
                return env[name]
            except KeyError:
                hint = did_you_mean(name, env, ignore_case=False)
                raise ExpressionError(f"unknown name {name!r}{hint}") from None

        return fn

    def _BinOp(self, node: ast.BinOp):
        op, kids = self.op(node.op, node), [self.compile(node.left), self.compile(node.right)]
        a, b = map(_lift, kids)
        if op is power:  # the caller's rule for powers (Expression.evaluate)
            return self.fold(
                node, lambda env, fns, pw: pw(_num(a(env, fns, pw)), _num(b(env, fns, pw))), kids
            )
        return self.fold(
            node, lambda env, fns, pw: op(_num(a(env, fns, pw)), _num(b(env, fns, pw))), kids
        )

    def _UnaryOp(self, node: ast.UnaryOp):
        op, kid = self.op(node.op, node), self.compile(node.operand)
        a = _lift(kid)
        return self.fold(node, lambda env, fns, pw: op(_num(a(env, fns, pw))), [kid])

    def _Compare(self, node: ast.Compare):
        ops = [self.op(o, node) for o in node.ops]
        kids = [self.compile(c) for c in [node.left, *node.comparators]]
        fs = [_lift(c) for c in kids]

        def fn(env, fns, pw):
            v = [_num(f(env, fns, pw)) for f in fs]  # a middle operand is evaluated once
            out = ops[0](v[0], v[1])
            for i in range(1, len(ops)):
                out = np.logical_and(out, ops[i](v[i], v[i + 1]))
            return out

        return self.fold(node, fn, kids)

    def _BoolOp(self, node: ast.BoolOp):
        op = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        kids = [self.compile(v) for v in node.values]
        fs = [_lift(c) for c in kids]
        return self.fold(
            node, lambda env, fns, pw: functools.reduce(op, [f(env, fns, pw) for f in fs]), kids
        )

    def _IfExp(self, node: ast.IfExp):
        kids = [self.compile(n) for n in (node.test, node.body, node.orelse)]
        c, a, b = map(_lift, kids)
        return self.fold(
            node,
            lambda env, fns, pw: np.where(
                c(env, fns, pw), _num(a(env, fns, pw)), _num(b(env, fns, pw))
            ),
            kids,
        )

    def _Call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(
                f"only plain function names can be called, not {self.seg(node.func)}"
            )
        name, n = node.func.id, len(node.args)
        self.check_name(name)
        if node.keywords:
            kw = node.keywords[0]
            what = "'**' argument" if kw.arg is None else f"keyword argument '{kw.arg}='"
            raise ExpressionError(
                f"{what} in {self.seg(node)} is not allowed; pass arguments by position"
            )
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ExpressionError(f"starred argument {self.seg(arg)} is not allowed")
        lo, hi = _ARITY.get(name, (0, _INF))
        if not lo <= n <= hi:
            takes = str(lo) if lo == hi else f"{lo} or {hi}" if hi < _INF else f"at least {lo}"
            plural = "s" * (hi != 1)
            raise ExpressionError(f"function {name!r} takes {takes} argument{plural}, got {n}")
        self.functions.add(name)
        args = [_lift(self.compile(a)) for a in node.args]
        builtin = BUILTIN_FUNCTIONS.get(name)

        def fn(env, fns, pw):
            f = fns.get(name, builtin) if fns else builtin  # user functions come first
            if f is None:
                hint = did_you_mean(name, fns or {}, ignore_case=False)
                raise ExpressionError(f"unknown function {name!r}{hint}")
            vals = [_num(a(env, fns, pw)) for a in args]
            return f(*vals) if f is builtin else _call_user(name, f, vals)

        return fn  # never folded: a user function may stand in for a builtin at evaluation


# ---------------------------------------------------------------- public API
@dataclass(frozen=True)
class Expression:
    """A parsed expression, to be evaluated many times; made by :func:`parse_expression`.

    Attributes
    ----------
    text : str
        The original text.
    names, functions : frozenset of str
        Free variable names referenced, and names of the functions called.
    is_constant : bool
        True when no names are referenced (functions may still be called).
    """

    text: str
    names: frozenset[str]
    functions: frozenset[str]
    _compiled: Any = field(repr=False, compare=False)
    _is_name: bool = field(default=False, repr=False, compare=False)

    @property
    def is_constant(self) -> bool:
        return not self.names

    def evaluate(
        self,
        env: Mapping[str, ArrayLike],
        functions: Mapping[str, Callable] | None = None,
        power: Callable[[Any, Any], Any] | None = None,
    ) -> np.ndarray | float:
        """Evaluate elementwise with numpy broadcasting.

        Parameters
        ----------
        env : Mapping of str to array_like
            Values of the names: floats or arrays whose shapes broadcast together.
        functions : Mapping of str to callable, optional
            Extra functions (e.g. lookup tables), looked up before :data:`BUILTIN_FUNCTIONS`;
            called with float positional arguments. Their result is returned uncopied.
        power : callable, optional
            ``power(a, b)`` -> ``a ** b``, used by every ``**`` that is not folded at parse
            time (default: :func:`power`). A caller may keep rows between evaluations
            (``vbhc_model.model.powers``); it must give the default's values.

        Returns
        -------
        float or numpy.ndarray
            A float for a scalar result, else a float array (nan/inf are not errors here).

        Raises
        ------
        ExpressionError
            An unknown name or function, or a user function given the wrong argument count.

        Examples
        --------
        >>> import numpy as np
        >>> e = parse_expression("where(cycle <= 2, p * rr, p)")
        >>> e.evaluate({"cycle": np.arange(1, 5), "p": 0.1, "rr": 0.5})
        array([0.05, 0.05, 0.1 , 0.1 ])
        >>> parse_expression("table(age) * 2").evaluate({"age": 3}, {"table": lambda a: a + 1})
        8.0
        """
        if not callable(self._compiled):
            return float(self._compiled)
        with np.errstate(all="ignore"):
            out = _num(self._compiled(env, functions or {}, power or _power))
        if np.ndim(out) == 0:
            return float(out)
        # A bare name would hand back the caller's own array: copy it, so results can be mutated.
        return np.array(out, dtype=float) if self._is_name else np.asarray(out, dtype=float)


def parse_expression(text: str | int | float) -> Expression:  # noqa: PYI041 (ints documented)
    """Parse and check an expression once, for fast repeated evaluation.

    Parameters
    ----------
    text : str or int or float
        The expression; a number (as YAML gives for ``p: 0.1``) is a constant.

    Returns
    -------
    Expression

    Raises
    ------
    ExpressionError
        Invalid syntax, anything outside the language (attributes, subscripts, strings,
        keyword arguments, ...), too long, deep or large, a builtin called with the wrong
        number of arguments, or a constant part that is not finite.

    Examples
    --------
    >>> e = parse_expression("1 - exp(-r_death * cycle_length)")
    >>> sorted(e.names), sorted(e.functions), e.is_constant
    (['cycle_length', 'r_death'], ['exp'], False)
    >>> round(e.evaluate({"r_death": 0.1, "cycle_length": 1.0}), 6)
    0.095163
    >>> parse_expression("2 ** 3").evaluate({})
    8.0
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError(f"expected an expression or a number, got {text!r}")
    if not isinstance(text, str):  # a number straight from YAML
        try:
            value = float(text)
        except OverflowError:
            value = _INF
        if not np.isfinite(value):
            shown = repr(text) if len(repr(text)) <= 30 else f"a {len(str(text))}-digit number"
            raise ExpressionError(f"{shown} is too large: not a finite number")
        return Expression(str(text), frozenset(), frozenset(), value)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text)} characters; max {MAX_LENGTH})")
    if "#" in text:  # a comment would silently drop the rest of the text
        raise ExpressionError(f"'#' is not allowed in {text!r}")
    odd = non_ascii(text)
    if odd:  # Python reads 'ｐ_AC' as 'p_AC' (NFKC): a lookalike would pass for the name
        raise ExpressionError(f"{odd}; expressions are written in ASCII")
    # YAML block scalars may span lines: line breaks and tabs are plain spaces here.
    source = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    indent = len(source) - len(source.lstrip())
    source = source.strip()
    if not source:
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if re.search(r"\d\s*%\s*$", source):
            raise ExpressionError(
                f"{text!r}: write percentages as fractions (10% is 0.1)"
            ) from None
        where = f" at column {exc.offset + indent}" if exc.offset else ""
        shown = text if len(text) <= 80 else f"{text[:60]}...{text[-15:]}"
        raise ExpressionError(f"not a valid expression: {exc.msg}{where} in {shown!r}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression is nested too deeply (over {MAX_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # e.g. null bytes
        raise ExpressionError(f"not a valid expression: {exc}") from None

    # Size limits, checked without recursion before the (recursive) compiler runs.
    count, stack = 0, [(tree.body, 0)]
    while stack:
        node, depth = stack.pop()
        count += isinstance(node, ast.expr)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested too deeply (over {MAX_DEPTH} levels)")
        stack.extend((c, depth + isinstance(c, ast.expr)) for c in ast.iter_child_nodes(node))
    if count > MAX_NODES:
        raise ExpressionError(f"expression is too large ({count} parts; max {MAX_NODES})")

    compiler = _Compiler(source)
    compiled = compiler.compile(tree.body)
    names, functions = frozenset(compiler.names), frozenset(compiler.functions)
    return Expression(text, names, functions, compiled, isinstance(tree.body, ast.Name))


def nonfinite_draws(expr: Expression, env: Mapping[str, ArrayLike],
                    functions: Mapping[str, Callable] | None = None) -> np.ndarray | None:
    """The draws (trailing axis) where a part of ``expr`` that the result depends on is not
    finite although its operands are (``rate_to_prob(n / zero)`` is 1, a finite number, only
    because ``n / zero`` is inf), or None when there are none. A part in the branch that
    ``where``/``if`` does not choose does not count (``where(x > 0, a / x, 0)`` at x = 0).

    Checks the result of :meth:`Expression.evaluate` with the same ``env``; cheap when no
    numpy floating-point error occurs (the common case), else it evaluates each part.

    Examples
    --------
    >>> e = parse_expression("rate_to_prob(n / zero)")
    >>> nonfinite_draws(e, {"n": 3.0, "zero": np.array([1.0, 0.0])}).tolist()
    [False, True]
    >>> nonfinite_draws(parse_expression("where(x > 0, 1 / x, 0)"), {"x": np.array([0.0])})
    """
    if not callable(expr._compiled):
        return None
    try:
        with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
            expr._compiled(env, functions or {}, _power)
        return None
    except (FloatingPointError, ExpressionError, TypeError, ValueError):
        pass
    found = _taint(expr, env, functions, explain=False)
    if found is None:
        return None
    mask = np.atleast_1d(found[0])
    return mask if mask.any() else None


def explain_nonfinite(expr: Expression, env: Mapping[str, float],
                      functions: Mapping[str, Callable] | None = None) -> str | None:
    """Where a non-finite number in ``expr`` at ``env`` (one value per name) comes from: its
    innermost part, on the path to the result, whose value is not finite although its
    operands are; or None.

    Examples
    --------
    >>> explain_nonfinite(parse_expression("rate_to_prob(n / zero) + 1"), {"n": 3, "zero": 0})
    "'n / zero' divides by zero"
    >>> explain_nonfinite(parse_expression("2 * log(u)"), {"u": 0.0})
    "'log(u)' is -inf (u = 0)"
    """
    found = _taint(expr, env, functions, explain=True)
    return None if found is None else found[1]


def _taint(expr: Expression, env, functions, explain: bool):
    """(mask of draws whose result depends on a part that turned non-finite, why) by
    evaluating each part of ``expr`` on its own; None if the text cannot be re-read."""
    source = " ".join(expr.text.split()) if isinstance(expr.text, str) else str(expr.text)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return None
    functions = functions or {}

    def value(node: ast.AST):
        segment = ast.get_source_segment(source, node)
        with np.errstate(all="ignore"):
            return np.asarray(parse_expression(segment).evaluate(env, functions), dtype=float)

    def scalar(x) -> float:
        return float(np.asarray(x).reshape(-1)[0])

    def walk(node: ast.AST):
        """(value, tainted, why): why is the innermost culprit's description (explain)."""
        v = value(node)
        if isinstance(node, (ast.Name, ast.Constant)):
            bad = ~np.isfinite(v)
            why = f"{ast.get_source_segment(source, node)} is {scalar(v):g}" \
                if explain and bad.any() else None
            return v, bad, why
        choose = isinstance(node, ast.IfExp) or (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "where" and len(node.args) == 3)
        if isinstance(node, ast.IfExp):
            kids = [node.test, node.body, node.orelse]
        elif isinstance(node, ast.Call):
            kids = list(node.args)
        else:
            kids = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
        results = [walk(k) for k in kids]
        if choose:
            (c, tc, wc), (_, ta, wa), (_, tb, wb) = results
            pick = np.asarray(c, dtype=float) != 0
            tainted = tc | np.where(pick, ta, tb)
            why = wc or (wa if scalar(pick) else wb) if explain else None
            return v, tainted, why
        tainted = np.zeros(np.shape(v), dtype=bool)
        finite_operands = np.ones(np.shape(v), dtype=bool)
        why = None
        for kv, kt, kw in results:
            tainted = tainted | kt
            finite_operands = finite_operands & np.isfinite(kv)
            why = why or kw
        new = ~np.isfinite(v) & finite_operands
        if explain and why is None and new.any():
            segment = ast.get_source_segment(source, node)
            if (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mod))
                    and scalar(results[1][0]) == 0):
                why = f"{segment!r} divides by zero"
            else:
                shown = ", ".join(f"{ast.get_source_segment(source, k)} = {scalar(r[0]):.6g}"
                                  for k, r in zip(kids, results)
                                  if not isinstance(k, ast.Constant))
                why = f"{segment!r} is {scalar(v):g}" + (f" ({shown})" if shown else "")
        return v, tainted | new, why

    try:
        _, tainted, why = walk(tree.body)
    except (ExpressionError, TypeError, ValueError, IndexError):
        return None
    return tainted, why


def non_ascii(text: str) -> str | None:
    """What is wrong with the first character of ``text`` outside ASCII, or None.

    Python reads identifiers in NFKC form, so a fullwidth ``ｐ_AC`` would silently be the
    name ``p_AC``; names, numbers and operators of scenario files are ASCII only.

    Examples
    --------
    >>> non_ascii("p_AC") is None
    True
    >>> non_ascii("\uff50_AC")
    "character 'ｐ' (FULLWIDTH LATIN SMALL LETTER P, U+FF50) looks like 'p' but is not it"
    """
    for ch in text:
        if ord(ch) > 127:
            name = unicodedata.name(ch, "no name")
            what = f"character {ch!r} ({name}, U+{ord(ch):04X})"
            like = unicodedata.normalize("NFKC", ch)
            if like != ch and like.isascii():
                return f"{what} looks like {like!r} but is not it"
            return f"{what} is not ASCII"
    return None


def check_names(
    expr: Expression | str, known_names: Collection[str], known_functions: Collection[str]
) -> list[str]:
    """Messages for names and functions in ``expr`` that are not known, with suggestions.

    Builtin functions are always known. ``expr`` may also be text, parsed first.

    Examples
    --------
    >>> check_names(parse_expression("p_reponse * 2"), ["p_response"], [])
    ["unknown name 'p_reponse'; did you mean 'p_response'?"]
    >>> check_names("exq(x)", ["x"], [])
    ["unknown function 'exq'; did you mean 'exp'?"]
    """
    if not isinstance(expr, Expression):
        expr = parse_expression(expr)
    names, funcs = set(known_names), set(known_functions) | set(BUILTIN_FUNCTIONS)
    messages = []
    for name in sorted(expr.names - names):
        hint = f"; {name!r} is a function: call it as {name}(...)" if name in funcs else ""
        hint = hint or did_you_mean(name, names, ignore_case=False)
        messages.append(f"unknown name {name!r}{hint}")
    for name in sorted(expr.functions - funcs):
        messages.append(f"unknown function {name!r}{did_you_mean(name, funcs, ignore_case=False)}")
    return messages
