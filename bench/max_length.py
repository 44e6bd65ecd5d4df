"""``data.max_length: auto`` against 128 on long documents: which opening prompt started a chat?

The packaged BYU chit-chat conversations each began from one of 34 prompts ("Who is your
modern-day hero?", ...). The conversations of at least 150 words (2,546; median 550 words) are
joined into one text each, labelled by their prompt: the first lines are small talk, the topic
comes later, so a model that reads only the first 128 tokens sees little of it. Head-only
training (mean-pooled MiniLM, cached features, 10 epochs) at ``data.max_length=128`` and
``auto`` (256 here: all-MiniLM-L6-v2 was trained on 256 tokens) and 512; same 80/10/10 split (seed 42). Writes bench/results/max_length.{json,md}.

    python bench/max_length.py                      # 128, auto (256 for MiniLM), 512
    python bench/max_length.py --lengths auto --append
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from head_only_speed import RESULTS, compose_train  # sources on the path, offline, quiet

from sftlab import train  # noqa: E402


def conversations_csv(path: Path, min_words: int = 150) -> Path:
    origin = importlib.util.find_spec("chitchat_dataset").origin
    data = json.loads((Path(origin).parent / "dataset.json").read_text())
    rows = []
    for conv in data.values():
        text = " ".join(m["text"] for turn in conv["messages"] for m in turn)
        if conv.get("prompt") and len(text.split()) >= min_words:
            rows.append({"text": text, "label": conv["prompt"]})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", nargs="+", default=["128", "auto", "512"])
    parser.add_argument(
        "--append", action="store_true", help="add to bench/results/max_length.json"
    )
    args = parser.parse_args()
    saved = RESULTS / "max_length.json"
    runs = json.loads(saved.read_text()) if args.append and saved.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = conversations_csv(tmp / "chitchat_prompts.csv")
        for max_length in args.lengths:
            cfg = compose_train(
                [
                    "data=files",
                    f"data.path={csv}",
                    f"data.max_length={max_length}",
                    "strategy=head_only",
                    "model.pooling=mean",
                    "trainer=cpu",
                    "trainer.max_epochs=10",
                    "trainer.enable_progress_bar=false",
                    "export=false",
                    "seed=42",
                ],
                tmp / max_length,
            )
            started = time.perf_counter()
            metrics = train(cfg)
            resolved = json.loads((tmp / max_length / "metrics.json").read_text())
            runs.append(
                {
                    "max_length": max_length,
                    "resolved": int(cfg.data.max_length),
                    "wall_s": round(time.perf_counter() - started, 1),
                    "test/acc": metrics["test/acc"],
                    "test/f1_macro": metrics["test/f1_macro"],
                    "train_rows": metrics["train_rows"],
                    "precision": resolved["precision"],
                }
            )
            print(runs[-1], flush=True)
    lines = [
        "# data.max_length: 128 vs auto on long documents (chit-chat prompt, 34 classes)",
        "",
        f"MiniLM head-only (mean pooling, cached features, 10 epochs), {int(runs[0]['train_rows'])} "
        "training conversations (>= 150 words, median 550), seed 42.",
        "",
        "| data.max_length | tokens | test acc | test macro-F1 | wall s (whole run) |",
        "|---|---|---|---|---|",
        *(
            f"| {r['max_length']} | {r['resolved']} | {r['test/acc']:.4f} | "
            f"{r['test/f1_macro']:.4f} | {r['wall_s']:.0f} |"
            for r in runs
        ),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "max_length.json").write_text(json.dumps(runs, indent=2))
    (RESULTS / "max_length.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
