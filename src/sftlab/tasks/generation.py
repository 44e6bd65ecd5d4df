"""Generative SFT: a causal LM trained with cross-entropy on the response tokens; validation
loss and perplexity; greedy generations for held-out prompts scored with chrF and BLEU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import pandas as pd
import sacrebleu
import torch
from torch import nn
from torchmetrics.text import Perplexity

from sftlab.data.generation import IGNORE, prompt_ids
from sftlab.strategies.optim import OptimizerFromConfig


class CausalLMModule(OptimizerFromConfig, L.LightningModule):
    """A system around a ``*ForCausalLM`` model; ``labels`` carry -100 on the prompt tokens."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        layer_decay: float | None = None,
    ):
        super().__init__()
        self.model = model
        self.layer_decay = layer_decay
        self.model.train()  # from_pretrained() leaves eval mode: dropout would stay off
        self.optimizer_fn, self.scheduler_fn = optimizer, scheduler
        self.val_perplexity = Perplexity(ignore_index=IGNORE)
        self.test_perplexity = Perplexity(ignore_index=IGNORE)
        self.test_results: dict[str, Any] = {}

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        # No KV cache in training or evaluation: it is unused there, and without one a packed
        # batch (position_ids, no attention_mask) gets transformers' block-diagonal mask.
        return self.model(**batch, use_cache=False)

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        out = self(batch)
        n = int((batch["labels"] != IGNORE).sum())
        self.log(
            f"{stage}/loss",
            out.loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            batch_size=n,
            sync_dist=True,  # averaged over DDP ranks too
        )
        if stage != "train":  # token-weighted over the epoch: exp(mean NLL of every response token)
            metric = getattr(self, f"{stage}_perplexity")
            metric.update(out.logits[:, :-1].float(), batch["labels"][:, 1:])
            self.log(f"{stage}/perplexity", metric, on_epoch=True, prog_bar=stage == "val")
        return out.loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.test_results = {
            k: float(v) for k, v in self.trainer.callback_metrics.items() if k.startswith("test/")
        }


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: list,
    max_new_tokens: int,
    batch_size: int = 8,
    max_prompt_tokens: int | None = None,
) -> list[str]:
    """Greedy replies to ``prompts`` (strings or chat messages), the prompt ids built exactly as
    in training (left-padded); a prompt longer than ``max_prompt_tokens`` loses its start, as
    in training."""
    model.eval()
    device = next(model.parameters()).device
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    replies = []
    for start in range(0, len(prompts), batch_size):
        ids = [prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
        if max_prompt_tokens:
            ids = [x[-max_prompt_tokens:] for x in ids]
        width = max(map(len, ids))
        input_ids = torch.tensor(
            [[tokenizer.pad_token_id] * (width - len(x)) + x for x in ids], device=device
        )
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=end,
            pad_token_id=tokenizer.pad_token_id,
        )
        replies += tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    return [r.strip() for r in replies]


def score_generations(
    model,
    tokenizer,
    frame: pd.DataFrame,
    max_new_tokens: int,
    target: Path,
    max_prompt_tokens: int | None = None,
) -> dict[str, float]:
    """Generate for the rows of ``frame``, write them to ``target`` (JSONL: prompt, reference,
    generated), return ``test/chrf`` and ``test/bleu`` (sacrebleu corpus scores, 0-100)."""
    prompts, refs = frame["prompt"].tolist(), frame["response"].tolist()
    outputs = generate(
        model, tokenizer, prompts, max_new_tokens, max_prompt_tokens=max_prompt_tokens
    )
    with target.open("w", encoding="utf-8") as f:
        for p, r, g in zip(prompts, refs, outputs, strict=True):
            f.write(
                json.dumps({"prompt": p, "reference": r, "generated": g}, ensure_ascii=False) + "\n"
            )
    return {
        "test/chrf": float(sacrebleu.corpus_chrf(outputs, [refs]).score),
        "test/bleu": float(sacrebleu.corpus_bleu(outputs, [refs]).score),
        "test/generated": float(len(outputs)),
    }


def read_generations(path: Path, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows of ``generations.jsonl`` (prompt, reference, generated); none when
    no replies were generated."""
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if len(rows) >= n:
                break
            if line.strip():
                rows.append(json.loads(line))
    return rows
