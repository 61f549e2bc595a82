"""The names an expression may use besides a scenario's parameters and tables, in one place.

The schema keeps scenario names from shadowing them (:data:`RESERVED_NAMES`), the checks say
which expressions may use which (:data:`CYCLE_NAMES`, :data:`FUNCTION_NAMES`), and the model
builder provides their values per cycle and engagement stratum (:mod:`vbhc_model.model.build`).
"""

from __future__ import annotations

from vbhc_model.scenario.expressions import BUILTIN_FUNCTIONS

#: Time in the model: the cycle number, the years since the start, the cohort's age.
TIME_NAMES = frozenset({"cycle", "time", "age"})
#: An engagement level's effect and resource use, provided per engagement stratum.
ENGAGEMENT_NAMES = frozenset({"engagement_effect", "engagement_resource_use"})
#: Every name a transition or per-cycle payoff may use besides parameters and tables.
CYCLE_NAMES = TIME_NAMES | {"time_in_state", "cycle_length"} | ENGAGEMENT_NAMES
#: Names the engine provides to expressions, and ``complement`` (the rest of a row):
#: a parameter or table may not take them.
RESERVED_NAMES = CYCLE_NAMES | {"complement"}
#: The functions every expression may call.
FUNCTION_NAMES = frozenset(BUILTIN_FUNCTIONS)
