"""vbhc_model: Markov cohort cost-effectiveness and value modelling.

The pipeline runs one way: scenario file -> parameter draws -> model inputs -> engine -> analysis
-> report (see docs/architecture.md).
"""

__version__ = "0.1.0"
