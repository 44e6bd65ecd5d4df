"""Load the tokenizer and the Hugging Face model named by the ``model`` config group.

``model.name_or_path`` may be a packaged model (``pkg://dist/path``), a local folder, or a
hub name. A hub name is looked up in the local cache first; when it is not cached and the
hub cannot be reached, loading fails at once with one line instead of retrying for minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from sftlab.models.modeling_pooled import (
    POOLINGS,
    PooledClassifierConfig,
    PooledForSequenceClassification,
)
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import hub_reachable, resolve

log = logging.getLogger(__name__)


@contextmanager
def quiet_loading(local: bool = True) -> Iterator[None]:
    """No load-report table and (``local``: nothing to download) no progress bar from
    transformers while loading or saving weights: ``load_model`` says in one line which head is
    new, and a sub-second bar on every run is noise."""
    report = logging.getLogger("transformers.modeling_utils")
    level, bars = report.level, hf_logging.is_progress_bar_enabled()
    report.setLevel(logging.ERROR)
    if local:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        report.setLevel(level)
        if local and bars:
            hf_logging.enable_progress_bar()


def _say_new_head(names: list[str], labels: int, how: str = "") -> None:
    if names:
        log.info("new head: %s (%d labels%s)", ", ".join(names), labels, how)


def register_pooled() -> None:
    """Make the Auto classes know sftlab's pooled classifier, so that a ``model.pooling`` run
    loads from its own (local) code: no ``trust_remote_code`` and no prompt. Plain Hugging Face
    code without sftlab still loads the folder with ``trust_remote_code=True``."""
    AutoConfig.register(PooledClassifierConfig.model_type, PooledClassifierConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(
        PooledClassifierConfig, PooledForSequenceClassification, exist_ok=True
    )


DROPOUT_KEYS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "dropout",
    "attention_dropout",
)


def locate(name_or_path: str, what: str = "model.name_or_path") -> tuple[str, bool]:
    """(where to load from, local_files_only) for a packaged model, a folder or a hub name."""
    resolved = resolve(name_or_path)
    if Path(resolved).is_dir():
        return resolved, True
    looks_like_path = resolved.startswith((".", "/", "~")) or resolved.count("/") > 1
    if looks_like_path:
        raise SftlabError(f"{what}: folder not found: {resolved}")
    return resolved, False


def _from_hub(loader, name: str, what: str, **kwargs):
    """Load from the local cache, else from the hub when it can be reached, else fail in one line."""
    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not hub_reachable():
        raise SftlabError(
            f"{what}='{name}' is not a local folder nor in the Hugging Face cache, and the hub "
            f"cannot be reached: download it where you have internet (save_pretrained) and set "
            f"{what}=/path/to/that/folder, or use model=minilm (packaged, offline)"
        )
    try:
        return loader(name, **kwargs)
    except OSError as e:
        raise SftlabError(f"{what}='{name}' could not be loaded from the hub: {e}") from None


def _with_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Decoder tokenizers (Llama, GPT-2) often have no pad token: batching needs one, and a
    decoder classifier finds each row's last real token by it. EOS stands in."""
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(model_cfg: dict[str, Any]) -> PreTrainedTokenizerBase:
    """The model's tokenizer; its ``model_max_length`` is at most the model's positions, so
    that ``data.max_length`` (auto or a number) never indexes past them."""
    source = model_cfg.get("tokenizer") or model_cfg.get("name_or_path")
    if not source:
        raise SftlabError("model.tokenizer is required when model.name_or_path is null")
    what = "model.tokenizer" if model_cfg.get("tokenizer") else "model.name_or_path"
    where, local = locate(source, what)
    if local:
        tokenizer = _with_pad_token(AutoTokenizer.from_pretrained(where, use_fast=True))
    else:
        tokenizer = _with_pad_token(
            _from_hub(AutoTokenizer.from_pretrained, where, what, use_fast=True)
        )
    positions = max_positions(read_config(model_cfg, tokenizer))
    if positions is not None and not 0 < tokenizer.model_max_length <= positions:
        tokenizer.model_max_length = positions
    return tokenizer


# Architectures whose position ids start after the padding index (RoBERTa's scheme): they take
# max_position_embeddings - pad_token_id - 1 tokens (514 -> 512).
PADDING_OFFSET = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "mpnet"}


