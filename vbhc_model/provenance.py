"""Provenance attributes, written on every Dataset vbhc_model produces."""

from __future__ import annotations

import datetime as _dt
import platform

import vbhc_model


def make_attrs(scenario, *, n_draws: int, engine: str, seed: int | None = None, **extra) -> dict:
    """Provenance attrs: package version, scenario file and SHA-256, seed, draws, engine, time.

    Examples
    --------
    >>> sorted(make_attrs(None, n_draws=1, engine="cohort"))[:3]
    ['created', 'engine', 'n_draws']
    """
    src = getattr(scenario, "source", None)
    attrs = {
        "vbhc_model_version": vbhc_model.__version__,
        "engine": engine,
        "n_draws": int(n_draws),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
    }
    if scenario is not None:
        attrs.update(
            scenario=scenario.name,
            scenario_title=scenario.metadata.title,
            scenario_file=src.file if src else "",
            scenario_sha256=src.sha256 if src else "",
            currency=scenario.metadata.currency,
            price_year=scenario.metadata.price_year or "not stated",
            seed=int(scenario.settings.seed if seed is None else seed),
            perspective=scenario.settings.perspective,
        )
        if getattr(scenario, "variant", None):
            attrs["variant"] = scenario.variant
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs
