"""Load a trained model (a run dir or an exported folder) and turn texts into predictions.

Shared by ``predict.py`` (files) and ``serve.py`` (HTTP). The model is the exported
Hugging Face folder, so what is predicted here is exactly what ``pipeline()`` would load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from sftlab.data.cleaning import clean_texts
from sftlab.inference.backends import TorchBackend, predict_dtype
from sftlab.models.backbone import register_pooled
from sftlab.models.modeling_pooled import PooledClassifierConfig, PooledForSequenceClassification
from sftlab.utils.errors import SftlabError
from sftlab.utils.progress import progress_bar

log = logging.getLogger(__name__)

META_FILE = "sftlab.json"  # written by export: labels, max_length, task, text column, cleaning


@dataclass
class Predictor:
    """A loaded model plus the input handling it was trained with."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    """Label names in id order (the model's ``id2label``)."""
    task: str
    text_column: str
    """The column holding the texts in an input file."""
    max_length: int
    cleaning: list[str] = field(default_factory=list)
    """Cleaning steps applied before tokenizing, as in training."""
    source: Path = Path(".")
    """The run dir or model folder it came from (for messages)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """The model folder's ``sftlab.json`` (task settings such as a multi-label threshold)."""
    max_chars: int = 0
    """Texts are cut to this many characters before cleaning and tokenizing, as in training
    (``data.max_chars``); 0 = 32 x ``max_length``, training's default."""
    backend: Any = None
    """What runs a padded batch (``inference.backends``); None = the PyTorch model in fp32."""

    def __post_init__(self) -> None:
        if not self.max_chars:
            self.max_chars = 32 * int(self.max_length)
        if self.backend is None and self.model is not None:
            self.backend = TorchBackend(self.model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


# -- loading ----------------------------------------------------------------------------------
def require(cfg: Any, keys: tuple[str, ...], usage: str) -> None:
    """A mandatory key (``run: ???``) left unset fails in one line, not with OmegaConf's traceback."""
    for key in keys:
        if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
            raise SftlabError(f"missing {key}=...: {usage}")


def locate(run: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """``run`` -> (model folder, the run's resolved config or None for a bare model folder)."""
    path = Path(run)
    if not path.exists():
        raise SftlabError(
            f"run={path} not found: pass a run dir (outputs/<date>/<time>) or a model folder"
        )
    if (path / "config.json").is_file():
        return path, None
    if (path / "config.yaml").is_file() or (path / "model").exists():
        model_dir = path / "model"
        if not (model_dir / "config.json").is_file():
            raise SftlabError(
                f"run dir {path} has no exported model ({model_dir}/config.json missing): "
                f"it was trained with export=false or did not finish; train again with export=true"
            )
        config = None
        if (path / "config.yaml").is_file():
            config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=True)
        return model_dir, config
    raise SftlabError(
        f"run={path} is neither a run dir (config.yaml + model/) nor a model folder (config.json)"
    )


def load_predictor(run: str | Path, device: str = "auto") -> Predictor:
    """Load the model of a run dir or model folder, checking it agrees with the run's config."""
    model_dir, run_cfg = locate(run)
    meta = _read_meta(model_dir)
    task = str(meta.get("task", "classification"))
    data = (run_cfg or {}).get("data") or {}
    if task == "generation":
        return _load_generator(run, model_dir, meta, data, device)
    model, tokenizer = _load(AutoModelForSequenceClassification, model_dir)
    id2label = model.config.id2label
    labels = [str(id2label[i]) for i in sorted(id2label)]
    _check_labels(
        labels, data.get("labels"), f"data.labels in {Path(run) / 'config.yaml'}", model_dir
    )
    _check_labels(labels, meta.get("labels"), f"'labels' in {model_dir / META_FILE}", model_dir)
    model.to(_device(device)).eval()
    precision = ((run_cfg or {}).get("trainer") or {}).get("precision", meta.get("precision"))
    return Predictor(
        model=model,
        tokenizer=tokenizer,
        backend=TorchBackend(model, predict_dtype(precision, model.device)),
        labels=labels,
        task=task,
        text_column=str(data.get("text_column") or meta.get("text_column") or "text"),
        max_length=int(
            data.get("max_length") or meta.get("max_length") or tokenizer.model_max_length
        ),
        cleaning=_cleaning(data, meta),
        source=Path(run),
        meta=meta,
        max_chars=_max_chars(data, meta),
    )


def _load_generator(
    run: str | Path, model_dir: Path, meta: dict[str, Any], data: dict[str, Any], device: str
) -> Predictor:
    """A causal LM run: prompts in (a column, or ``prompt_template`` filled from each row)."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = _load(AutoModelForCausalLM, model_dir)
    model.to(_device(device)).eval()
    template = data.get("prompt_template", meta.get("prompt_template"))
    return Predictor(
        model=model,
        tokenizer=tokenizer,
        labels=[],
        task="generation",
        text_column=str(data.get("prompt_column") or meta.get("prompt_column") or "prompt"),
        max_length=int(data.get("max_length") or meta.get("max_length") or 512),
        cleaning=_cleaning(data, meta),
        source=Path(run),
        meta={**meta, "prompt_template": template},
        max_chars=_max_chars(data, meta),
    )


def _load(auto_class: Any, model_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) from an exported folder, or one line saying why not."""
    register_pooled()  # a model.pooling run: sftlab's own class, never a remote-code prompt
    refuse_folder_code(model_dir)
    try:
        return (
            auto_class.from_pretrained(model_dir, trust_remote_code=False),
            AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False),
        )
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SftlabError(f"cannot load the model in {model_dir}: {first}") from None


# the folder code sftlab exports and runs from its own package instead (models/backbone.py)
OWN_CODE = {
    f"modeling_pooled.{PooledClassifierConfig.__name__}",
    f"modeling_pooled.{PooledForSequenceClassification.__name__}",
}


def refuse_folder_code(model_dir: Path) -> None:
    """predict.py and serve.py run no code from a model folder (``trust_remote_code=False``):
    a config or tokenizer whose ``auto_map`` names a class sftlab does not register is refused
    in one line, not loaded nor prompted for."""
    for name in ("config.json", "tokenizer_config.json"):
        try:
            auto_map = json.loads((model_dir / name).read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            continue  # absent or unreadable: from_pretrained says why
        if not isinstance(auto_map, dict):
            continue
        refs = [r for v in auto_map.values() for r in (v if isinstance(v, list) else [v]) if r]
        foreign = sorted({str(r) for r in refs} - OWN_CODE)
        if foreign:
            raise SftlabError(
                f"{model_dir / name} needs code shipped in the folder ({', '.join(foreign)} in "
                f"auto_map): predict.py and serve.py never run a folder's code "
                f"(trust_remote_code=False); use a model transformers or sftlab knows"
            )


def _cleaning(data: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    """The run's cleaning steps (its config first, else ``sftlab.json``), applied before predicting."""
    cleaning = data.get("cleaning", meta.get("cleaning")) or []
    if not isinstance(cleaning, (list, tuple)):
        raise SftlabError(f"data.cleaning must be a list of step names, got {cleaning!r}")
    return [str(s) for s in cleaning]


def _max_chars(data: dict[str, Any], meta: dict[str, Any]) -> int:
    """The run's ``data.max_chars`` (config, else ``sftlab.json``); 0 = 32 x max_length (the
    default, and what a folder exported before ``max_chars`` was written gets)."""
    value = data.get("max_chars") or meta.get("max_chars") or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SftlabError(f"data.max_chars must be a positive number of characters, got {value!r}")
    return value


def _read_meta(model_dir: Path) -> dict[str, Any]:
    path = model_dir / META_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SftlabError(
            f"{path} is not valid JSON (line {e.lineno}): re-export the model"
        ) from None


def _check_labels(labels: list[str], expected: Any, where: str, model_dir: Path) -> None:
    if expected is None:
        return
    expected = [str(x) for x in expected]
    if expected != labels:
        raise SftlabError(
            f"the model in {model_dir} has labels {labels} but {where} says {expected}: "
            f"the folder belongs to another run; re-export it or pass that run's dir"
        )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# -- predicting -------------------------------------------------------------------------------
def cut_texts(texts: list[str], max_chars: int, keep_end: bool = False) -> list[str]:
    """``texts`` cut to ``max_chars`` characters (the start, or with ``keep_end`` the end), as
    training cuts them (``data.max_chars``): a 50 MB text is never tokenized whole."""
    long = sum(len(t) > max_chars for t in texts)
    if not long:
        return texts
    log.info("cut %d texts longer than %d characters (data.max_chars)", long, max_chars)
    if keep_end:
        return [t[-max_chars:] if len(t) > max_chars else t for t in texts]
    return [t[:max_chars] for t in texts]


def class_probabilities(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """Softmax probabilities, shape (len(texts), len(labels)), in the order of ``texts``."""
    logits = raw_outputs(predictor, texts, batch_size, progress)
    return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


def batched(
    predictor: Predictor,
    texts: list[str],
    batch_size: int,
    run: Callable[[Any], np.ndarray],
    tensors: str = "pt",
    progress: bool = False,
) -> np.ndarray:
    """The prediction loop: ``run(padded batch)`` -> (rows, len(labels)) outputs for every
    batch of ``texts``, back in the order of ``texts``.

    Texts are cleaned and truncated as in training, then batched longest first (each batch
    is padded only to its own longest text; the same batching as the validation loop) and
    padded as ``tensors`` ("pt" or "np").
    """
    if batch_size < 1:
        raise SftlabError(f"batch_size must be >= 1, got {batch_size}")
    texts = clean_texts(cut_texts(list(texts), predictor.max_chars), predictor.cleaning)
    enc = predictor.tokenizer(texts, truncation=True, max_length=predictor.max_length)
    lengths = [len(ids) for ids in enc["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__, reverse=True)
    outputs = np.zeros((len(texts), len(predictor.labels)), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    for start in progress_bar(starts, len(starts), "predict", enabled=progress):
        idx = order[start : start + batch_size]
        features = [{k: enc[k][i] for k in enc} for i in idx]
        outputs[idx] = run(predictor.tokenizer.pad(features, return_tensors=tensors))
    return outputs


def raw_outputs(
    predictor: Predictor, texts: list[str], batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """The head's outputs (logits), shape (len(texts), len(labels)), in the order of ``texts``,
    from the predictor's backend (PyTorch in the run's precision, or onnxruntime)."""
    backend = predictor.backend
    return batched(predictor, texts, batch_size, backend, backend.tensors, progress)
