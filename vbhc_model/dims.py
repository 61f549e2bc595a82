"""Reserved dimension names, the one place they are spelled.

Results are xarray objects addressed by these names, never by axis position.
"""

DRAW = "draw"
STRATEGY = "strategy"
CYCLE = "cycle"
STATE = "state"
CATEGORY = "category"
SERVICE = "service"
ROLE = "role"
LEVEL = "level"  # programme engagement level (non-start, drop-out, completion, ...)
WTP = "wtp"
PARAMETER = "parameter"
PATIENT = "patient"
SUBGROUP = "subgroup"
YEAR = "year"  # a year of the model (a service plan's periods)
