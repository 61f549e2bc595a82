"""The drivers: the one layer that calls the others in order (simulate, PSA over chunks,
scale-out, DSA runs, calibration, update)."""
