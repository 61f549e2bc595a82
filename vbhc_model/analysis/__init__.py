"""Outcomes -> decisions: frontier and ICERs, net benefit (PSA analyses come next)."""

from vbhc_model.analysis.frontier import compute_icers, net_monetary_benefit, optimal_strategy
from vbhc_model.analysis.summary import summarise, to_frame, to_records

__all__ = [
    "compute_icers",
    "net_monetary_benefit",
    "optimal_strategy",
    "summarise",
    "to_frame",
    "to_records",
]
