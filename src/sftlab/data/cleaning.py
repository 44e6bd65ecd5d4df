"""Text cleaning shared by training and prediction: ``clean_texts(texts, steps)``.

Minimal version (issue 6 needs the signature); the data branch's fuller version replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sftlab.errors import SftlabError

_SPACES = re.compile(r"\s+")

STEPS: dict[str, Callable[[str], str]] = {
    "whitespace": lambda s: _SPACES.sub(" ", s).strip(),
    "lowercase": str.lower,
}


def clean_texts(texts: list[str], steps: Sequence[str]) -> list[str]:
    """Apply the named cleaning steps, in order, to every text."""
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise SftlabError(f"unknown cleaning step '{unknown[0]}': use one of {', '.join(STEPS)}")
    out = [str(t) for t in texts]
    for step in steps:
        fn = STEPS[step]
        out = [fn(t) for t in out]
    return out
