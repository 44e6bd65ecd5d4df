"""Text cleaning: a list of named steps, applied the same way at training and prediction time.

``clean_texts(texts, steps)`` is the one entry point; the run config's ``data.cleaning`` names
the steps. Only ``html`` and ``normalize`` are on by default: they remove markup and encoding
noise that a pretrained tokenizer never saw in pre-training. ``lowercase``, ``stopwords`` and
``punctuation`` help bag-of-words models (fewer, denser features) but usually hurt a
transformer, which uses case, function words ("not", "but") and punctuation ("!!", "?").
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence

from sftlab.errors import SftlabError

DEFAULT_STEPS = ("html", "normalize")

# A tag starts with a letter, "/" or "!": "<3" and "a < b" are not markup.
_TAG = re.compile(r"<[A-Za-z/!][^<>]*>")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]|_")
# Control and format characters (zero-width spaces, soft hyphens, BOMs) that NFKC keeps.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\xad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
)


def _html(text: str) -> str:
    return html.unescape(_TAG.sub(" ", text))


def _normalize(text: str) -> str:
    text = _INVISIBLE.sub(" ", unicodedata.normalize("NFKC", text))
    return _SPACE.sub(" ", text).strip()


def _stopwords(text: str) -> str:
    # lazy: only this step needs sklearn
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return " ".join(
        w for w in text.split() if w.lower().strip(".,!?;:'\"") not in ENGLISH_STOP_WORDS
    )


def _punctuation(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub("", text)).strip()


STEPS: dict[str, Callable[[str], str]] = {
    "html": _html,  # tags removed, entities (&amp; &lt;) decoded
    "normalize": _normalize,  # unicode NFKC, invisible characters dropped, runs of whitespace -> " "
    "lowercase": str.lower,
    "urls": lambda t: _URL.sub("http", t),  # the placeholder Twitter-trained models use
    "mentions": lambda t: _MENTION.sub("@user", t),
    "stopwords": _stopwords,  # scikit-learn's English list
    "punctuation": _punctuation,
}


def check_steps(steps: Sequence[str]) -> None:
    """Fail in one line on an unknown step name."""
    for step in steps:
        if step not in STEPS:
            raise SftlabError(
                f"unknown cleaning step '{step}' in data.cleaning: use any of {', '.join(STEPS)}"
            )


def clean_texts(texts: list[str], steps: Sequence[str]) -> list[str]:
    """Apply the named cleaning steps, in order, to every text."""
    check_steps(steps)
    funcs = [STEPS[s] for s in steps]
    out = []
    for text in texts:
        for fn in funcs:
            text = fn(text)
        out.append(text)
    return out
