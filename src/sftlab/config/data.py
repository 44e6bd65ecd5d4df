"""``DataConfig``: the ``data`` config group as a dataclass, validated once at the boundary."""

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sftlab.config.ranges import check_ranges
from sftlab.utils.errors import SftlabError

# The text cleaning steps sftlab.data.cleaning implements, in its order; the first two are on
# by default (markup and encoding noise a pretrained tokenizer never saw).
CLEANING_STEPS = ("html", "normalize", "lowercase", "urls", "mentions", "stopwords", "punctuation")
DEFAULT_STEPS = ("html", "normalize")


def check_steps(steps: Sequence[str]) -> None:
    """Fail in one line on an unknown step name."""
    for step in steps:
        if step not in CLEANING_STEPS:
            raise SftlabError(
                f"unknown cleaning step '{step}' in data.cleaning: use any of {', '.join(CLEANING_STEPS)}"
            )


TASKS = ("classification", "multilabel", "regression", "generation")
SOURCES_HELP = "'files', 'hub' or a packaged set"
AUTO = "auto"
AUTO_COVERAGE = 0.95  # data.max_length=auto covers this fraction of the training texts whole
AUTO_CAP = 512  # ... and never exceeds this, nor the tokenizer's own limit


@dataclass
class DataConfig:
    """The ``data`` config group."""

    source: str
    """A packaged set (``airline_sentiment``, ``sms_spam``), ``files`` or ``hub``."""
    path: str | None = None
    """``files``: the training file (CSV, TSV, JSON, JSONL, parquet) or a ``save_to_disk``
    folder; ``hub``: the dataset name."""
    validation_path: str | None = None
    """An optional validation file, used as it is (else made from train)."""
    test_path: str | None = None
    """An optional test file, used as it is (else made from train)."""
    hub_config: str | None = None
    """``hub``: the dataset's configuration (subset) name."""
    text_column: str = "text"
    text_pair_column: str | None = None
    """A second text column (NLI, paraphrase): tokenized as a pair with the first."""
    label_column: str = "label"
    labels: list[Any] | None = None
    """Fixes the label set and its id order; null = the training labels, sorted."""
    split: Sequence[float] = (0.8, 0.1, 0.1)
    """Train / validation / test fractions (stratified, seeded) for the splits not given."""
    train_size: float | int | None = None
    """Keep only this many training rows (an int) or this fraction (a float <= 1), drawn
    stratified and seeded; validation and test stay whole. For learning curves."""
    train_per_class: int | None = None
    """Keep this many training rows of each label (all of a label that has fewer), drawn
    seeded; validation and test stay whole. Single-label classification; for few-shot runs."""
    cleaning: list[str] = field(default_factory=lambda: list(DEFAULT_STEPS))
    """Text cleaning steps, in order (see ``sftlab.data.cleaning``)."""
    drop_duplicates: bool = True
    """Drop exact duplicate texts (after cleaning) within a split, keeping the first."""
    on_bad_rows: str = "drop"
    """``drop`` rows with an empty text or label (with a warning), or ``error``."""
    max_length: int | str = 128
    """Tokens per text (longer ones are truncated), or ``auto``: the length that covers
    ``AUTO_COVERAGE`` of the training texts, capped at the tokenizer's limit (resolved and
    logged by the DataModule, which then holds the number)."""
    max_chars: int | None = None
    """Texts longer than this are cut before tokenizing; null = 32 characters per token."""
    batch_size: int = 32
    eval_batch_size: int = 128
    group_by_length: bool = False
    """Batches of similar lengths (Hugging Face's LengthGroupedSampler: less padding). Off by
    default: where length tracks the label, such batches are nearly single-class and cost
    accuracy. ``unpad`` saves the padding without changing the batches."""
    unpad: bool = True
    """Pack each training batch into one row of real tokens so that pad tokens never reach a
    dense layer (BERT / RoBERTa / XLM-R bodies; other models pad as usual)."""
    sampler: str | None = None
    """null = uniform shuffling; ``balanced`` = oversample rare labels (weighted sampler)."""
    num_workers: int = 0
    encoding: str = "utf-8"
    cache_dir: str | None = None
    """Where tokenized data are cached across runs; null = no cache."""
    num_labels: int | None = None
    """Not read (the count comes from the labels): accepted so that the ``config.yaml`` of runs
    made before the data configs dropped it still loads (resume, export)."""
    task: str = "classification"
    """``classification`` (one label per row), ``multilabel`` (a set of labels per row) or
    ``regression`` (a number per row); see ``sftlab.tasks``."""
    label_delimiter: str | None = None
    """``multilabel``: the separator of labels in one cell (``a|b``); lists need none."""
    threshold: float | str = 0.5
    """``multilabel``: the probability above which a label is predicted, or ``tune`` (the
    best micro-F1 threshold on the validation split)."""
    prompt_column: str = "prompt"
    """``generation``: the column holding the prompt (the user's turn)."""
    response_column: str = "response"
    """``generation``: the column holding the reply the model learns to give."""
    prompt_template: str | None = None
    """``generation``: a ``str.format`` template over the row's columns that makes the prompt,
    e.g. ``"Translate English to Spanish: {source}"``; null = the prompt column as it is."""
    messages_column: str | None = None
    """``generation``: a column of chat messages (``[{"role", "content"}, ...]``) used instead
    of prompt/response columns: the last (assistant) message is the response, the ones
    before it the prompt, rendered by the tokenizer's chat template."""
    group_column: str | None = None
    """``generation``: rows sharing a value here (a conversation id) stay in one split, so no
    conversation leaks from training into validation or test."""
    packing: bool = False
    """``generation``: pack several short training examples into each row of up to
    ``max_length`` tokens (attention and loss stay per example)."""
    max_new_tokens: int = 48
    """``generation``: the most tokens generated per held-out prompt at test time."""
    generate_samples: int = 32
    """``generation``: how many test rows get a generated reply (scored with chrF and BLEU)."""

    def __post_init__(self) -> None:
        if (
            len(self.split) != 3
            or any(f < 0 for f in self.split)
            or abs(sum(self.split) - 1) > 1e-6
        ):
            raise SftlabError(
                f"data.split must be 3 fractions summing to 1, got {list(self.split)}"
            )
        if self.split[0] == 0:
            raise SftlabError("data.split gives no training rows: make its first fraction > 0")
        check_ranges({"data": vars(self)})  # max_length, batch sizes, train_size, threshold...
        if self.on_bad_rows not in {"drop", "error"}:
            raise SftlabError(
                f"data.on_bad_rows must be 'drop' or 'error', got '{self.on_bad_rows}'"
            )
        if self.sampler not in {None, "balanced"}:
            raise SftlabError(f"data.sampler must be null or 'balanced', got '{self.sampler}'")
        if self.train_per_class is not None:
            if self.train_size is not None:
                raise SftlabError(
                    f"data.train_size={self.train_size} and data.train_per_class="
                    f"{self.train_per_class} both pick training rows: set one of them"
                )
            if not self.is_classification:
                raise SftlabError(
                    f"data.train_per_class counts rows per label of single-label "
                    f"classification, not data.task={self.task}: use data.train_size"
                )
        check_task(self)
        check_encoding(self.encoding, "data.encoding")
        if self.max_chars is None:
            self.max_chars = 32 * (AUTO_CAP if self.max_length == AUTO else self.max_length)
        self.cleaning = list(self.cleaning or [])
        check_steps(self.cleaning)

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SftlabError(
                f"unknown key data.{unknown[0]}: the data config takes {', '.join(sorted(known))}"
            )
        return cls(**values)


