"""Text cleaning: a list of named steps, applied the same way at training and prediction time.

``clean_texts(texts, steps)`` is the one entry point; the run config's ``data.cleaning`` names
the steps. Only ``html`` and ``normalize`` are on by default: they remove markup and encoding
noise that a pretrained tokenizer never saw in pre-training. ``lowercase``, ``stopwords`` and
``punctuation`` help bag-of-words models (fewer, denser features) but usually hurt a
transformer, which uses case, function words ("not", "but") and punctuation ("!!", "?").

Chinese, Japanese and Korean text: no step splits on spaces except ``stopwords`` (an English
word list), which refuses CJK text in one line. ``normalize`` (NFKC) folds full-width forms
(ＡＢＣ１２３ -> ABC123, full-width ，！？ -> ,!?) and the ideographic space; ideographs and
CJK punctuation such as 。、《》 stay. ``punctuation`` keeps every letter of every script.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from sftlab.config.data import CLEANING_STEPS, DEFAULT_STEPS, check_steps
from sftlab.utils.errors import SftlabError

__all__ = ["DEFAULT_STEPS", "STEPS", "check_script", "check_steps", "clean_texts"]


# A tag starts with a letter, "/" or "!": "<3" and "a < b" are not markup.
_TAG = re.compile(r"<[A-Za-z/!][^<>]*>")
# A URL starts after any non-ASCII-alphanumeric and ends at the first non-ASCII character:
# Chinese text runs on without spaces (访问www.example.com很好用), where \b finds no word
# boundary before "www" and \S+ would swallow the words after the URL.
_URL = re.compile(r"(?<![A-Za-z0-9])(?:https?://|www\.)[\x21-\x7e]+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]|_")
# Control and format characters (zero-width spaces, soft hyphens, BOMs) that NFKC keeps.
# Han ideographs (with extension A and compatibility forms), kana, hangul: scripts written
# without spaces between words.
CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)
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
    "stopwords": _stopwords,  # scikit-learn's English list; refuses CJK text (check_script)
    "punctuation": _punctuation,
}
assert tuple(STEPS) == CLEANING_STEPS  # the names the config check accepts


def check_script(
    texts: Sequence[str], steps: Sequence[str], rows: Sequence[Any] | None = None
) -> None:
    """Refuse ``stopwords`` on Chinese/Japanese/Korean text: the English list is matched
    against space-separated words, and these scripts put no spaces between words."""
    if "stopwords" not in steps:
        return
    for i, text in enumerate(texts):
        if CJK.search(text):
            row = rows[i] if rows is not None else i + 1
            raise SftlabError(
                f"data.cleaning: 'stopwords' removes English words found between spaces and "
                f"cannot segment Chinese, Japanese or Korean text (row {row}: {text[:20]!r}): "
                f"remove 'stopwords' from data.cleaning"
            )


def clean_texts(
    texts: list[str], steps: Sequence[str], rows: Sequence[Any] | None = None
) -> list[str]:
    """Apply the named cleaning steps, in order, to every text (``rows``: the row numbers an
    error names; default: 1-based positions)."""
    check_steps(steps)
    check_script(texts, steps, rows)
    funcs = [STEPS[s] for s in steps]
    out = []
    for text in texts:
        for fn in funcs:
            text = fn(text)
        out.append(text)
    return out
