"""The fuzzer in the suite: mutated scenarios, tables and fit files never crash or hang.

Every example writes one mutant (tests/fuzz/mutate.py) into a copy of the shipped files and
runs it through ``vbhc`` in-process (tests/fuzz/targets.py): the exit code must be 0, 2 or 3,
with no traceback, within the time bound. The default budget is small (about 30 s on 2
cores); ``VBHC_FUZZ_EXAMPLES=N`` sets the examples per target for a longer run, and
``python -m tests.fuzz.full_run`` is the full run whose figures docs/robustness.md gives.
Crashes found are pinned in tests/data/fuzz_corpus/ (tests/fuzz/test_corpus.py).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS, TIMEOUT, Workspace

# PyMC, imported by the fit target, raises the recursion limit on import.
pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

#: Examples per target by default: the scenario loader gets the most.
BUDGET = {"scenario": 12, "analyse": 2, "samples": 4, "patients": 4, "uniforms": 4, "fit": 6}
#: Failures the input-handling work (another branch, issue 11) is fixing: a mutant that
#: fails only in one of these ways is not this test's failure. Audit ids in the reasons.
#: Crashes known and not yet fixed: (text in the output, why); none since issue 11's
#: input-handling fixes.
KNOWN: list[tuple[str, str]] = []


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("fuzz"))


def _examples(target: str) -> int:
    return int(os.environ.get("VBHC_FUZZ_EXAMPLES", BUDGET[target]))


@pytest.mark.parametrize("target", list(TARGETS))
def test_mutants_exit_cleanly(target, workspace):
    @settings(max_examples=_examples(target), deadline=timedelta(seconds=TIMEOUT * 2),
              database=None, derandomize=not os.environ.get("VBHC_FUZZ_EXAMPLES"),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(rng=st.randoms(use_true_random=False))
    def check(rng):
        outcomes, files = TARGETS[target](workspace, rng)
        for o in outcomes:
            if o.failed and not any(text in o.output for text, _ in KNOWN):
                raise AssertionError(f"{o.kind} (exit {o.code}, {o.seconds:.1f} s) on "
                                     f"{' '.join(o.args)}:\n{o.output}\nfiles: {files}")

    check()
