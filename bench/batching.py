"""Batching that never costs accuracy: random batches, padded vs unpadded, vs length-grouped.

Full fine-tuning of the packaged MiniLM, fp32, batch 32, 1 epoch, seeds 1-3 (each seed also
draws the split; the former default, length_grouped, runs seed 1 only unless --grouped-seeds), on three data sets where text length tracks the label to different degrees:

- ``sms_spam`` (spam messages are longer), 1,500 training messages;
- ``length3``: a synthetic 3-class set whose label *is* the length (4-12 / 13-30 / 31-80 random
  words), 1,920 training rows;
- ``airline_sentiment``, 2,000 training tweets.

Schemes: ``random`` (uniform shuffle, padded to each batch's longest), ``unpadded`` (sftlab's
default: the same random batches, pad tokens skipped in every dense layer), ``length_grouped``
(Hugging Face's LengthGroupedSampler, the former default). Also reports the share of computed
tokens that are padding in each scheme. Writes bench/results/batching.{json,md} after every run.

    python bench/batching.py
    python bench/batching.py --seeds 1 2 --datasets sms_spam
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from head_only_speed import RESULTS, compose_train  # sources on the path, offline, quiet

from sftlab import train  # noqa: E402
from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402
from sftlab.models.backbone import load_tokenizer  # noqa: E402

SCHEMES = {
    "random": ["data.unpad=false", "data.group_by_length=false"],
    "unpadded": ["data.unpad=true", "data.group_by_length=false"],
    "length_grouped": ["data.unpad=false", "data.group_by_length=true"],
}
COMMON = [
    "trainer=cpu",
    "trainer.precision=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "logger=csv",
    "export=false",
    "data.batch_size=32",
    "data.max_length=128",
]


def length3_csv(path: Path, rows: int = 2400, seed: int = 0) -> Path:
    """3 classes decided by length alone: the words are random, only the count says the label."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(300)]
    bounds = {"short": (4, 12), "medium": (13, 30), "long": (31, 80)}
    labels = rng.choice(list(bounds), rows)
    texts = [" ".join(rng.choice(vocab, rng.integers(*bounds[y], endpoint=True))) for y in labels]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def datasets(tmp: Path) -> dict[str, list[str]]:
    return {
        "sms_spam": ["data=sms_spam", "data.train_size=1500"],
        "length3": ["data=files", f"data.path={length3_csv(tmp / 'length3.csv')}"],
        "airline_sentiment": ["data=airline_sentiment", "data.train_size=2000"],
    }


def padding_share(overrides: list[str], tmp: Path, batch_size: int = 32) -> dict[str, float]:
    """Share of computed token positions that are padding, per scheme, over one epoch."""
    from torch.utils.data import RandomSampler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    cfg = compose_train([*COMMON, *overrides, "seed=1"], tmp)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), load_tokenizer(cfg.model), seed=1)
    dm.setup("fit")
    lengths = np.array(dm.datasets["train"].lengths)

    def share(order) -> float:
        order = np.fromiter(order, dtype=np.int64)
        batches = [lengths[order[i : i + batch_size]] for i in range(0, len(order), batch_size)]
        computed = sum(len(b) * b.max() for b in batches)
        return float(1 - lengths.sum() / computed)

    return {
        "random": share(RandomSampler(range(len(lengths)))),
        "unpadded": 0.0,  # dense layers see real tokens only (attention re-pads per layer)
        "length_grouped": share(LengthGroupedSampler(batch_size, lengths=lengths.tolist())),
        "mean_tokens": float(lengths.mean()),
    }


def _ms(runs: list[dict], key: str, scale: float = 1.0) -> str:
    values = [r[key] * scale for r in runs]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def summarize(runs: list[dict], padding: dict) -> str:
    lines = [
        "# Batching: accuracy and padding, random vs unpadded vs length-grouped",
        "",
        "MiniLM full fine-tuning, fp32, batch 32, 1 epoch, max_length 128; mean ± std over seeds "
        "(each seed draws its own split, the same for every scheme). `pad` = share of the token "
        "positions the dense layers compute that are padding.",
        "",
        "| data | scheme | seeds | test acc | test macro-F1 | train samples/s | pad |",
        "|---|---|---|---|---|---|---|",
    ]
    for data in dict.fromkeys(r["data"] for r in runs):
        for scheme in SCHEMES:
            done = [r for r in runs if r["data"] == data and r["scheme"] == scheme]
            if not done:
                continue

            pad = padding.get(data, {}).get(scheme)
            lines.append(
                f"| {data} | {scheme} | {len(done)} | {_ms(done, 'test/acc', 100)} | "
                f"{_ms(done, 'test/f1_macro', 100)} | {_ms(done, 'train_samples_per_second')} | "
                f"{'' if pad is None else f'{100 * pad:.0f}%'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    parser.add_argument("--append", action="store_true", help="add to bench/results/batching.json")
    parser.add_argument(
        "--grouped-seeds", type=int, default=1, help="length_grouped runs only the first N seeds"
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs, padding = [], {}
    if args.append and (RESULTS / "batching.json").exists():
        previous = json.loads((RESULTS / "batching.json").read_text())
        runs, padding = previous["runs"], previous["padding"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sets = datasets(tmp)
        for data in args.datasets or list(sets):
            if data not in padding:
                padding[data] = padding_share(sets[data], tmp / f"pad-{data}")
            for seed in args.seeds:
                for scheme in args.schemes:  # alternating: load on the machine hits all alike
                    if scheme == "length_grouped" and seed not in args.seeds[: args.grouped_seeds]:
                        continue
                    if any(
                        (r["data"], r["seed"], r["scheme"]) == (data, seed, scheme) for r in runs
                    ):
                        continue  # done in an earlier invocation (--append)
                    out = tmp / f"{data}-{seed}-{scheme}"
                    cfg = compose_train(
                        [*COMMON, *sets[data], *SCHEMES[scheme], f"seed={seed}"], out
                    )
                    started = time.perf_counter()
                    metrics = train(cfg)
                    runs.append(
                        {
                            "data": data,
                            "scheme": scheme,
                            "seed": seed,
                            "wall_s": round(time.perf_counter() - started, 1),
                            **{
                                k: metrics[k]
                                for k in (
                                    "test/acc",
                                    "test/f1_macro",
                                    "train_samples_per_second",
                                    "train_tokens_per_second",
                                    "train_rows",
                                )
                            },
                        }
                    )
                    (RESULTS / "batching.json").write_text(
                        json.dumps({"runs": runs, "padding": padding}, indent=2)
                    )
                    (RESULTS / "batching.md").write_text(summarize(runs, padding))
    print(summarize(runs, padding))


if __name__ == "__main__":
    main()
