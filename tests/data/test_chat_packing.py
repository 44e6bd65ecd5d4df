"""Generative SFT data: chat-message rows, splits by conversation, packing of short examples."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from sftlab import train
from sftlab.config.data import DataConfig
from sftlab.data.generation import IGNORE, GenerationDataModule, collate, encode_pair, prompt_ids
from sftlab.data.packing import pack
from sftlab.models.backbone import load_tokenizer
from sftlab.models.causal import load_causal_lm
from sftlab.utils.errors import SftlabError
from tests.conftest import ASSETS, compose_cfg
from tests.helpers.generation import CHAT_TEMPLATE, GEN, PAIRS

CHAT = ASSETS / "tiny_chat.jsonl"


@pytest.fixture(scope="module")
def tokenizer():
    tok = load_tokenizer(compose_cfg(GEN).model)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def chat_cfg(**kw) -> DataConfig:
    return DataConfig(
        source="files",
        path=str(CHAT),
        task="generation",
        messages_column="messages",
        split=[0.5, 0.25, 0.25],
        **kw,
    )


def test_messages_give_the_history_as_prompt_and_the_last_reply_as_response(tokenizer):
    frames = GenerationDataModule(chat_cfg(), tokenizer).load_frames()
    rows = pd.concat(frames.values())
    two_turns = rows[rows["prompt"].map(len) == 3].iloc[0]  # user, assistant, user -> reply
    assert [m["role"] for m in two_turns["prompt"]] == ["user", "assistant", "user"]
    assert two_turns["response"].startswith("It depends on the language spoken in")

    enc = encode_pair(tokenizer, two_turns["prompt"], two_turns["response"], max_length=128)
    p = prompt_ids(tokenizer, two_turns["prompt"])
    assert tokenizer.decode(p) == tokenizer.decode(
        tokenizer(
            "".join(f"<|{m['role']}|>{m['content']}\n" for m in two_turns["prompt"])
            + "<|assistant|>",
            add_special_tokens=False,
        )["input_ids"]
    )  # the chat template renders every earlier turn
    assert enc["labels"][: len(p)] == [IGNORE] * len(p)  # loss on the last reply only
    reply = [t for t in enc["labels"] if t != IGNORE]
    assert tokenizer.decode(reply, skip_special_tokens=True) == two_turns["response"].lower()


@pytest.mark.parametrize(
    "messages, error",
    [
        ('[{"role": "user", "content": "hi"}]', "row 2: the last message has role 'user'"),
        ("[{'role': 'user'}]", "row 2: the messages are not valid JSON"),
        ('[{"role": "bot", "content": "hi"}]', "row 2: message 0 has role 'bot'"),
        ('[{"role": "assistant", "content": "hi"}]', "row 2: no user message before"),
    ],
)
def test_bad_messages_name_the_row_and_the_fix(tmp_path, tokenizer, messages, error):
    path = tmp_path / "chat.csv"
    pd.DataFrame({"messages": [messages] * 4}).to_csv(path, index=False)
    cfg = DataConfig(source="files", path=str(path), task="generation", messages_column="messages")
    with pytest.raises(SftlabError, match=error):
        GenerationDataModule(cfg, tokenizer).load_frames()


def test_group_column_keeps_each_conversation_in_one_split(tokenizer):
    frames = GenerationDataModule(chat_cfg(group_column="conversation"), tokenizer).load_frames()
    groups = {name: set(frame["group"]) for name, frame in frames.items()}
    assert groups["train"] and groups["validation"] and groups["test"]
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    assert sum(len(f) for f in frames.values()) == 32  # every row kept


def test_generation_keys_are_refused_for_other_tasks():
    with pytest.raises(SftlabError, match="data.packing applies to data.task=generation only"):
        DataConfig(source="files", path="x.csv", packing=True)
    with pytest.raises(SftlabError, match="set data.prompt_template=null"):
        chat_cfg(prompt_template="Q: {text}")


def test_empty_message_cells_follow_on_bad_rows(tmp_path, tokenizer):
    path = tmp_path / "chat.jsonl"
    rows = [json.loads(line) for line in CHAT.read_text().splitlines()][:8]
    rows[3]["messages"] = []
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(
        source="files",
        path=str(path),
        task="generation",
        messages_column="messages",
        split=[0.5, 0.25, 0.25],
    )
    frames = GenerationDataModule(cfg, tokenizer).load_frames()
    assert sum(len(f) for f in frames.values()) == 7  # the empty row dropped, with a warning
    cfg.on_bad_rows = "error"
    with pytest.raises(SftlabError, match="row 4 has an empty prompt or response"):
        GenerationDataModule(cfg, tokenizer).load_frames()


def test_too_few_conversations_for_the_split_is_one_clear_error(tmp_path, tokenizer):
    path = tmp_path / "chat.jsonl"
    rows = [json.loads(line) for line in CHAT.read_text().splitlines()][:4]  # 2 conversations
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(
        source="files",
        path=str(path),
        task="generation",
        messages_column="messages",
        group_column="conversation",
        split=[0.4, 0.3, 0.3],
    )
    with pytest.raises(SftlabError, match="data.group_column=conversation: .*data.validation_path"):
        GenerationDataModule(cfg, tokenizer).load_frames()


def encoded_pairs(tokenizer, n: int | None = None) -> list[dict[str, list[int]]]:
    frame = pd.read_csv(PAIRS).head(n)
    return [
        encode_pair(tokenizer, s, t, 64)
        for s, t in zip(frame["source"], frame["target"], strict=True)
    ]


def test_packing_keeps_every_example_whole_within_max_length(tokenizer):
    rows = encoded_pairs(tokenizer)
    packed = pack(rows, max_length=64)
    assert len(packed) < len(rows) / 2  # short pairs: several per row
    assert all(len(r["input_ids"]) <= 64 for r in packed)
    found = []
    for r in packed:
        starts = [i for i, p in enumerate(r["position_ids"]) if p == 0] + [len(r["input_ids"])]
        found += [tuple(r["input_ids"][a:b]) for a, b in zip(starts, starts[1:], strict=False)]
    assert sorted(found) == sorted(tuple(r["input_ids"]) for r in rows)


def test_packed_loss_equals_the_padded_loss(tokenizer):
    """The block-diagonal mask from position ids: no token sees another example."""
    torch.manual_seed(0)
    model = load_causal_lm(OmegaConf.to_container(compose_cfg(GEN).model), tokenizer).eval()
    rows = encoded_pairs(tokenizer, 12)
    batch_fn = collate(tokenizer.pad_token_id)
    packed_batch = batch_fn(pack(rows, max_length=64))
    assert "attention_mask" not in packed_batch and len(packed_batch["input_ids"]) < len(rows)
    with torch.no_grad():
        padded = model(**batch_fn(rows), use_cache=False).loss
        packed = model(**packed_batch, use_cache=False).loss  # as CausalLMModule calls it
        repacked = pack(rows[::-1], max_length=48)
        assert all(len(r["input_ids"]) <= 48 for r in repacked)
        shuffled = model(**batch_fn(repacked), use_cache=False).loss
    assert packed.item() == pytest.approx(padded.item(), abs=1e-5)
    assert shuffled.item() == pytest.approx(padded.item(), abs=1e-5)


def test_a_model_that_ignores_packed_positions_is_refused(tokenizer):
    from sftlab.data.packing import check_packing

    model = load_causal_lm(OmegaConf.to_container(compose_cfg(GEN).model), tokenizer)
    packed = pack(encoded_pairs(tokenizer, 12), max_length=64)
    check_packing(model, packed)  # Llama builds the block-diagonal mask: accepted

    class Leaky(torch.nn.Module):  # attends across examples: drops the position ids
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, input_ids, position_ids=None, **kw):
            return self.inner(input_ids=input_ids, **kw)

    with pytest.raises(
        SftlabError, match="lets packed examples attend to each other.*packing=false"
    ):
        check_packing(Leaky(model), packed)


def test_chat_run_with_packing_trains_and_predict_reads_messages(tmp_path):
    out = tmp_path / "run"
    overrides = [
        *[
            o
            for o in GEN
            if not o.startswith(("data.path", "data.response_column", "data.prompt_t"))
        ],
        f"data.path={CHAT}",
        "data.messages_column=messages",
        "data.group_column=conversation",
        "data.packing=true",
        "data.max_new_tokens=4",
        "data.split=[0.5,0.25,0.25]",
        "trainer.max_epochs=2",
    ]
    metrics = train(compose_cfg(overrides, output_dir=out))
    assert metrics["val/perplexity"] > 1 and metrics["test/generated"] > 0
    generated = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert isinstance(generated[0]["prompt"], list)  # the messages, as the model saw them

    from sftlab.deploy.predict import predict

    inp = tmp_path / "new.jsonl"
    inp.write_text("".join(json.dumps({"messages": g["prompt"]}) + "\n" for g in generated))
    written = predict(OmegaConf.create({"run": str(out), "input": str(inp), "progress": False}))
    result = pd.read_json(written, lines=True)
    assert result["generated"].tolist() == [g["generated"] for g in generated]
