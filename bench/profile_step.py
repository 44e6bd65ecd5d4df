"""Where a training step's time goes: sftlab's default full fine-tuning on this machine.

Builds the default run's pieces (packaged MiniLM, airline tweets, random batches of 32, the
run's precision) and times, over ``--steps`` training batches: batch assembly (collate), forward,
loss and metric update, backward, optimizer step; for padded and unpadded batches alike. Then
torch.profiler lists the top operators of a few unpadded steps. Writes bench/results/profile.md.

    python bench/profile_step.py --steps 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from head_only_speed import RESULTS, compose_train  # sources on the path, offline, quiet
from torch.profiler import ProfilerActivity, profile

from sftlab.data.datamodule import DataConfig, TextDataModule  # noqa: E402
from sftlab.models.backbone import load_model, load_tokenizer  # noqa: E402
from sftlab.models.speed import unpad  # noqa: E402
from sftlab.strategies.optim import optimizer_from_config  # noqa: E402
from sftlab.tasks.metrics import classification_metrics  # noqa: E402
from sftlab.utils import hardware  # noqa: E402

PHASES = ("collate", "forward", "loss+metrics", "backward", "optimizer")


def timed_steps(model, loader, optimizer, metrics, steps: int, dtype) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    it = iter(loader)
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            if unpad.is_unpadded(batch):
                logits = unpad.logits(model, batch)
            else:
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        t2 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])
        metrics.update(logits.argmax(-1), batch["labels"])
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        for phase, seconds in zip(
            PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
        ):
            times[phase].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(["trainer=cpu"], Path(tmp))
    hardware.resolve_trainer(cfg)
    dtype = hardware.autocast_dtype(cfg.trainer.precision)
    tokenizer = load_tokenizer(cfg.model)
    dm = TextDataModule(DataConfig.from_dict(dict(cfg.data)), tokenizer, seed=cfg.seed)
    dm.setup("fit")
    model = load_model(cfg.model, dm.label_names, tokenizer).train()
    optimizer = optimizer_from_config(cfg.optimizer)[0](model.parameters())
    metrics = classification_metrics(dm.label_names)
    lines = [
        "# Where a training step's time goes (sftlab default full fine-tuning)",
        "",
        f"{hardware.cpu_name()} ({'native bf16' if hardware.cpu_native_bf16() else 'no native bf16'}), "
        f"{torch.get_num_threads()} threads, precision {cfg.trainer.precision}, MiniLM, airline "
        f"tweets, random batches of {cfg.data.batch_size}; median ms per step over {args.steps} steps "
        f"(after 2 warm-up steps).",
        "",
        "| batches | " + " | ".join(PHASES) + " | step |",
        "|---|" + "---|" * (len(PHASES) + 1),
    ]
    for name in ("padded", "unpadded"):
        dm.train_collate = dm.collate
        if name == "unpadded":
            dm.train_collate = unpad.UnpaddedCollator(unpad.enable(model))
        torch.manual_seed(0)
        loader = dm.train_dataloader()
        timed_steps(model, loader, optimizer, metrics, 2, dtype)
        times = timed_steps(model, loader, optimizer, metrics, args.steps, dtype)
        med = {p: 1000 * statistics.median(v) for p, v in times.items()}
        step = 1000 * statistics.median([sum(x) for x in zip(*times.values(), strict=True)])
        lines.append(
            f"| {name} | " + " | ".join(f"{med[p]:.1f}" for p in PHASES) + f" | {step:.0f} |"
        )
        print(lines[-1], flush=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed_steps(model, dm.train_dataloader(), optimizer, metrics, 5, dtype)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    lines += [
        "",
        "Top operators over 5 unpadded steps (torch.profiler, self CPU time):",
        "",
        "```",
        table,
        "```",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
