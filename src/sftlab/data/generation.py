"""Prompt -> response rows for generative SFT with a causal LM: token ids whose labels are the
response tokens only (the prompt's are -100).

The prompt is tokenized on its own (through the tokenizer's chat template when it has one,
with the generation prompt appended), the response after it; the labels mask exactly the
prompt's ids. Generation at test time feeds the same prompt ids, so training and generation
see one format. A prompt is a string (one user turn) or a list of chat messages
(``data.messages_column``, see ``sftlab.data.chat``).
"""

from __future__ import annotations

import logging

import lightning.pytorch as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from sftlab.config.data import DataConfig
from sftlab.data.chat import (
    Messages,
    clean_messages,
    is_missing,
    parse_messages,
    plain_text,
    split_reply,
)
from sftlab.data.cleaning import clean_texts
from sftlab.data.datamodule import within_positions
from sftlab.data.packing import fill, pack
from sftlab.data.resumable import ResumableData
from sftlab.data.sources import load_splits, require_columns
from sftlab.utils import distributed
from sftlab.utils.errors import SftlabError

log = logging.getLogger(__name__)

IGNORE = -100  # the label that cross-entropy skips


def prompt_texts(frame: pd.DataFrame, cfg: DataConfig, where: str) -> pd.Series:
    """The prompt of every row: ``data.prompt_template`` filled from the row, else the column."""
    if not cfg.prompt_template:
        require_columns(frame, {"prompt_column": cfg.prompt_column}, where)
        return frame[cfg.prompt_column].astype(str)
    try:
        return frame.apply(lambda row: cfg.prompt_template.format(**row.to_dict()), axis=1)
    except KeyError as e:
        columns = ", ".join(c for c in frame.columns if c != "_row")
        raise SftlabError(
            f"{where}: data.prompt_template names column {e} that is not there (columns: {columns})"
        ) from None


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: str | Messages) -> list[int]:
    """The ids the model sees before its reply: the chat template's turns (a string is one user
    turn) and the assistant header when the tokenizer has a template, else the plain text and
    a newline."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
    text = prompt if isinstance(prompt, str) else plain_text(prompt)
    return tokenizer(text + "\n", add_special_tokens=True)["input_ids"]


def response_ids(tokenizer: PreTrainedTokenizerBase, response: str) -> list[int]:
    """The reply's ids, closed by the end-of-sequence token (or the separator token)."""
    ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    return ids + ([end] if end is not None else [])


