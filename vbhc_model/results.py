"""The results of every pipeline step, as typed, frozen values.

A pipeline step (vbhc_model.pipeline) returns one of these; the report layer
(vbhc_model.report) turns it into files and text; nothing else travels between them. Each
holds labelled xarray objects (dims from :mod:`vbhc_model.dims`, units and provenance in
attrs), so a result can also be inspected or saved directly from Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing only: results do not import the layers that make them
    import pandas as pd
    import xarray as xr

    from vbhc_model.scenario.schema import Scenario


@dataclass(frozen=True)
class RunResult:
    """``vbhc run``: the base case, its decision table, and optionally the PSA.

    Attributes
    ----------
    scenario : Scenario
    outcomes : xarray.Dataset
        Base-case outcomes per person (one draw), with the trace if asked for.
    table : xarray.Dataset
        The decision table: frontier, ICERs, NMB and outcome means
        (:func:`vbhc_model.analysis.summary.summarise`).
    psa : xarray.Dataset, optional
        Per-draw outcomes and sampled parameters (may be lazily file-backed).
    psa_summary, psa_curves : xarray.Dataset, optional
        The PSA's analyses at the scenario's WTP values and on a WTP grid.
    notes : tuple of str
        Things the user should know about the run (printed before it starts).
    subgroups : xarray.Dataset, optional
        The decision in each subgroup the scenario declares
        (:func:`vbhc_model.analysis.subgroups.by_subgroup`), with the PSA's acceptability if
        there is a PSA.
    montecarlo : xarray.Dataset, optional
        A microsimulation PSA's split of the variance between parameters and patients, with
        the patients a draw needs (:func:`vbhc_model.analysis.montecarlo.variance_split`).
    patients : xarray.Dataset, optional
        A microsimulation's base case patient by patient: states and totals
        (:func:`vbhc_model.model.patients.assemble_patients`), when asked for.
    prices : xarray.Dataset, optional
        The value-based price of each strategy with a programme cost
        (:func:`vbhc_model.analysis.price.value_based_price`; from the PSA when there is one).
    """

    scenario: Scenario
    outcomes: xr.Dataset
    table: xr.Dataset
    psa: xr.Dataset | None = None
    psa_summary: xr.Dataset | None = None
    psa_curves: xr.Dataset | None = None
    notes: tuple[str, ...] = ()
    subgroups: xr.Dataset | None = None
    patients: xr.Dataset | None = None
    montecarlo: xr.Dataset | None = None
    prices: xr.Dataset | None = None


@dataclass(frozen=True)
class PlanResult:
    """``vbhc plan``: a service plan's budget, care, clinician time and QALYs by calendar year.

    Attributes
    ----------
    scenario : Scenario
    totals : xarray.Dataset
        Per draw (:func:`vbhc_model.analysis.budget.plan_totals`).
    """

    scenario: Scenario
    totals: xr.Dataset


@dataclass(frozen=True)
class CompareResult:
    """``vbhc compare``: the base case and the scenario's variants side by side.

    Attributes
    ----------
    scenario : Scenario
    table : xarray.Dataset
        Dims ``variant`` x ``strategy`` (x ``wtp``): ``cost``, ``effect``, ``status``,
        ``icer``, ``nmb``, ``p_ce`` (with a PSA); ``optimal`` (variant x wtp)
        (:func:`vbhc_model.pipeline.compare.compare`).
    """

    scenario: Scenario
    table: xr.Dataset


@dataclass(frozen=True)
class VoiResult:
    """``vbhc voi``: EVPPI of single parameters and groups, with the EVPI they are read against.

    Attributes
    ----------
    table : xarray.Dataset
        Dim ``group`` (ranked by EVPPI at the first WTP) x ``wtp``: ``evppi`` and more
        (:func:`vbhc_model.analysis.voi.evppi_table`).
    evpi : xarray.DataArray
        EVPI per person by WTP, of the same draws.
    source : Path
        The results folder whose ``psa.nc`` was analysed (``evppi.nc`` is written there).
    suggested_groups : tuple of (str, tuple of str)
        Groups of parameters drawn together (from one posterior file, one table of samples,
        one joint distribution), each with where it comes from, for ``vbhc voi --group``.
    """

    table: xr.Dataset
    evpi: xr.DataArray
    source: Path
    suggested_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Threshold:
    """The value of a parameter at which a strategy becomes (or stops being) optimal."""

    parameter: str
    strategy: str
    wtp: float
    value: float
    inmb_at_value: float
    range: tuple[float, float]
    basis: str
    more_thresholds: int
    #: Where the strategy is optimal: "below" or "above" the value (by the grid's first
    #: crossing).
    optimal_side: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for attrs and JSON)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class DsaResult:
    """``vbhc dsa``: the one-way analysis, and optionally a two-way map and a threshold.

    Attributes
    ----------
    scenario : Scenario
    one_way : xarray.Dataset
        Dim ``parameter`` sorted by swing (:func:`vbhc_model.analysis.tornado.one_way_table`).
    two_way : xarray.Dataset, optional
    threshold : Threshold, optional
    """

    scenario: Scenario
    one_way: xr.Dataset
    two_way: xr.Dataset | None = None
    threshold: Threshold | None = None


@dataclass(frozen=True)
class AnalyseResult:
    """``vbhc analyse``: the analyses of a PSA table exported from another tool.

    Attributes
    ----------
    psa : xarray.Dataset
        The table read as a PSA (``draw`` x ``strategy``, and ``parameters`` if any).
    frontier : xarray.Dataset
        The incremental analysis on the mean costs and effects.
    summary, curves : xarray.Dataset
        The PSA's analyses at the WTP values asked for and on a WTP grid.
    evppi : xarray.Dataset, optional
        EVPPI of each varying parameter column (None if there is none).
    unpaired_columns : str
        Cost or effect columns without their partner, read as parameters.
    source : Path
        The table analysed.
    """

    psa: xr.Dataset
    frontier: xr.Dataset
    summary: xr.Dataset
    curves: xr.Dataset
    evppi: xr.Dataset | None
    unpaired_columns: str
    source: Path


@dataclass(frozen=True)
class FileCheck:
    """One scenario file checked by ``vbhc validate``: its summary, or its issues."""

    path: Path
    ok: bool
    strategies: int = 0
    states: int = 0
    parameters: int = 0
    issues: tuple = ()
    #: Things to know that are not mistakes (files read from outside the scenario's folder).
    notes: tuple = ()


@dataclass(frozen=True)
class ValidationResult:
    """``vbhc validate``: every file checked, with every issue found."""

    files: tuple[FileCheck, ...] = field(default=())

    @property
    def issues(self) -> list:
        """All issues of all files, in file order."""
        return [i for f in self.files for i in f.issues]


@dataclass(frozen=True)
class FitResult:
    """``vbhc fit``: a posterior that passed the convergence gate (or was allowed not to).

    Attributes
    ----------
    name : str
        The fit file's ``name`` (the default results folder is ``results/<name>``).
    idata : xarray.DataTree
        ArviZ-compatible groups (posterior, sample_stats, prior, predictive, observed and
        constant data), with provenance, diagnostics and the fit file's text in attrs.
    summary : pandas.DataFrame
        Posterior summary of the outputs (mean, median, sd, 95% ETI, R-hat, ESS).
    diagnostics : dict
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``.
    failures : tuple of str
        The gate's failures (empty when converged).
    seconds : float
    outputs : tuple of str
        The variables scenarios may use.
    figures : bool
        Whether the report draws the trace and posterior predictive figures.
    """

    name: str
    idata: Any
    summary: pd.DataFrame
    diagnostics: dict
    failures: tuple[str, ...]
    seconds: float
    outputs: tuple[str, ...]
    figures: bool = True


@dataclass(frozen=True)
class CalibrationResult:
    """``vbhc calibrate``: parameters calibrated to targets through the model.

    Attributes
    ----------
    name : str
    tree : xarray.DataTree
        ``posterior`` (chain x draw, as ``vbhc fit`` writes it), ``prior``, ``sample_stats``
        (log-likelihood and importance weight of each prior draw), ``observed_data``.
    summary : pandas.DataFrame
        Prior and posterior of each parameter and each target's predicted share.
    ess : float
        Importance-sampling effective sample size.
    failures : tuple of str
    seconds : float
    """

    name: str
    tree: Any
    summary: pd.DataFrame
    ess: float
    failures: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class UpdateResult:
    """``vbhc update``: the refit and the decisions before and after.

    Attributes
    ----------
    name : str
        The fit's name (the default results folder is ``results/<name>_update``).
    fit : FitResult
        The refit with the new data.
    comparison : pandas.DataFrame
        Per scenario and WTP: optimal strategy, its P(cost-effective) and the EVPI, before and
        after.
    before, after : pandas.DataFrame
        Posterior means of the fit's outputs, before and after.
    warnings : tuple of str
    """

    name: str
    fit: FitResult
    comparison: pd.DataFrame
    before: pd.DataFrame
    after: pd.DataFrame
    warnings: tuple[str, ...] = ()
    #: The strategies' labels (code -> label) in the scenarios compared, for the console.
    labels: dict = field(default_factory=dict)
