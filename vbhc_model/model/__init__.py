"""Parameter draws -> per-strategy transition and payoff arrays, with their checks."""

from vbhc_model.model.build import Channels, ModelInputs, StrategyInputs, build_model

__all__ = ["Channels", "ModelInputs", "StrategyInputs", "build_model"]