def prompt_budget(max_length: int, max_new_tokens: int) -> int:
    """The most prompt tokens fed to generation: room for the reply within ``max_length``, as in
    training (where a reply keeps at least half the budget)."""
    return max(max_length - max_new_tokens, max_length // 2)


def encode_pair(
    tokenizer: PreTrainedTokenizerBase, prompt: str | Messages, response: str, max_length: int
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (prompt masked). Too long: the prompt loses its start
    first, keeping at least half the budget for the reply."""
    p, r = prompt_ids(tokenizer, prompt), response_ids(tokenizer, response)
    r = r[: max(max_length - len(p), max_length // 2)]
    p = p[max(0, len(p) - (max_length - len(r))) :]
    return {"input_ids": p + r, "labels": [IGNORE] * len(p) + r}


class PairDataset(Dataset):
    def __init__(self, rows: list[dict[str, list[int]]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def collate(pad_id: int):
    """Right-pad ``input_ids`` with ``pad_id`` and ``labels`` with -100. Packed rows (with
    ``position_ids``) get no attention mask: their padding is one more sequence of its own."""

    def fn(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        if "position_ids" in rows[0]:
            return packed(rows, width)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def packed(rows: list[dict[str, list[int]]], width: int) -> dict[str, torch.Tensor]:
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        positions = torch.arange(width).repeat(len(rows), 1)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            labels[i, :n] = torch.tensor(r["labels"])
            positions[i, :n] = torch.tensor(r["position_ids"])
            positions[i, n:] = torch.arange(width - n)
        return {"input_ids": ids, "position_ids": positions, "labels": labels}

    return fn


class GenerationDataModule(ResumableData, L.LightningDataModule):
    """``frames`` holds each split's ``prompt`` and ``response`` strings; ``datasets`` their ids."""

    def __init__(self, config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 42):
        super().__init__()
        self.config, self.tokenizer, self.seed = config, tokenizer, seed
        self.frames: dict[str, pd.DataFrame] = {}
        self.datasets: dict[str, PairDataset] = {}
        self.label_names: list[str] = []
        if tokenizer.pad_token_id is None:  # Llama-style tokenizers have none
            tokenizer.pad_token = tokenizer.eos_token

    def load_frames(self) -> dict[str, pd.DataFrame]:
        if self.frames:
            return self.frames
        cfg = self.config
        splits = load_splits(
            cfg.source, cfg.path, cfg.encoding, cfg.validation_path, cfg.test_path, cfg.hub_config
        )
        given = {name: self._rows(split.frame, split.where) for name, split in splits.items()}
        rest, fractions = (
            given.pop("train"),
            dict(zip(("train", "validation", "test"), cfg.split, strict=True)),
        )
        remaining = 1.0
        for name in ("test", "validation"):
            if name not in given and fractions[name] > 0:
                rest, given[name] = self._split_off(rest, fractions[name] / remaining)
                remaining -= fractions[name]
        if cfg.train_size is not None:
            size = cfg.train_size
            if size != 1.0 and not (isinstance(size, int) and size >= len(rest)):
                from sklearn.model_selection import train_test_split  # lazy: only a subsample

                rest, _ = train_test_split(rest, train_size=size, random_state=self.seed)
        given["train"] = rest
        self.frames = {
            n: given[n].reset_index(drop=True)
            for n in ("train", "validation", "test")
            if n in given
        }
        if cfg.group_column:
            self._warn_shared_groups()
        for name, frame in self.frames.items():
            log.info("%s: %d prompt/response pairs", name, len(frame))
        return self.frames

    def _warn_shared_groups(self) -> None:
        """A split given as a file may share groups with train: say so (the split is the user's)."""
        train = set(self.frames["train"]["group"])
        for name in ("validation", "test"):
            if name not in self.frames:
                continue
            shared = sorted(train & set(self.frames[name]["group"]))
            if shared:
                log.warning(
                    "%s shares %d %s value(s) with train (first: %s): those rows leak across splits",
                    name,
                    len(shared),
                    self.config.group_column,
                    shared[0],
                )

    def _split_off(self, rest: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(rest, split) with ``fraction`` of the rows, or of the groups when
        ``data.group_column`` is set (a conversation never spans two splits)."""
        from sklearn.model_selection import GroupShuffleSplit, train_test_split  # lazy

        if not self.config.group_column:
            return train_test_split(rest, test_size=fraction, random_state=self.seed)
        if rest["group"].nunique() < 2:
            raise SftlabError(
                f"data.group_column={self.config.group_column}: fewer than 2 groups left to split: "
                f"give more groups, or data.validation_path and data.test_path"
            )
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=self.seed)
        try:
            keep, part = next(splitter.split(rest, groups=rest["group"]))
        except ValueError as e:
            raise SftlabError(
                f"data.group_column={self.config.group_column}: cannot split "
                f"{rest['group'].nunique()} groups with fraction {fraction:.3g} "
                f"({str(e).splitlines()[0]}): lower the validation/test fractions in data.split "
                f"or give data.validation_path and data.test_path"
            ) from None
        return rest.iloc[keep], rest.iloc[part]

    def _rows(self, frame: pd.DataFrame, where: str) -> pd.DataFrame:
        cfg = self.config
        if cfg.group_column:
            require_columns(frame, {"group_column": cfg.group_column}, where)
        if cfg.messages_column:
            rows = self._message_rows(frame, where)
        else:
            require_columns(frame, {"response_column": cfg.response_column}, where)
            rows = pd.DataFrame(
                {
                    "prompt": prompt_texts(frame, cfg, where).tolist(),
                    "response": frame[cfg.response_column].astype(str).tolist(),
                    "_row": frame["_row"].tolist(),
                }
            )
            rows["prompt"] = clean_texts(rows["prompt"].tolist(), cfg.cleaning)
        rows["response"] = clean_texts(rows["response"].tolist(), cfg.cleaning)
        if cfg.group_column:
            rows["group"] = frame[cfg.group_column].astype(str).to_numpy()
        has_prompt = rows["prompt"].map(lambda p: bool(p.strip() if isinstance(p, str) else p))
        empty = ~has_prompt | (rows["response"].str.strip() == "")
        if not cfg.messages_column:
            empty |= frame[cfg.response_column].isna().to_numpy()
        if empty.any():
            first = rows.loc[empty.idxmax(), "_row"]
            if cfg.on_bad_rows == "error":
                raise SftlabError(
                    f"{where}: row {first} has an empty prompt or response ({int(empty.sum())} rows): "
                    f"fix them or set data.on_bad_rows=drop"
                )
            log.warning(
                "%s: dropped %d rows with an empty prompt or response (first: row %s)",
                where,
                int(empty.sum()),
                first,
            )
            rows = rows.loc[~empty]
        if rows.empty:
            raise SftlabError(f"{where}: no prompt/response pairs left")
        return rows

    def _message_rows(self, frame: pd.DataFrame, where: str) -> pd.DataFrame:
        """Prompt messages (contents cleaned) and the final assistant reply of each row."""
        cfg = self.config
        require_columns(frame, {"messages_column": cfg.messages_column}, where)
        prompts, replies = [], []
        for value, row in zip(frame[cfg.messages_column], frame["_row"], strict=True):
            if is_missing(value):  # an empty row: dropped or refused below (data.on_bad_rows)
                prompts.append([])
                replies.append("")
                continue
            at = f"{where}, row {row}"
            prompt, reply = split_reply(parse_messages(value, at), at)
            prompts.append(clean_messages(prompt, lambda t: clean_texts(t, cfg.cleaning)))
            replies.append(reply)
        return pd.DataFrame(
            {"prompt": prompts, "response": replies, "_row": frame["_row"].tolist()}
        )

    def setup(self, stage: str | None = None) -> None:
        self.load_frames()
        if self.datasets:
            return
        cfg = self.config
        cfg.max_length = within_positions(cfg.max_length, self.tokenizer)
        for name, frame in self.frames.items():
            rows = [
                encode_pair(self.tokenizer, p, r, cfg.max_length)
                for p, r in zip(frame["prompt"], frame["response"], strict=True)
            ]
            if cfg.packing and name == "train":  # evaluation stays one example per row
                packed = pack(rows, cfg.max_length)
                log.info(
                    "packing: %d training examples in %d rows of <= %d tokens (%.0f%% filled)",
                    len(rows),
                    len(packed),
                    cfg.max_length,
                    100 * fill(packed, cfg.max_length),
                )
                rows = packed
            self.datasets[name] = PairDataset(rows)

    def _loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise SftlabError(f"no {split} split: data.split gives it a fraction of 0")
        rows = self.datasets[split]
        # Evaluation under DDP: each row on exactly one rank (no padding by repeated rows).
        return DataLoader(
            rows,
            batch_size=self.config.eval_batch_size,
            sampler=distributed.eval_sampler(rows, self.trainer),
            collate_fn=collate(self.tokenizer.pad_token_id),
            num_workers=self.config.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            raise SftlabError("no train split: data.split gives it a fraction of 0")
        ds, cfg = self.datasets["train"], self.config
        sampler = (  # data.group_by_length: similar lengths together, less padding
            LengthGroupedSampler(cfg.batch_size, lengths=[len(r["input_ids"]) for r in ds.rows])
            if cfg.group_by_length
            else None
        )
        return self.train_loader(
            ds,
            batch_size=cfg.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            collate_fn=collate(self.tokenizer.pad_token_id),
            num_workers=cfg.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
