"""``vbhc analyse``: the analyses of a PSA exported from another tool (a CSV table)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vbhc_model import dims
from vbhc_model.analysis.acceptability import analyse_psa, wtp_grid
from vbhc_model.analysis.frontier import compute_icers
from vbhc_model.analysis.voi import evppi_table, varying_parameters
from vbhc_model.errors import VbhcError
from vbhc_model.readers.tables import read_psa
from vbhc_model.results import AnalyseResult


def analyse(table: str | Path, *, wtp: Sequence[float], method: str = "gam",
            names: dict[str, str] | None = None) -> AnalyseResult:
    """Frontier on the means, acceptability, EVPI, and the EVPPI of each parameter column of
    a PSA table (wide or long, or a folder of BCEA's or dampack's matrices; ``names`` maps
    other column names; see :mod:`vbhc_model.readers.tables`).

    Raises
    ------
    VbhcError
        No WTP, or a table that cannot be read as a PSA (the message names file and line).
    """
    if not wtp:
        raise VbhcError("give at least one --wtp value")
    psa = read_psa(table, names)
    means = psa.mean(dims.DRAW)
    frontier = compute_icers(means["total_cost"].values, means["qalys"].values,
                             means[dims.STRATEGY].values)
    summary = analyse_psa(psa, wtp)
    curves = analyse_psa(psa, wtp_grid(wtp), frontier=False)
    voi = None
    names = varying_parameters(psa) if "parameters" in psa else []
    if names:  # parameter columns that never vary explain nothing: no EVPPI to rank
        voi = evppi_table(psa, {n: [n] for n in names}, wtp, method=method)
        voi = voi.sortby(-voi["evppi"].isel(wtp=0))
    return AnalyseResult(psa=psa, frontier=frontier, summary=summary, curves=curves, evppi=voi,
                         unpaired_columns=psa.attrs.get("unpaired_columns", ""),
                         source=Path(table))
