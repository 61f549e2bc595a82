"""The scenario file schema: typed, immutable, with every field documented.

The models here check the shape of a scenario file (keys, types, ranges). Checks that need the
whole file (unknown state names, circular parameters, rows that do not sum to one) live in
:mod:`vbhc_model.scenario.checks` and :mod:`vbhc_model.model.build`. ``vbhc schema`` prints the JSON
Schema generated from these models, so editors can autocomplete and check scenario files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from vbhc_model.errors import ExpressionError, Issue, ScenarioError
from vbhc_model.scenario.expressions import BUILTIN_FUNCTIONS, Expression, parse_expression
from vbhc_model.suggest import did_you_mean

#: The largest willingness to pay per unit of effect: ten billion, above any threshold used in
#: any currency; beyond it net benefits lose their precision (1e308 overflows).
MAX_WTP = 1e10

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class Complement:
    """The rest of a row (or of the engagement shares): one minus the other entries."""

    _instance: Complement | None = None

    def __new__(cls) -> Complement:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "complement"


COMPLEMENT = Complement()


def _to_expression(value: Any) -> Expression:
    if isinstance(value, Expression):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number or an expression, got {value!r}")
    if isinstance(value, str) and value.strip() == "complement":
        raise ValueError("'complement' is only allowed in a transition row or engagement shares")
    try:
        return parse_expression(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


def _to_expression_or_complement(value: Any) -> Expression | Complement:
    if isinstance(value, str) and value.strip() == "complement":
        return COMPLEMENT
    return _to_expression(value)


_EXPR_SCHEMA = {
    "anyOf": [{"type": "number"}, {"type": "string"}],
    "description": "A number or an expression of parameters (see docs/scenario-format.md).",
}
Expr = Annotated[Any, PlainValidator(_to_expression), WithJsonSchema(_EXPR_SCHEMA)]
ExprOrComplement = Annotated[
    Any,
    PlainValidator(_to_expression_or_complement),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number"}, {"type": "string"}],
            "description": "A probability expression, or 'complement' for the rest of the row.",
        }
    ),
]

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(day|week|month|year)s?\s*$")
_YEARS_PER_UNIT = {"day": 1 / 365.25, "week": 7 / 365.25, "month": 1 / 12, "year": 1.0}


def _to_years(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '1 month' or a number of years, got {value!r}")
    if isinstance(value, (int, float)):
        years = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        years = float(m.group(1)) * _YEARS_PER_UNIT[m.group(2)]
    else:
        raise ValueError(
            f"expected a duration such as '1 month', '4 weeks', '1 year' or a number of years, "
            f"got {value!r}"
        )
    if not (years > 0 and math.isfinite(years)):
        raise ValueError(f"must be a positive, finite duration, got {value!r}")
    return years


Years = Annotated[
    float,
    PlainValidator(_to_years),
    WithJsonSchema(
        {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}],
            "description": "A number of years, or text such as '1 month', '4 weeks', '1 year'.",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: Any) -> Any:
        # YAML reads yes/no/true/false as booleans; pydantic would quietly make them 1 and 0.
        if isinstance(value, bool):
            field = cls.model_fields.get(info.field_name)
            annotation = str(field.annotation) if field is not None else ""
            if "bool" not in annotation and ("int" in annotation or "float" in annotation):
                kind = "a whole number" if "int" in annotation and "float" not in annotation \
                    else "a number"
                raise ValueError(f"expected {kind}, got {value}")
        return value


CORRECTIONS = ("none", "half_cycle", "trapezoidal", "simpson")
_FiniteWeight = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
_WEIGHT_LIST = TypeAdapter(list[_FiniteWeight])


def _to_weights(value: Any) -> tuple[float, ...] | Expression:
    if isinstance(value, list):
        if not value:
            raise ValueError("expected one weight per trace row 0..n_cycles, got an empty list")
        return tuple(_WEIGHT_LIST.validate_python(value))  # errors located at weights[i]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a list of weights (one per trace row 0..n_cycles) or an "
                         f"expression of the row k and n (= n_cycles), got {value!r}")
    expr = _to_expression(value)
    unknown = sorted(expr.names - {"k", "n"}) + sorted(expr.functions - BUILTIN_FUNCTIONS.keys())
    if unknown:
        raise ValueError(f"the weights expression {expr.text!r} may use only k (the trace row, "
                         f"0..n), n (n_cycles) and the builtin functions; got '{unknown[0]}'")
    return expr


class WithinCycleWeights(_Model):
    """An arbitrary quadrature rule over the trace: one weight per trace row 0..n, each row
    valued and discounted at its own time (as trapezoidal and Simpson)."""

    weights: Annotated[Any, PlainValidator(_to_weights), WithJsonSchema({
        "anyOf": [{"type": "array", "items": {"type": "number", "minimum": 0}},
                  {"type": "string"}],
        "description": "One weight per trace row 0..n_cycles, or an expression of k (the "
                       "row) and n (n_cycles); they should sum to n_cycles.",
    })]

    def vector(self, n_cycles: int) -> np.ndarray:
        """The weights of rows 0..n_cycles (a list as given; an expression evaluated)."""
        if isinstance(self.weights, tuple):
            return np.asarray(self.weights, dtype=float)
        k = np.arange(n_cycles + 1, dtype=float)
        out = self.weights.evaluate({"k": k, "n": float(n_cycles)})
        return np.array(np.broadcast_to(out, k.shape), dtype=float)

    def __str__(self) -> str:
        w = self.weights
        return f"weights {list(w)}" if isinstance(w, tuple) else f"weights {w.text}"


def _to_correction(value: Any) -> str | WithinCycleWeights:
    if isinstance(value, dict):
        return WithinCycleWeights.model_validate(value)
    if isinstance(value, str) and value in CORRECTIONS:
        return value
    options = ", ".join(f"'{c}'" for c in CORRECTIONS)
    hint = did_you_mean(value, CORRECTIONS) if isinstance(value, str) else ""
    raise ValueError(f"must be one of {options} or a mapping {{weights: [...]}}; got "
                     f"{value!r}{hint}")


Correction = Annotated[Any, PlainValidator(_to_correction), WithJsonSchema({
    "anyOf": [{"enum": list(CORRECTIONS)},
              {"type": "object", "properties": {"weights": {}}, "required": ["weights"]}],
    "description": "A named within-cycle correction, or {weights: list or expression of k, n}.",
})]


class Metadata(_Model):
    """Who and what the scenario is for; shown in results and reports."""

    title: str = Field(min_length=1)
    description: str = ""
    currency: str = Field(min_length=1, description="ISO 4217 code, e.g. USD, AUD, GBP.")
    price_year: int | None = Field(None, ge=1900, le=2200, description="Omit if not stated.")
    perspective: str = Field(min_length=1, description="e.g. 'health care payer', 'societal'.")
    country: str = Field(min_length=1)
    sources: list[str] = Field(default_factory=list)


class Discount(_Model):
    """Annual discount rates, as fractions (0.035 for 3.5%)."""

    costs: float = Field(ge=0.0, le=0.25)
    effects: float = Field(ge=0.0, le=0.25)

    @field_validator("costs", "effects", mode="before")
    @classmethod
    def _fraction_not_percent(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 25:
            raise ValueError(
                f"discount rates are fractions per year (0.035 for 3.5%), got {v}; "
                f"did you mean {v / 100:g}?"
            )
        return v


class Population(_Model):
    """The population a decision affects, for population EVPI.

    Effective population = size + sum over years t = 0..horizon-1 of
    annual_incidence x (1 + discount)^-t (Philips et al. 2008; the voi package's pop_voi).
    """

    size: float = Field(0.0, ge=0, description="People affected now (prevalent).")
    annual_incidence: float = Field(0.0, ge=0, description="New people affected each year.")
    horizon_years: int = Field(10, ge=1, le=200, description="Years the decision holds.")
    discount: float = Field(0.035, ge=0, le=0.25)
    source: str = Field(min_length=1)

    def effective(self) -> float:
        """The discounted number of people the decision affects."""
        years = range(self.horizon_years)
        return self.size + sum(self.annual_incidence * (1 + self.discount) ** -t for t in years)


#: The most cycles a scenario may have. The engines evaluate each cycle's expressions one
#: cycle after another (about 1-3 ms per cycle and strategy): 100,000 cycles took over 15
#: minutes to validate (issue 11); 6,000 take about 8 s for the HIV reference model.
MAX_CYCLES = 6_000


class Settings(_Model):
    """How the cohort model is run."""

    cycle_length: Years = Field(description="Cycle length: '1 month', '1 year', or years.")
    n_cycles: int = Field(ge=1, le=MAX_CYCLES, description="Number of cycles (transitions); "
                          f"at most {MAX_CYCLES:,} (over 100 years of weekly cycles).")
    discount: Discount
    within_cycle_correction: Correction = Field(
        "none", description="'none', 'half_cycle', 'trapezoidal', 'simpson', or "
        "{weights: [w0, ..., wn]} (or an expression of k and n): see docs/methods.md.")
    count_start: bool = Field(
        False,
        description="With within_cycle_correction 'none': count the starting distribution "
        "(cycle k uses the state membership at its start) instead of the end of each cycle.",
    )
    discount_timing: Literal["start", "middle", "end"] | None = Field(
        None,
        description="When in cycle k its payoffs are discounted. Default: 'end' for "
        "none/count_start false, 'start' for count_start true and for half_cycle.",
    )
    start: dict[str, Expr] = Field(description="Starting share of the cohort in each state.")
    start_age: float | None = Field(None, ge=0, le=130)
    wtp: list[float] = Field(min_length=1, description="Willingness-to-pay values per unit effect.")
    effect: Literal["qalys", "life_years"] = "qalys"
    perspective: Literal["health_care", "societal"] = Field(
        "health_care",
        description="The costs total_cost sums: the health-care sector's, or also the "
        "categories marked societal in cost_categories (productivity, patient time); every "
        "category is reported either way.",
    )
    negligible_effect: float = Field(
        0.0, ge=0,
        description="The smallest gain in effect per person over the previous frontier "
        "strategy that counts: a costlier strategy with a smaller gain is reported as a "
        "'negligible gain' without an ICER (0: any gain counts).",
    )
    cohort_size: int = Field(1, ge=1, description="People in the cohort, for totals in tables.")
    population: Population | None = Field(None, description="For population EVPI.")
    seed: int = Field(20251122, ge=0)
    engine: Literal["cohort", "microsim"] = Field(
        "cohort", description="The simulation engine: 'cohort' (a Markov cohort trace) or "
        "'microsim' (individual patients drawn through the same transitions).",
    )
    patients: int = Field(
        10_000, gt=0, le=100_000_000,
        description="Patients per draw in the microsimulation (ignored by the cohort engine).",
    )
    uniforms: str | None = Field(
        None, min_length=1,
        description="Replay these uniforms in the microsimulation instead of its own random "
        "numbers: a .csv (a header, one row per patient, one column per cycle 0..n_cycles) or "
        ".npy file, relative to this scenario file; its rows set the number of patients.",
    )
    patient_output: bool = Field(
        False, description="Microsimulation: also write patients.nc, each patient's states "
        "and totals in the base case.",
    )

    @property
    def correction_method(self) -> str:
        """The within-cycle correction's name: 'weights' for a rule given row by row."""
        c = self.within_cycle_correction
        return c if isinstance(c, str) else "weights"

    def correction_weights(self) -> np.ndarray | None:
        """The row weights of a correction given as weights (else None)."""
        c = self.within_cycle_correction
        return None if isinstance(c, str) else c.vector(self.n_cycles)

    @field_validator("n_cycles", mode="before")
    @classmethod
    def _cycles_bounded(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > MAX_CYCLES:
            raise ValueError(
                f"{v:g} cycles is more than the {MAX_CYCLES:,} a run can finish in reasonable "
                f"time (each cycle is evaluated one after another); use a longer cycle_length "
                f"(e.g. '1 month' or '1 year') for a long horizon")
        return v

    @field_validator("wtp")
    @classmethod
    def _wtp_non_negative(cls, v: list[float]) -> list[float]:
        bad = [w for w in v if not (0 <= w <= MAX_WTP)]  # also inf and nan
        if bad:
            raise ValueError(f"willingness-to-pay values must be finite numbers from 0 to "
                             f"{MAX_WTP:g}, got {bad[0]:g}")
        return v


_DISTRIBUTIONS = (
    "fixed",
    "beta",
    "gamma",
    "lognormal",
    "normal",
    "truncnormal",
    "uniform",
    "triangular",
    "dirichlet",
    "mvnormal",
)


class Distribution(_Model):
    """A parameter's uncertainty distribution, sampled in the probabilistic analysis.

    ``type`` names the family; the other keys give its parameters in one of the accepted forms
    (natural parameters, mean and sd/se, or a 95% interval); docs/scenario-format.md lists them.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal[_DISTRIBUTIONS]  # type: ignore[valid-type]


class JointDistribution(_Model):
    """Parameters drawn together: a multivariate normal or a Dirichlet.

    ``mvnormal``: ``mean`` (default: the parameters' base values) and ``covariance`` (a full
    symmetric matrix or its lower triangle). ``dirichlet``: ``alpha``, one per parameter (e.g.
    the transition counts of a row); the draws sum to one.
    """

    type: Literal["mvnormal", "dirichlet"]
    parameters: list[str] = Field(min_length=2)
    mean: list[float] | None = None
    covariance: list[list[float]] | None = None
    alpha: list[float] | None = None
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> JointDistribution:
        k = len(self.parameters)
        if self.type == "mvnormal":
            if self.covariance is None or self.alpha is not None:
                raise ValueError("mvnormal needs covariance (and optionally mean), not alpha")
            if len(self.covariance) != k or any(len(r) not in (i + 1, k)
                                                for i, r in enumerate(self.covariance)):
                raise ValueError(f"covariance must be {k} x {k} (or its lower triangle)")
            if self.mean is not None and len(self.mean) != k:
                raise ValueError(f"mean has {len(self.mean)} values for {k} parameters")
        else:
            if self.alpha is None or self.covariance is not None or self.mean is not None:
                raise ValueError("dirichlet needs alpha only")
            if len(self.alpha) != k or any(not a > 0 for a in self.alpha):
                raise ValueError(f"alpha needs {k} values, all > 0")
        return self

    def covariance_matrix(self) -> np.ndarray:
        """The full covariance matrix (a lower triangle mirrored)."""
        k = len(self.parameters)
        m = np.zeros((k, k))
        for i, row in enumerate(self.covariance or []):
            m[i, : len(row)] = row
        triangle = all(len(r) == i + 1 for i, r in enumerate(self.covariance or []))
        return m + np.tril(m, -1).T if triangle else m


class Correlation(_Model):
    """A correlation between two sampled parameters, imposed by a Gaussian copula."""

    parameters: list[str] = Field(min_length=2, max_length=2)
    rho: float = Field(gt=-1, lt=1)
    source: str = Field(min_length=1)


class PosteriorRef(_Model):
    """PSA draws taken from a fitted posterior (``vbhc fit``): parameters naming the same file
    share one posterior draw per PSA draw, so their correlation is kept."""

    file: str = Field(min_length=1, description="The posterior .nc file, relative to this "
                      "scenario file.")
    variable: str = Field(min_length=1, description="A variable of its 'posterior' group.")
    select: dict[str, str | int] = Field(
        default_factory=dict,
        description="One label for each dimension of the variable besides chain and draw, "
        "e.g. {arm: coach}.")


class SamplesRef(_Model):
    """PSA draws read from a CSV table of samples (a bootstrap, another tool's PSA):
    parameters naming the same file share one row per PSA draw, so the joint distribution of
    the columns is kept."""

    file: str = Field(min_length=1, description="The CSV file (a header of column names, "
                      "one row per sample), relative to this scenario file.")
    column: str = Field(min_length=1, description="The column holding this parameter.")
    pick: Literal["random", "in_order"] = Field(
        "random", description="random: each PSA draw takes a row at random (every row "
        "equally likely); in_order: draw d takes row d, to replay another tool's PSA.")


class Parameter(_Model):
    """A model input: a base value (number or expression), its uncertainty and its source."""

    value: Expr
    source: str = Field(min_length=1, description="Seed file, paper and table, or ASSUMPTION.")
    distribution: Distribution | None = None
    posterior: PosteriorRef | None = Field(
        None, description="Take the PSA draws from a fitted posterior instead of a "
        "distribution.")
    samples: SamplesRef | None = Field(
        None, description="Take the PSA draws from a CSV table of samples instead of a "
        "distribution.")
    range: list[float] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="Low and high values for one-way sensitivity analysis (default: the "
        "distribution's 2.5% and 97.5% quantiles).",
    )
    fixed: str | None = Field(
        None, min_length=1,
        description="Why the parameter is not uncertain (a design constant, a strategy "
        "switch, a reporting-only figure); the one-way sensitivity analysis prints it "
        "beside the parameter instead of 'no range'.",
    )
    unit: str = ""
    description: str = ""

    @field_validator("range")
    @classmethod
    def _low_below_high(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {v}")
        return v

    @model_validator(mode="after")
    def _one_source_of_uncertainty(self) -> Parameter:
        given = [k for k in ("distribution", "posterior", "samples")
                 if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of distribution, posterior and samples, not "
                             f"{' and '.join(given)}")
        if self.fixed is not None and (given or self.range is not None):
            raise ValueError("'fixed' says the parameter is not uncertain: drop it, or drop "
                             "the " + " and ".join(given + (["range"] if self.range else [])))
        return self


class Table(_Model):
    """A lookup table used as a function in expressions, e.g. ``mortality(age)``."""

    x: list[float] = Field(min_length=1)
    y: list[float] = Field(min_length=1)
    kind: Literal["step", "linear"] = Field(
        "step",
        description="step: the y of the largest x <= the argument (the first y below x[0]); "
        "linear: linear interpolation, constant beyond the ends.",
    )
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _shape(self) -> Table:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} values but y has {len(self.y)}")
        if not all(math.isfinite(v) for v in [*self.x, *self.y]):
            raise ValueError("x and y must be finite numbers (found nan or inf)")
        if any(b <= a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("x must be strictly increasing")
        return self


class State(_Model):
    """A health state. ``tunnel: N`` tracks time in state 1..N (N means N or more)."""

    label: str = ""
    description: str = ""
    absorbing: bool = False
    alive: bool = True
    tunnel: int = Field(1, ge=1, le=1200)


class Payoffs(_Model):
    """Values accrued per cycle in a state (or once, in a one-off block)."""

    costs: dict[str, Expr] = Field(default_factory=dict, description="Cost per cycle by category.")
    utility: Expr | None = Field(None, description="Utility (per year; QALYs = utility x years).")
    utilisation: dict[str, Expr] = Field(default_factory=dict, description="Count per cycle.")
    clinician_hours: dict[str, Expr] = Field(default_factory=dict, description="Hours per cycle.")


class TransitionPayoff(_Model):
    """A one-off value on a transition, e.g. the cost of death or of entering a state."""

    from_: str | None = Field(None, alias="from", description="Source state; omit for any.")
    to: str
    costs: dict[str, Expr] = Field(default_factory=dict)
    qalys: Expr | None = Field(None, description="One-off QALY change (negative for a loss).")
    utilisation: dict[str, Expr] = Field(default_factory=dict)
    clinician_hours: dict[str, Expr] = Field(default_factory=dict)


class Service(_Model):
    """A healthcare service counted in utilisation; optionally costed per unit."""

    label: str = ""
    unit: str = "contacts"
    unit_cost: Expr | None = None
    category: str | None = Field(None, description="Cost category its unit costs add to.")

    @model_validator(mode="after")
    def _cost_needs_category(self) -> Service:
        if (self.unit_cost is None) != (self.category is None):
            raise ValueError("give both unit_cost and category, or neither")
        return self


class Role(_Model):
    """A clinician role whose time is counted; optionally costed per hour."""

    label: str = ""
    hourly_cost: Expr | None = None
    category: str | None = None

    @model_validator(mode="after")
    def _cost_needs_category(self) -> Role:
        if (self.hourly_cost is None) != (self.category is None):
            raise ValueError("give both hourly_cost and category, or neither")
        return self


class OneOff(_Model):
    """One-off programme resources at the start (no utility)."""

    costs: dict[str, Expr] = Field(default_factory=dict)
    utilisation: dict[str, Expr] = Field(default_factory=dict)
    clinician_hours: dict[str, Expr] = Field(default_factory=dict)


class Programme(_Model):
    """A strategy's own programme: resources at the start and per cycle while it runs.

    ``per_cycle`` accrues to the living cohort in cycles 1..duration. Both blocks are scaled by
    the engagement level's ``resource_use``.
    """

    duration: int = Field(0, ge=0, description="Cycles the programme runs (0: one-off only).")
    one_off: OneOff = Field(default_factory=OneOff)
    per_cycle: OneOff = Field(default_factory=OneOff)


class EngagementLevel(_Model):
    """A share of the cohort with its own effect and resource use (e.g. drop-outs)."""

    label: str = ""
    share: ExprOrComplement
    effect: Expr = Field(
        default_factory=lambda: parse_expression(1.0),
        description="Available to expressions as engagement_effect.",
    )
    resource_use: Expr = Field(
        default_factory=lambda: parse_expression(1.0),
        description="Scales programme resources; available as engagement_resource_use.",
    )


class AttributeLevel(_Model):
    """One level of a categorical patient attribute: its share of the population and the
    number expressions see for it."""

    label: str = ""
    share: ExprOrComplement = Field(
        description="Share of the population at this level (parameters only; 'complement' "
        "for the rest)."
    )
    value: float = Field(
        description="What the attribute's name stands for in expressions at this level "
        "(e.g. 1 for yes, 0 for no)."
    )


class Attribute(_Model):
    """A categorical patient attribute (rurality, long-term opioid use, baseline pain
    impact): levels with shares; its name can be used in transitions, payoffs, starting
    shares and engagement, so that effects and costs can differ by patient."""

    label: str = ""
    levels: dict[str, AttributeLevel] = Field(min_length=1)
    source: str = Field(min_length=1, description="Where the shares come from.")


class PatientTable(_Model):
    """Patients (or patient types) as rows of a CSV file, their attributes as columns of
    numbers, with an optional column of weights."""

    file: str = Field(min_length=1, description="The CSV file, relative to this scenario file.")
    weight: str | None = Field(None, description="The column of weights (default: equal).")
    columns: list[str] | None = Field(
        None, description="The columns that are attributes (default: all but the weight)."
    )
    source: str = Field(min_length=1)


class PopulationAttributes(_Model):
    """Who the patients are: categorical attributes independent of one another (their
    combinations run as strata), or the rows of a patient table (each row a stratum): exactly
    in the cohort engine, with patients of their own in the microsimulation; ``subgroups``
    are reported one by one."""

    attributes: dict[str, Attribute] = Field(default_factory=dict)
    patients: PatientTable | None = None
    subgroups: list[str] = Field(
        default_factory=list, description="Attributes whose levels are reported as subgroups."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> PopulationAttributes:
        if bool(self.attributes) == (self.patients is not None):
            raise ValueError("give either 'attributes' (categorical, with shares) or "
                             "'patients' (a table of patients), not both and not neither")
        return self


class Step(_Model):
    """A step of stepped care: who leaves the strategy's first programme, when, and for
    which other strategy."""

    at_cycle: int = Field(
        ge=1, description="The cycle at whose end the step happens (1..n_cycles - 1)."
    )
    in_states: list[str] = Field(
        min_length=1, description="The patients in these states at the end of that cycle."
    )
    switch_to: str = Field(
        description="The strategy they continue under (its transitions, payoffs, programme "
        "and engagement), on its own clock: its cycle 1 is cycle at_cycle + 1 of the model."
    )
    parameters: dict[str, Expr] = Field(
        default_factory=dict,
        description="Values of existing parameters for the switched patients (on top of "
        "the target strategy's own): a step may change what the target means for those who "
        "did not respond to the first programme.",
    )


class TrackerEvent(_Model):
    """What a ``time_since``, ``count`` or ``ever`` tracker counts: entering a state."""

    enter: list[str] = Field(
        min_length=1,
        description="Entering one of these states from another state is an event (the "
        "starting state is not).",
    )


class Tracker(_Model):
    """A patient's history as a whole number, updated each cycle from the state it leaves
    and the state it enters; its name can be used in transitions and payoffs (the
    microsimulation only). Values above ``cap`` count as ``cap`` ("N means N or more")."""

    kind: Literal["time_in_state", "time_since", "count", "ever"] = Field(
        description="time_in_state: cycles in the current state (1 in the first); "
        "time_since: cycles since the last event (1 in the cycle after it); count: events "
        "so far; ever: 1 once an event has happened, else 0."
    )
    label: str = ""
    cap: int | None = Field(
        None, ge=1, le=1200,
        description="The largest value told apart (N means N or more); required for "
        "time_in_state, time_since and count.",
    )
    event: TrackerEvent | None = Field(None, description="For time_since, count and ever.")
    never: float | None = Field(
        None, description="time_since: the value before the first event (required)."
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Tracker:
        kind = self.kind
        if kind != "ever" and self.cap is None:
            raise ValueError(f"a '{kind}' tracker needs 'cap': the largest value it tells "
                             "apart (N means N or more)")
        if kind == "ever" and self.cap is not None:
            raise ValueError("an 'ever' tracker is 0 or 1; remove 'cap'")
        if kind == "time_in_state" and self.event is not None:
            raise ValueError("a 'time_in_state' tracker counts the cycles in the current "
                             "state; remove 'event' (or use kind 'time_since')")
        if kind != "time_in_state" and self.event is None:
            raise ValueError(f"a '{kind}' tracker needs 'event', e.g. "
                             "'event: {enter: [responded]}'")
        if kind == "time_since" and self.never is None:
            raise ValueError("a 'time_since' tracker needs 'never': its value before the "
                             "first event")
        if kind != "time_since" and self.never is not None:
            raise ValueError(f"'never' is for 'time_since' trackers; remove it from this "
                             f"'{kind}' tracker")
        return self


class Strategy(_Model):
    """A strategy: the shared model with its own overrides."""

    label: str = ""
    description: str = ""
    parameters: dict[str, Expr] = Field(
        default_factory=dict, description="Values of existing parameters in this strategy."
    )
    start: dict[str, Expr] | None = None
    transitions: dict[str, dict[str, ExprOrComplement]] = Field(default_factory=dict)
    payoffs: dict[str, Payoffs] = Field(default_factory=dict)
    programme: Programme | None = None
    engagement: dict[str, EngagementLevel] | None = None
    steps: list[Step] = Field(
        default_factory=list,
        description="Stepped care: patients who leave this strategy for another at a cycle.",
    )


Share = Annotated[float, Field(ge=0, le=1)]


class LinearRamp(_Model):
    """A share changing in a straight line: ``start`` in year 1, ``end`` in year ``years``
    and after it."""

    start: Share = Field(description="The share in year 1 of the plan.")
    end: Share = Field(description="The share from year `years` on.")
    years: int = Field(ge=2, description="The year of the plan the ramp reaches `end` in "
                                          "(year 1 has `start`).")

    def shares(self, n_years: int) -> np.ndarray:
        """The share in each of ``n_years`` years.

        Examples
        --------
        >>> LinearRamp(start=0.1, end=0.3, years=3).shares(5).tolist()
        [0.1, 0.2, 0.3, 0.3, 0.3]
        """
        return np.interp(np.arange(n_years), [0, self.years - 1], [self.start, self.end])


class LogisticRamp(_Model):
    """A share following a logistic (S-shaped) curve over the plan's calendar years y = 1, 2,
    ...: ``start + (end - start) * expit(steepness * (y - midpoint))`` (the diffusion curve
    of an innovation's uptake)."""

    start: Share = Field(description="The share long before the midpoint (the lower level).")
    end: Share = Field(description="The share it levels off at.")
    midpoint: float = Field(allow_inf_nan=False, description="The calendar year (year 1 is "
                            "the plan's first) of the halfway share, (start + end) / 2.")
    steepness: float = Field(gt=0, allow_inf_nan=False,
                             description="Growth rate per year (logistic slope).")

    def shares(self, n_years: int) -> np.ndarray:
        """The share in each of ``n_years`` years.

        Examples
        --------
        >>> LogisticRamp(start=0.0, end=0.4, midpoint=2, steepness=1.0).shares(3).round(4).tolist()
        [0.1076, 0.2, 0.2924]
        """
        from scipy.special import expit  # lazily: only plans with a logistic ramp need it

        y = np.arange(1, n_years + 1)
        return self.start + (self.end - self.start) * expit(self.steepness * (y - self.midpoint))


class UptakeRamp(_Model):
    """A strategy's share that changes over a plan's years: ``{linear: {...}}`` or
    ``{logistic: {...}}``."""

    linear: LinearRamp | None = None
    logistic: LogisticRamp | None = None

    @model_validator(mode="after")
    def _one_ramp(self) -> UptakeRamp:
        if (self.linear is None) == (self.logistic is None):
            raise ValueError("give one ramp: {linear: {start, end, years}} or "
                             "{logistic: {start, end, midpoint, steepness}}")
        return self

    def shares(self, n_years: int) -> np.ndarray:
        """The share in each of ``n_years`` years."""
        return (self.linear or self.logistic).shares(n_years)


def _uptake_kind(value: Any) -> str:
    """Which form of a strategy's uptake a value is (the tags name it in error locations,
    where the loader drops them)."""
    if isinstance(value, (list, tuple)):
        return "shares[list]"
    if isinstance(value, (dict, UptakeRamp)):
        return "shares[ramp]"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "shares[complement]"
    return "shares[number]"


#: A strategy's share of a plan's starts: one number for every year, one per year, a ramp,
#: or 'complement' (one minus the mix's other shares, each year).
UptakeShares = Annotated[
    Annotated[Share, Tag("shares[number]")]
    | Annotated[list[Share], Tag("shares[list]")]
    | Annotated[UptakeRamp, Tag("shares[ramp]")]
    | Annotated[Literal["complement"], Tag("shares[complement]")],
    Discriminator(_uptake_kind),
]


def yearly_shares(shares: dict[str, Any], n_years: int) -> dict[str, np.ndarray]:
    """A mix's shares (``plan.uptake.new`` ...) as one array of ``n_years`` per strategy, in
    the mix's order; a ``complement`` share is one minus the others, year by year.

    Examples
    --------
    >>> ramp = UptakeRamp(linear=LinearRamp(start=0.1, end=0.3, years=3))
    >>> {k: v.tolist() for k, v in yearly_shares({"a": "complement", "b": ramp}, 4).items()}
    {'a': [0.9, 0.8, 0.7, 0.7], 'b': [0.1, 0.2, 0.3, 0.3]}
    """
    out: dict[str, np.ndarray] = {}
    rest = [name for name, v in shares.items() if isinstance(v, str)]
    for name, v in shares.items():
        if isinstance(v, UptakeRamp):
            out[name] = v.shares(n_years)
        elif not isinstance(v, str):
            out[name] = np.broadcast_to(np.asarray(v, dtype=float), (n_years,)).copy()
    for name in rest:  # the checks allow one
        given = list(out.values())
        out[name] = 1.0 - (np.sum(given, axis=0) if given else np.zeros(n_years))
    return {name: out[name] for name in shares}


class PlanUptake(_Model):
    """Each strategy's share of the patients starting care in each year of a plan: one number
    for every year, a list with one per year, a ramp (``{linear: {start, end, years}}`` or
    ``{logistic: {start, end, midpoint, steepness}}``) or ``complement`` (the rest); each
    year's shares sum to 1."""

    current: dict[str, UptakeShares] = Field(
        min_length=1, description="The mix of today (what the budget is compared with).")
    new: dict[str, UptakeShares] = Field(
        min_length=1, description="The mix the plan proposes.")
    alternatives: dict[str, dict[str, UptakeShares]] = Field(
        default_factory=dict,
        description="Other mixes to weigh against the new one (name -> shares), each with "
        "its own waiting for the same clinicians.")

    def mixes(self) -> dict[str, dict[str, Any]]:
        """The mixes in order: ``current``, ``new``, then the alternatives."""
        return {"current": self.current, "new": self.new, **self.alternatives}

    def by_year(self, n_years: int) -> dict[str, dict[str, np.ndarray]]:
        """Every mix's shares by year (:func:`yearly_shares`), in :meth:`mixes` order."""
        return {m: yearly_shares(shares, n_years) for m, shares in self.mixes().items()}


class PlanRole(_Model):
    """A clinician role's capacity in a plan."""

    fte_available: Annotated[float, Field(ge=0)] | list[Annotated[float, Field(ge=0)]] = Field(
        description="Full-time equivalents available, one number or one per year.")
    hours_per_fte: float = Field(gt=0, description="Productive hours a year per FTE.")
    caseload_limit: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="The most patients one FTE carries at "
        "once (optional): the role's places are the fewer of those its hours give and this "
        "times the FTEs.")
    source: str = Field(min_length=1)


class PlanWaiting(_Model):
    """What waiting for a programme does to a patient, per year of waiting."""

    utility_loss: float = Field(0.0, ge=0, le=1, description="QALYs lost per year waiting.")
    extra_cost: float = Field(0.0, ge=0, description="Extra care per year waiting (ED visits "
                                                     "...), in the currency.")
    dropout: float = Field(0.0, ge=0, lt=1, description="The share of waiting patients who "
                           "give up in a year of waiting (an annual probability, taken as a "
                           "constant hazard); they get the scenario's first strategy (usual "
                           "care) instead of the programme.")
    source: str = Field(min_length=1)


class PlanCompletion(_Model):
    """Which engagement levels complete a programme, and which never start it: the plan's
    completion (completers / starters) by year."""

    completed: list[str] = Field(min_length=1, description="Engagement levels that complete "
                                 "the programme (a stepped strategy's 'first/second' levels "
                                 "are matched by their first part).")
    not_started: list[str] = Field(default_factory=list, description="Engagement levels that "
                                   "never start it (not counted among the starters).")


class Plan(_Model):
    """A service plan (``vbhc plan``): who starts care in each year and in which strategy, and
    the clinicians available; the budget, care and clinician time follow from the model."""

    years: int = Field(ge=1, le=50, description="Calendar years of the plan.")
    prevalent: float = Field(ge=0, description="Eligible patients starting care in year 1.")
    incident: float = Field(ge=0, description="New eligible patients starting care each year.")
    members: float | None = Field(
        None, gt=0, description="People the budget is spread over for per member per month "
        "(a health plan's membership); default: the patients in the plan.")
    uptake: PlanUptake
    roles: dict[str, PlanRole] = Field(default_factory=dict)
    waiting: PlanWaiting | None = Field(
        None, description="What waiting does when the clinicians cannot take everyone.")
    responders: list[str] = Field(
        default_factory=list, description="States counted as responding (e.g. >= 30% pain "
        "reduction): the people in them, on average over each calendar year.")
    completion: PlanCompletion | None = Field(
        None, description="Engagement levels that complete a programme and that never start "
        "it: completers and completion by year.")
    source: str = Field(min_length=1)


class CostCategory(_Model):
    """A cost category's label and the perspective it belongs to."""

    label: str = ""
    perspective: Literal["health_care", "societal"] = Field(
        "health_care",
        description="societal: outside the health-care sector (productivity, patient time, "
        "travel); counted in total_cost only under settings.perspective: societal.",
    )
    description: str = ""


class Variant(_Model):
    """A structural or evidence choice run beside the base case (``vbhc compare``): the
    scenario with some parameters set to other values or expressions."""

    label: str = ""
    description: str = ""
    parameters: dict[str, Expr] = Field(
        default_factory=dict,
        description="Values of existing parameters in this variant; a parameter set here has "
        "no distribution of its own in the variant (an expression of other parameters keeps "
        "theirs).",
    )
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings changed in this variant (perspective, n_cycles, discount, ...).",
    )
    plan: dict[str, Any] = Field(
        default_factory=dict,
        description="Keys of the plan replaced in this variant (roles, uptake, years, ...).",
    )


class Scenario(_Model):
    """A whole scenario file. Load one with :func:`vbhc_model.scenario.load_scenario`."""

    metadata: Metadata
    settings: Settings
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    joint: dict[str, JointDistribution] = Field(
        default_factory=dict, description="Groups of parameters drawn together."
    )
    correlations: list[Correlation] = Field(default_factory=list)
    tables: dict[str, Table] = Field(default_factory=dict)
    states: dict[str, State] = Field(min_length=1)
    transitions: dict[str, dict[str, ExprOrComplement]]
    payoffs: dict[str, Payoffs] = Field(default_factory=dict)
    transition_payoffs: list[TransitionPayoff] = Field(default_factory=list)
    services: dict[str, Service] = Field(default_factory=dict)
    roles: dict[str, Role] = Field(default_factory=dict)
    population: PopulationAttributes | None = Field(
        None, description="Patient attributes and subgroups (optional)."
    )
    trackers: dict[str, Tracker] = Field(
        default_factory=dict,
        description="A patient's history (time in state, time since an event, counts, "
        "ever-flags) for expressions; the microsimulation only.",
    )
    strategies: dict[str, Strategy] = Field(min_length=1)
    plan: Plan | None = Field(None, description="A service plan for 'vbhc plan'.")
    cost_categories: dict[str, CostCategory] = Field(
        default_factory=dict,
        description="Labels and perspectives of cost categories (undeclared ones: health "
        "care).",
    )
    variants: dict[str, Variant] = Field(
        default_factory=dict,
        description="Named alternatives to the base case, compared side by side by "
        "'vbhc compare' and run one at a time by 'vbhc run --variant NAME'.",
    )

    _source: Any = PrivateAttr(None)
    #: The variant this copy runs (:meth:`with_variant`), or None.
    _variant: str | None = PrivateAttr(None)

    @property
    def source(self) -> Any:
        """The :class:`~vbhc_model.scenario.loader.Source` this scenario was loaded from."""
        return self._source

    @property
    def name(self) -> str:
        """A short name: the file's stem (``chronic_pain_us``), with the variant's name when
        one is applied (``chronic_pain_us_ipp_as_coach``)."""
        stem = Path(self._source.file).stem if self._source else "scenario"
        return f"{stem}_{self._variant}" if self._variant else stem

    @property
    def variant(self) -> str | None:
        """The variant applied (:meth:`with_variant`), or None for the base case."""
        return self._variant

    def with_settings(self, **changes) -> Scenario:
        """A copy with some ``settings`` changed (``engine="microsim"``, ``patients=1000``),
        validated again, from the same source.

        Raises
        ------
        ScenarioError
            A changed value is not valid (the issue names ``settings.<key>``).
        """
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        issues, valid = [], {}
        for key, value in changes.items():
            field = Settings.model_fields[key]
            try:
                kind = (Annotated[(field.annotation, *field.metadata)] if field.metadata
                        else field.annotation)
                valid[key] = TypeAdapter(kind).validate_python(value)
            except ValidationError as exc:
                file = self._source.file if self._source else "scenario"
                issues += [Issue(file, f"settings.{key}", err["msg"]) for err in exc.errors()]
        if issues:
            raise ScenarioError(issues)
        settings = self.settings.model_copy(update=valid)
        copy = self.model_copy(update={"settings": settings})
        copy._source = self._source
        copy._variant = self._variant
        return copy

    def with_variant(self, name: str | None) -> Scenario:
        """A copy in which variant ``name`` (``variants:``) sets its parameters, from the same
        source (None: the scenario itself). The parameters it sets lose their distribution,
        posterior or samples, and say so in their source.

        Raises
        ------
        ScenarioError
            No variant of that name (the issue names ``variants``).
        """
        if name is None:
            return self
        if name not in self.variants:
            from vbhc_model.suggest import did_you_mean

            file = self._source.file if self._source else "scenario"
            known = ", ".join(self.variants) or "none"
            raise ScenarioError([Issue(file, "variants", f"no variant '{name}'"
                                       f"{did_you_mean(name, self.variants)} (variants: "
                                       f"{known})")])
        variant = self.variants[name]
        params = dict(self.parameters)
        for pname, expr in variant.parameters.items():
            params[pname] = Parameter(
                value=expr, unit=params[pname].unit,
                source=f"variant '{name}' ({variant.label or name}): "
                       f"{expr.text if hasattr(expr, 'text') else expr}")
        update: dict[str, Any] = {"parameters": params}
        if variant.plan and self.plan is not None:
            try:
                update["plan"] = Plan.model_validate({**self.plan.model_dump(), **variant.plan})
            except ValidationError as exc:
                file = self._source.file if self._source else "scenario"
                raise ScenarioError([Issue(file, f"variants.{name}.plan", err["msg"])
                                     for err in exc.errors()]) from None
        copy = self.model_copy(update=update)
        copy._source = self._source
        copy._variant = name
        return copy.with_settings(**variant.settings)

    def with_strategies(self, names: Iterable[str]) -> Scenario:
        """A copy with only the strategies in ``names`` (in the scenario's order), from the same
        source, keeping also the strategies their steps switch to (a stepped strategy needs
        them). It is not validated again: a subset of valid strategies is valid."""
        keep = set(names)
        keep |= {step.switch_to for k in keep if k in self.strategies
                 for step in self.strategies[k].steps}
        copy = self.model_copy(update={"strategies": {k: v for k, v in self.strategies.items()
                                                      if k in keep}})
        copy._source = self._source
        copy._variant = self._variant
        return copy
