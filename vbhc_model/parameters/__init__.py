"""Scenario parameters -> draws: base values now; sampled distributions in the PSA."""

from vbhc_model.parameters.draws import base_draws, resolve_parameters, table_functions

__all__ = ["base_draws", "resolve_parameters", "table_functions"]
