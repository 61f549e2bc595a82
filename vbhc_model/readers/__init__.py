"""Readers of the files a scenario or a command names besides the scenario itself: posterior
NetCDF files, CSV tables of samples, PSA tables from other tools."""