def check_encoding(name: str, key: str) -> None:
    """An encoding name Python knows, before any file is opened with it."""
    try:
        codecs.lookup(name)
    except LookupError:
        raise SftlabError(
            f"{key}={name} is not an encoding Python knows: use e.g. utf-8, latin-1 or gb18030"
        ) from None


def check_task(cfg: DataConfig) -> None:
    """The task-dependent keys, checked once."""
    if cfg.task not in TASKS:
        raise SftlabError(f"unknown data.task '{cfg.task}': use one of {', '.join(TASKS)}")
    if cfg.task != "classification" and cfg.sampler == "balanced":
        raise SftlabError(
            f"data.sampler=balanced needs single-label classes: set data.sampler=null for data.task={cfg.task}"
        )
    if cfg.messages_column and cfg.prompt_template:
        raise SftlabError(
            "data.messages_column and data.prompt_template are both set: chat messages are their "
            "own prompt, so set data.prompt_template=null (or drop data.messages_column)"
        )
    if cfg.task == "generation" and cfg.max_length == AUTO:
        raise SftlabError(
            "data.max_length=auto is for classification data: give generation a number of "
            "prompt + response tokens (e.g. data.max_length=256)"
        )
    if cfg.task != "generation":
        for key in ("messages_column", "group_column", "packing"):
            if getattr(cfg, key):
                raise SftlabError(
                    f"data.{key} applies to data.task=generation only: remove it for data.task={cfg.task}"
                )