def max_positions(config: PretrainedConfig | None) -> int | None:
    """The most tokens the model's position embeddings take; None when its config names none."""
    n = getattr(config, "max_position_embeddings", None)
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    if config.model_type in PADDING_OFFSET:
        n -= (config.pad_token_id or 0) + 1
    return n


def read_config(
    model_cfg: dict[str, Any], tokenizer: PreTrainedTokenizerBase, **labels: Any
) -> PretrainedConfig | None:
    """The model's architecture without its weights: built from ``model.config`` or read from
    ``model.name_or_path`` (a folder, or a hub name: the cache, else the hub)."""
    register_pooled()  # a pooled folder (an exported run) loads through the Auto classes
    if model_cfg.get("config"):
        arch = dict(model_cfg["config"])
        model_type = arch.pop("model_type", None)
        if not model_type:
            raise SftlabError("model.config needs a model_type (e.g. bert, roberta, llama)")
        arch.setdefault("vocab_size", len(tokenizer))
        arch.setdefault("pad_token_id", tokenizer.pad_token_id)
        return AutoConfig.for_model(model_type, **arch, **labels)
    name = model_cfg.get("name_or_path")
    if not name:
        raise SftlabError("set model.name_or_path (a folder or hub name) or model.config")
    where, local = locate(name)
    if local:
        return AutoConfig.from_pretrained(where, **labels)
    return _from_hub(AutoConfig.from_pretrained, where, "model.name_or_path", **labels)


def _apply_dropout(config: PretrainedConfig, dropout: float | None) -> None:
    if dropout is None:
        return
    for key in DROPOUT_KEYS:
        if hasattr(config, key):
            setattr(config, key, float(dropout))


def load_model(
    model_cfg: dict[str, Any],
    label_names: list[str],
    tokenizer: PreTrainedTokenizerBase,
) -> PreTrainedModel:
    """A sequence-classification model with a fresh head for ``label_names``.

    ``model.pooling`` null keeps the backbone's standard head; ``mean`` or ``cls`` puts a
    linear head on the mean-pooled (or first-token) states (``PooledForSequenceClassification``).
    """
    pooling = model_cfg.get("pooling")
    if pooling is not None and pooling not in POOLINGS:
        raise SftlabError(f"model.pooling must be null, {' or '.join(POOLINGS)}; got '{pooling}'")
    labels = {
        "num_labels": len(label_names),
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
    }
    config = read_config(model_cfg, tokenizer, **labels)
    _apply_dropout(config, model_cfg.get("dropout"))
    if model_cfg.get("config"):
        if pooling:
            return _pooled(AutoModel.from_config(config), pooling, labels, model_cfg.get("dropout"))
        return AutoModelForSequenceClassification.from_config(config)
    where, local = locate(model_cfg["name_or_path"])
    if getattr(config, "pad_token_id", None) is None:  # a decoder pools its last non-pad token
        config.pad_token_id = tokenizer.pad_token_id
    if pooling:
        with quiet_loading(local):
            body = AutoModel.from_pretrained(where, config=config)
        model = _pooled(body, pooling, labels, model_cfg.get("dropout"))
        kept = {id(p) for p in body.parameters()}
        new = [n for n, p in model.named_parameters() if id(p) not in kept]
        _say_new_head(new, len(label_names), f", {pooling} pooling")
        return model
    # ignore_mismatched_sizes: a folder that already has a head for another label set gets a new one
    with quiet_loading(local):
        model, info = AutoModelForSequenceClassification.from_pretrained(
            where, config=config, ignore_mismatched_sizes=True, output_loading_info=True
        )
    new = [*info["missing_keys"], *(key for key, *_ in info["mismatched_keys"])]
    _say_new_head(sorted(new, key=_weight_first), len(label_names))
    return model


def _weight_first(name: str) -> tuple[str, bool]:
    """``classifier.weight`` before ``classifier.bias``."""
    module, _, kind = name.rpartition(".")
    return module, kind != "weight"


def _pooled(
    backbone: PreTrainedModel, pooling: str, labels: dict[str, Any], dropout: float | None
) -> PooledForSequenceClassification:
    body = backbone.config
    head_dropout = dropout if dropout is not None else getattr(body, "hidden_dropout_prob", 0.1)
    config = PooledClassifierConfig(
        backbone=body.to_dict(), pooling=pooling, classifier_dropout=head_dropout, **labels
    )
    # The tokenizer's pad id travels with the top-level config (pipelines read it there).
    config.pad_token_id = body.pad_token_id
    return PooledForSequenceClassification(config, backbone=backbone)
