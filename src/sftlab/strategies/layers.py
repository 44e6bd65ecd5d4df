"""Where the transformer blocks, the embeddings and the task head are, whatever the architecture.

BERT and RoBERTa keep their blocks in ``encoder.layer``, DistilBERT in ``transformer.layer``,
Llama-style decoders in ``model.layers`` (GPT-2: ``transformer.h``). The same names appear
under any prefix (``backbone.``, PEFT's ``base_model.model.``), so discovery goes by suffix.
"""

from __future__ import annotations

from torch import nn

from sftlab.utils.errors import SftlabError

# Task-head modules across Hugging Face sequence-classification models:
# BERT pooler + classifier, DistilBERT pre_classifier + classifier, RoBERTa classifier
# (dense + out_proj), decoder models' score.
HEAD_PREFIXES = ("classifier", "pre_classifier", "score", "pooler")
LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "transformer.h", "encoder.layers")
EMBEDDING_MARKERS = ("embeddings", "embed_tokens", "embed_positions", "wte", "wpe")


def is_head(param_name: str) -> bool:
    """True for a parameter of the task head (and the BERT pooler that feeds it)."""
    parts = param_name.split(".")
    return any(p in HEAD_PREFIXES for p in parts[:-1])


def is_embedding(param_name: str) -> bool:
    return any(m in param_name.split(".") for m in EMBEDDING_MARKERS)


def find_layers(model: nn.Module) -> tuple[str, int]:
    """(prefix, count) of the transformer blocks: block i's parameters start with ``prefix.i.``."""
    found = [
        (name, len(module))
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList)
        and len(module) > 0
        and any(name == s or name.endswith("." + s) for s in LAYER_LISTS)
    ]
    if not found:
        raise SftlabError(
            f"found no transformer blocks in {type(model).__name__} (looked for "
            f"{', '.join(LAYER_LISTS)}): this strategy needs a BERT, RoBERTa, DistilBERT or Llama-style model"
        )
    return max(found, key=lambda nf: nf[1])


def layer_index(param_name: str, prefix: str) -> int | None:
    """The block a parameter belongs to, or None outside the blocks."""
    if not param_name.startswith(prefix + "."):
        return None
    return int(param_name[len(prefix) + 1 :].split(".", 1)[0])


def depth_from_top(param_name: str, prefix: str, n_layers: int) -> int:
    """0 for the head and anything above the blocks (final norms), 1 for the top block, ...,
    ``n_layers`` for the bottom block, ``n_layers + 1`` for the embeddings."""
    if is_head(param_name):
        return 0
    index = layer_index(param_name, prefix)
    if index is not None:
        return n_layers - index
    if is_embedding(param_name):
        return n_layers + 1
    return 0
