"""The Hub metadata of a model card, built with ``huggingface_hub``'s ``ModelCardData`` and
``ModelCard.from_template``, so the Hub reads it: ``base_model``, ``license``, ``datasets``,
``metrics``, ``pipeline_tag``, ``tags``, ``library_name`` and a ``model-index`` with one entry per
test metric (the Hub's evaluation results). The linear baseline stays in the prose only: the
model-index lists this model's results, and a baseline's score listed there would read as the
model's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from sftlab.config.metric_names import TASK_METRICS

TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ body }}\n"
# sftlab's metric name -> (the Hub's metric id, its arguments): the ids of the Hub's metrics.
HUB_METRICS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "acc": ("accuracy", None),
    "precision_macro": ("precision", {"average": "macro"}),
    "recall_macro": ("recall", {"average": "macro"}),
    "f1_macro": ("f1", {"average": "macro"}),
    "precision_weighted": ("precision", {"average": "weighted"}),
    "recall_weighted": ("recall", {"average": "weighted"}),
    "f1_weighted": ("f1", {"average": "weighted"}),
    "f1_micro": ("f1", {"average": "micro"}),
    "precision_micro": ("precision", {"average": "micro"}),
    "recall_micro": ("recall", {"average": "micro"}),
    "exact_match": ("exact_match", None),
    "mse": ("mse", None),
    "mae": ("mae", None),
    "pearson": ("pearsonr", None),
    "spearman": ("spearmanr", None),
    "perplexity": ("perplexity", None),
    "chrf": ("chrf", None),
    "bleu": ("sacrebleu", None),  # sacrebleu's corpus BLEU, 0-100
    "loss": ("loss", None),
}
TASK_NAMES = {"text-classification": "Text Classification", "text-generation": "Text Generation"}
PACKAGED = "pkg://"


# -- metadata ---------------------------------------------------------------------------------
def base_model_id(model_cfg: dict[str, Any]) -> str | None:
    """The card's ``base_model``: the hub id or local path the run loaded; for packaged weights
    (``pkg://<distribution>/<path>``) the path inside site-packages; None for a random init."""
    name = model_cfg.get("name_or_path")
    if not name:
        return None
    name = str(name)
    if name.startswith(PACKAGED):
        return name[len(PACKAGED) :].split("/", 1)[-1]
    return name


def dataset_name(data: dict[str, Any]) -> str:
    """The card's ``datasets`` entry: the packaged set's name, the hub dataset id, or the file
    (or folder) name of local data."""
    source = data.get("source")
    if source == "hub":
        return str(data.get("path"))
    if source == "files":
        path = data.get("path")
        first = path[0] if isinstance(path, list) and path else path
        return Path(str(first)).name if first else "files"
    return str(source)


def pipeline_tag(task: str) -> str:
    """The Hub's pipeline for the task: regression and multi-label heads load in
    ``pipeline("text-classification")`` too."""
    return "text-generation" if task == "generation" else "text-classification"


def eval_results(metrics: dict[str, Any], task: str, dataset: str) -> list[EvalResult]:
    """One ``EvalResult`` per scalar test metric of ``task`` (``test/<name>`` in metrics.json,
    the value exactly as stored there). Per-class scores stay in the prose."""
    names = [*TASK_METRICS.get(task, ()), *(("chrf", "bleu") if task == "generation" else ())]
    tag = pipeline_tag(task)
    results = []
    for name in names:
        value = metrics.get(f"test/{name}")
        if name not in HUB_METRICS or not isinstance(value, (int, float)):
            continue
        metric_type, args = HUB_METRICS[name]
        results.append(
            EvalResult(
                task_type=tag,
                task_name=TASK_NAMES[tag],
                dataset_type=dataset,
                dataset_name=dataset,
                dataset_split="test",
                metric_type=metric_type,
                metric_name=f"test {name}",
                metric_args=args,
                metric_value=value,
            )
        )
    return results


def card_data(cfg: dict[str, Any], metrics: dict[str, Any]) -> ModelCardData:
    """The card's Hub metadata, from the resolved run config and metrics.json."""
    data = cfg.get("data") or {}
    task = data.get("task") or "classification"
    dataset = dataset_name(data)
    base = base_model_id(cfg.get("model") or {})
    name = str(cfg.get("push_to_hub") or f"{Path(base or 'random-init').name}-{dataset}-sftlab")
    results = eval_results(metrics, task, dataset)
    tag = pipeline_tag(task)
    return ModelCardData(
        base_model=base,
        license=cfg.get("license"),
        datasets=[dataset],
        metrics=list(dict.fromkeys(r.metric_type for r in results if r.metric_type != "loss"))
        or None,
        library_name="transformers",
        pipeline_tag=tag,
        tags=["sftlab", tag, task],
        model_name=name if results else None,
        eval_results=results or None,
    )


def render(cfg: dict[str, Any], metrics: dict[str, Any], body: list[str]) -> str:
    card = ModelCard.from_template(
        card_data(cfg, metrics), template_str=TEMPLATE, body="\n".join(body)
    )
    return str(card)
