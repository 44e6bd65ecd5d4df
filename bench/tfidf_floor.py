"""The floor under a fine-tune: character n-gram TF-IDF + a linear model, on exactly the split a
run sees (same data config, seed, cleaning, duplicates, ``data.train_size``). Character n-grams
need no word segmentation, so they suit Chinese as they are. Writes
bench/results/<data>/tfidf.json.

    python bench/tfidf_floor.py data=chinese_reviews data.train_size=1000 "data.split=[0.9,0.05,0.05]"
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, recall_score  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    data_cfg = DataConfig.from_dict(OmegaConf.to_container(cfg.data, resolve=True))
    # The rows only: no tokenizer is needed to split them.
    frames = TextDataModule(data_cfg, tokenizer=None, seed=cfg.seed).load_frames()
    train, test = frames["train"], frames["test"]
    results = {"data": cfg.data.source, "train_rows": len(train), "test_rows": len(test)}
    models = {
        "logreg": LogisticRegression(max_iter=2000),  # default C: nothing tuned on the test split
        "linear_svc": LinearSVC(),
    }
    for name, clf in models.items():
        started = time.perf_counter()
        # 1-3 character n-grams (within word boundaries for spaced scripts): 好, 不好, 不太好.
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
        clf.fit(vec.fit_transform(train["text"]), train["label"])
        pred = clf.predict(vec.transform(test["text"]))
        labels = sorted(train["label"].unique())
        recalls = recall_score(test["label"], pred, labels=labels, average=None)
        results[name] = {
            "test/acc": round(float(accuracy_score(test["label"], pred)), 4),
            "test/f1_macro": round(float(f1_score(test["label"], pred, average="macro")), 4),
            **{
                f"test/recall_{lab}": round(float(r), 4)
                for lab, r in zip(labels, recalls, strict=True)
            },
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
        print(name, results[name])
    out = ROOT / "bench" / "results" / cfg.data.source / "tfidf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"overrides": overrides, **results}, indent=2, ensure_ascii=False) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
