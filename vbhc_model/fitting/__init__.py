"""Fitting model inputs to trial data with PyMC (``vbhc fit``), and the convergence gate.

Only the ``vbhc fit`` command imports this package's PyMC parts, so ``vbhc run`` stays quick
to start; scenarios read the posteriors it writes with :mod:`vbhc_model.readers.posterior`.
"""
