"""The engine seam: the registry and settings.engine, Outputs, the table of outcome variables."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from tests.conftest import SCENARIOS
from vbhc_model.engines.base import Outputs
from vbhc_model.engines.registry import ENGINES, get_engine
from vbhc_model.model.outcomes import OUTCOMES, PSA_VARIABLES, SOURCES, computed
from vbhc_model.parameters import base_draws
from vbhc_model.pipeline.chunk import PSA_OUTPUTS
from vbhc_model.pipeline.simulate import simulate
from vbhc_model.scenario import load_scenario
from vbhc_model.scenario.schema import Settings


@pytest.fixture(scope="module")
def thr():
    return load_scenario(SCENARIOS / "reference" / "thr_dmhee.yaml")


def test_every_engine_the_schema_allows_is_registered_under_its_name():
    allowed = typing.get_args(Settings.model_fields["engine"].annotation)
    assert set(allowed) == set(ENGINES)
    assert Settings.model_fields["engine"].default == "cohort"
    for name, engine in ENGINES.items():
        assert engine.name == name and callable(engine.run)
    with pytest.raises(ValueError, match="unknown engine 'markov'"):
        get_engine("markov")


def test_the_scenario_default_engine_is_the_cohort_and_named_in_provenance(thr):
    assert thr.settings.engine == "cohort"
    assert simulate(thr, base_draws(thr)).attrs["engine"] == "cohort"


def test_outputs_select_variables_in_table_order(thr):
    draws = base_draws(thr, 3)
    full = simulate(thr, draws)
    some = simulate(thr, draws, outputs=Outputs(variables=("qalys", "total_cost")))
    assert list(some.data_vars) == ["total_cost", "qalys"]
    for name in some.data_vars:
        np.testing.assert_array_equal(some[name].values, full[name].values)
        assert some[name].attrs == full[name].attrs
    assert some.attrs.keys() == full.attrs.keys()


def test_outputs_ask_for_detail(thr):
    draws = base_draws(thr)
    out = simulate(thr, draws, outputs=Outputs(trace=True, per_cycle=True))
    # THR declares no subgroups and no steps, the cohort has no Monte Carlo error, and no
    # periods were asked for: every other variable
    assert list(out.data_vars) == [v.name for v in OUTCOMES
                                   if not v.source.startswith(("subgroup", "mcse", "period"))
                                   and v.kind != "switched"]
    years = simulate(thr, draws, outputs=Outputs(periods=1))
    assert [v for v in years.data_vars if v.startswith("year_")] == [
        "year_costs", "year_qalys", "year_utilisation", "year_clinician_hours"]
    same = simulate(thr, draws, trace=True, per_cycle=True)
    assert out.identical(same.assign_attrs(created=out.attrs["created"]))
    only_trace = simulate(thr, draws, outputs=Outputs(trace=True, variables=("trace",)))
    assert list(only_trace.data_vars) == ["trace"]
    # A per-cycle variable is not computed unless per_cycle asks for it.
    assert "cycle_qalys" not in simulate(thr, draws, outputs=Outputs(variables=("cycle_qalys",)))


def test_outputs_are_checked(thr):
    draws = base_draws(thr)
    with pytest.raises(ValueError, match=r"unknown outcome variable\(s\) \['qaly'\]"):
        simulate(thr, draws, outputs=Outputs(variables=("qaly",)))
    with pytest.raises(ValueError, match="not both"):
        simulate(thr, draws, outputs=Outputs(), trace=True)
    with pytest.raises(TypeError, match="tuple of names"):
        Outputs(variables="qalys")
    assert Outputs(variables=["qalys"]).variables == ("qalys",)


def test_the_table_of_outcome_variables():
    names = [v.name for v in OUTCOMES]
    assert len(names) == len(set(names))
    assert PSA_VARIABLES == ("total_cost", "costs", "qalys", "life_years", "utilisation",
                             "clinician_hours", "engagement", "stepped_up",
                             "subgroup_total_cost", "subgroup_qalys", "subgroup_life_years",
                             "subgroup_share")
    assert PSA_OUTPUTS == Outputs(variables=PSA_VARIABLES)
    assert [v.name for v in computed(PSA_OUTPUTS)] == list(PSA_VARIABLES)
    for v in OUTCOMES:
        assert v.source in SOURCES
        assert (v.source in ("cycle", "trace")) == (v.dims[:1] == ("cycle",))
        assert (v.source.startswith("subgroup")) == (v.dims[:1] == ("subgroup",))
        assert not (v.source.startswith("mcse") and v.psa)  # the base case's only
        assert (v.discounted is None) == (v.source in ("engagement", "trace", "subgroup_share"))
