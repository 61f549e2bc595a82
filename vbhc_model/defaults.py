"""Defaults used by more than one module, in one place (a registry of named values).

Each is the default of a function argument or a CLI option elsewhere; change it here and the
API, the CLI and the report agree.
"""

from __future__ import annotations

#: PSA draws simulated at once (bounds memory; results do not depend on it).
CHUNK_SIZE = 10_000
#: A microsimulation's PSA chunk holds at most this many patient states (patients x draws x
#: engagement strata, summed over strategies; 2 bytes each): its chunks of draws are cut to
#: fit, so memory stays bounded however many patients a draw has.
MICROSIM_CHUNK_STATES = 100_000_000
#: ... and at most this many cells of one cycle's transition rows (sub-states x tracker
#: combinations x sub-states x batch columns; 8 bytes each): with trackers, the rows grow
#: with the combinations of their values.
MICROSIM_CHUNK_CELLS = 25_000_000
#: A microsimulation's patients are also summed in this many contiguous blocks (of each
#: column's patients, the same under every strategy): the spread of the block means gives
#: the Monte Carlo standard error of every mean and increment (batch means).
MCSE_BLOCKS = 20
#: Fewer patients per draw than this: no Monte Carlo standard error is reported (blocks of
#: fewer than 10 patients give a spread too rough to read).
MCSE_MIN_PATIENTS = 200
#: Points of the willingness-to-pay grid of the acceptability, EVPI and expected-loss curves.
WTP_GRID_POINTS = 41
#: Lower and upper quantiles of the 95% intervals reported.
INTERVAL = (0.025, 0.975)
#: Draws per strategy shown on the cost-effectiveness plane: enough to show the cloud.
PLANE_POINTS = 2000
#: Simulations for the standard errors of EVPPI estimates (``vbhc voi --se``).
SE_SIMULATIONS = 100
