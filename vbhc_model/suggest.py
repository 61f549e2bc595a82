""""Did you mean ...?": the one place a misspelt name gets its suggestion."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable, *, ignore_case: bool = True) -> str:
    """A ``"; did you mean 'x'?"`` hint naming the closest candidate, or ``""``.

    Parameters
    ----------
    word : str
        What the user wrote.
    candidates : iterable
        The valid names (converted with ``str``).
    ignore_case : bool
        Compare lower-cased names (the suggestion keeps its own case).

    Examples
    --------
    >>> did_you_mean("p_sik", ["p_sick", "p_dead"])
    "; did you mean 'p_sick'?"
    >>> did_you_mean("zzz", ["p_sick"])
    ''
    """
    options = [str(c) for c in candidates]
    if ignore_case:
        lowered = {o.lower(): o for o in options}
        match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
        return f"; did you mean '{lowered[match[0]]}'?" if match else ""
    match = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""
