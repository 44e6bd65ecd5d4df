"""The prediction columns of each task for a list of texts: labels and class probabilities,
values, label sets, or generated replies (``predict_frame`` picks the task's)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from sftlab.data.chat import clean_messages
from sftlab.data.cleaning import clean_texts
from sftlab.data.generation import prompt_budget
from sftlab.inference.predictor import Predictor, class_probabilities, cut_texts, raw_outputs
from sftlab.tasks.generation import generate
from sftlab.utils.errors import SftlabError
from sftlab.utils.progress import progress_bar


def classification_frame(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> pd.DataFrame:
    """``pred_label`` and one ``prob_<label>`` column per class."""
    probs = class_probabilities(predictor, texts, batch_size, progress)
    out = pd.DataFrame({"pred_label": [predictor.labels[i] for i in probs.argmax(axis=1)]})
    return with_probabilities(out, predictor.labels, probs)


def with_probabilities(out: pd.DataFrame, labels: list[str], probs: np.ndarray) -> pd.DataFrame:
    """``out`` with one ``prob_<label>`` column per label."""
    for j, name in enumerate(labels):
        out[f"prob_{name}"] = probs[:, j]
    return out


def regression_frame(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> pd.DataFrame:
    """``pred_value``: the one raw output (no activation), as in ``function_to_apply="none"``."""
    return pd.DataFrame({"pred_value": raw_outputs(predictor, texts, batch_size, progress)[:, 0]})


def multilabel_frame(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> pd.DataFrame:
    """``pred_labels`` (the labels at or above the run's threshold, joined by its label
    delimiter) and one sigmoid ``prob_<label>`` column per label."""
    logits = raw_outputs(predictor, texts, batch_size, progress)
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    threshold = float(predictor.meta.get("threshold", 0.5))
    sep = str(predictor.meta.get("label_delimiter", "|"))
    chosen = probs >= threshold
    out = pd.DataFrame(
        {"pred_labels": [sep.join(np.asarray(predictor.labels)[row].tolist()) for row in chosen]}
    )
    return with_probabilities(out, predictor.labels, probs)


def generation_frame(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> pd.DataFrame:
    """``generated``: the greedy reply to each prompt (a string, or chat messages), cleaned and
    built with the chat template as in training."""

    def clean(texts: list[str]) -> list[str]:
        # a prompt too long loses its start in generation, so the cut keeps its end
        return clean_texts(cut_texts(texts, predictor.max_chars, keep_end=True), predictor.cleaning)

    if all(isinstance(t, str) for t in texts):
        texts = clean(texts)
    else:  # chat messages (predict.py's messages column)
        texts = [clean_messages(t, clean) for t in texts]
    max_new = int(predictor.meta.get("max_new_tokens", 48))
    budget = prompt_budget(predictor.max_length, max_new)
    step = max(1, min(batch_size, 8))  # generation holds a KV cache per row: keep batches small
    replies: list[str] = []
    starts = range(0, len(texts), step)
    for start in progress_bar(starts, len(starts), "generate", enabled=progress):
        replies += generate(
            predictor.model,
            predictor.tokenizer,
            texts[start : start + step],
            max_new,
            step,
            max_prompt_tokens=budget,
        )
    return pd.DataFrame({"generated": replies})


# One function per task: the output columns for a list of texts.
TASKS: dict[str, Callable[..., pd.DataFrame]] = {
    "classification": classification_frame,
    "regression": regression_frame,
    "multilabel": multilabel_frame,
    "generation": generation_frame,
}


def check_task(predictor: Predictor) -> None:
    if predictor.task not in TASKS:
        raise SftlabError(
            f"{predictor.source}: task '{predictor.task}' has no prediction yet "
            f"(supported: {', '.join(TASKS)})"
        )


def predict_frame(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> pd.DataFrame:
    """The prediction columns for ``texts``, one row per text, for the model's task."""
    check_task(predictor)
    return TASKS[predictor.task](predictor, texts, batch_size, progress)
