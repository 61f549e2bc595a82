"""Outcomes -> decisions, on Datasets: frontier and ICERs, net benefit, acceptability, EVPI and
EVPPI, the one-way (tornado) analysis."""

from vbhc_model.analysis.frontier import compute_icers, net_monetary_benefit, optimal_strategy
from vbhc_model.analysis.summary import summarise

__all__ = [
    "compute_icers",
    "net_monetary_benefit",
    "optimal_strategy",
    "summarise",
]
