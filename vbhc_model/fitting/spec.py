"""The fit file: data, model family, priors and sampler settings (YAML, pydantic).

Errors name the file, the line and the key path, like scenario errors.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vbhc_model.errors import Issue, ScenarioError
from vbhc_model.scenario.loader import Source, read_yaml, validation_message

FAMILIES = ("binomial_arms", "nma_binomial", "rates", "engagement", "continuous", "custom")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prior(_Model):
    """A normal prior (on the scale the family states) or a half-normal scale prior."""

    type: Literal["normal", "halfnormal"] | None = Field(
        None, description="Default: the family's (half-normal for scale parameters).")
    mu: float = 0.0
    sigma: float = Field(gt=0)

    @field_validator("mu", "sigma")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class Sampling(_Model):
    """NUTS settings (PyMC ``pm.sample``)."""

    draws: int = Field(1000, ge=10)
    tune: int = Field(1000, ge=0)
    chains: int = Field(4, ge=2, le=16, description="At least 2: R-hat compares chains.")
    seed: int = Field(20251122, ge=0)
    target_accept: float = Field(0.9, gt=0.5, lt=1.0)


class Gate(_Model):
    """The convergence gate: a fit that misses any of these is refused. A file may make the
    gate stricter, never looser than R-hat <= 1.01, ESS >= 400 and no divergences."""

    max_rhat: float = Field(1.01, gt=1.0, le=1.01)
    min_ess_bulk: float = Field(400, ge=400)
    min_ess_tail: float = Field(400, ge=400)
    max_divergences: int = Field(0, ge=0, le=0)


class FitFile(_Model):
    """A fit file: what to fit, to which data, with which priors."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    description: str = ""
    source: str = Field(min_length=1, description="Where the data come from (seed file, "
                        "paper and table).")
    family: Literal["binomial_arms", "nma_binomial", "rates", "engagement", "continuous",
                    "custom"]
    data: list[dict[str, Any]] | None = Field(None, min_length=1)
    csv: str | None = Field(None, description="Data as a CSV file, relative to the fit file.")
    options: dict[str, Any] = Field(default_factory=dict)
    priors: dict[str, Prior] = Field(default_factory=dict)
    sampling: Sampling = Sampling()
    gate: Gate = Gate()
    model: str | None = Field(None, description="custom family: a Python file whose "
                              "build(data, options) returns a pm.Model.")


def load_fit_file(path: str | Path) -> tuple[FitFile, Source, list[dict[str, Any]]]:
    """Read and validate a fit file; return it, its source (file, SHA-256, lines) and the
    data rows (inline or from its CSV).

    Raises
    ------
    ScenarioError
        With file, line and key path of each problem.
    """
    path = Path(path)
    spec, source = read_model_file(path, FitFile, "fit file")
    if (spec.data is None) == (spec.csv is None):
        raise ScenarioError([source.issue(("data",), "give the data either inline (data:) or "
                                          "as a CSV file (csv:), not both or neither")])
    rows = spec.data if spec.data is not None else read_data_csv(path.parent / spec.csv, source)
    return spec, source, [dict(r) for r in rows]


def read_model_file(path: Path, model: type[BaseModel], what: str) -> tuple[Any, Source]:
    """Read a YAML file into a pydantic ``model``; errors name the file, line and key path."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([Issue(str(path), "", f"cannot read the {what} ({exc.strerror})")]) \
            from None
    text = raw.decode("utf-8", errors="replace")
    data, lines = read_yaml(text, str(path))
    source = Source(file=str(path), sha256=hashlib.sha256(raw).hexdigest(), lines=lines, text=text)
    if not isinstance(data, dict):
        raise ScenarioError([Issue(str(path), "", f"a {what} must be a mapping of keys")])
    try:
        return model.model_validate(data), source
    except ValidationError as exc:
        raise ScenarioError([source.issue(tuple(e["loc"]), validation_message(e)) for e in exc.errors()]) \
            from None


#: Key under which rows read from a CSV file keep their origin (file, line) for messages.
ORIGIN = "__origin__"


def read_data_csv(path: Path, source: Source) -> list[dict[str, Any]]:
    """Rows of a CSV data file: numbers as floats, empty cells as missing; each row keeps its
    file and line (under :data:`ORIGIN`) so that errors point at the CSV, not the YAML."""
    import csv

    if not path.exists():
        raise ScenarioError([source.issue(("csv",), f"CSV file {path} not found")])
    with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: a spreadsheet's BOM
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ScenarioError([source.issue(("csv",), f"CSV file {path} has no rows")])
    out = []
    for line, row in enumerate(rows, start=2):
        conv: dict[str, Any] = {ORIGIN: (str(path), line)}
        for k, v in row.items():
            v = (v or "").strip()
            if v == "":
                continue
            try:
                conv[k] = float(v) if k not in ("arm", "group", "category", "source", "study",
                                                "treatment", "label", "outcome") else v
            except ValueError:
                conv[k] = v
        out.append(conv)
    return out
