"""data.task=generation: prompt masking, chat template, tiny random Llama runs, chrF/BLEU, GGUF."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from sftlab import train
from sftlab.config.data import DataConfig
from sftlab.data.generation import IGNORE, GenerationDataModule, encode_pair, prompt_ids
from sftlab.models.backbone import load_tokenizer
from sftlab.utils.errors import SftlabError
from tests.conftest import compose_cfg
from tests.helpers.generation import CHAT_TEMPLATE, GEN, PAIRS


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(compose_cfg(GEN).model)


def test_prompt_tokens_are_masked_and_response_tokens_kept(tokenizer):
    enc = encode_pair(tokenizer, "Translate: the cat", "el gato", max_length=64)
    p = prompt_ids(tokenizer, "Translate: the cat")
    assert enc["input_ids"][: len(p)] == p
    assert enc["labels"][: len(p)] == [IGNORE] * len(p)
    reply = enc["labels"][len(p) :]
    assert IGNORE not in reply and reply[-1] == tokenizer.sep_token_id  # closed by the end token
    assert tokenizer.decode(reply, skip_special_tokens=True) == "el gato"


def test_chat_template_is_used_for_the_prompt(tokenizer):
    tok = load_tokenizer(compose_cfg(GEN).model)
    tok.chat_template = CHAT_TEMPLATE
    ids = prompt_ids(tok, "hola")
    assert tok.decode(ids) == tok.decode(
        tok("<|user|>hola\n<|assistant|>", add_special_tokens=False)["input_ids"]
    )
    enc = encode_pair(tok, "hola", "adios", max_length=64)
    assert enc["labels"].count(IGNORE) == len(ids)


def test_long_prompts_lose_their_start_not_the_reply(tokenizer):
    enc = encode_pair(tokenizer, "word " * 200, "the reply", max_length=32)
    assert len(enc["input_ids"]) == 32
    assert (
        tokenizer.decode([t for t in enc["labels"] if t != IGNORE], skip_special_tokens=True)
        == "the reply"
    )


def test_prompt_template_names_a_missing_column(tokenizer):
    cfg = DataConfig(
        source="files",
        path=str(PAIRS),
        task="generation",
        response_column="target",
        prompt_template="Translate: {english}",
        cache_dir=None,
    )
    with pytest.raises(SftlabError, match="prompt_template names column 'english'"):
        GenerationDataModule(cfg, tokenizer).load_frames()


def test_encoder_only_model_is_refused_before_heavy_work(tmp_path):
    cfg = compose_cfg([*GEN, "model=tiny_bert"], output_dir=tmp_path / "run")
    with pytest.raises(
        SftlabError, match="needs a decoder .causal LM. but the model is encoder-only .bert."
    ):
        train(cfg)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def generation_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen-run")
    overrides = [
        *GEN,
        "trainer.max_epochs=4",
        "strategy.lr=3e-3",
        "data.max_new_tokens=8",
        "data.split=[0.7,0.15,0.15]",
    ]
    cfg = compose_cfg(overrides, output_dir=out)
    return cfg, out, train(cfg)


def test_generation_run_reports_perplexity_and_generation_scores(generation_run):
    cfg, out, metrics = generation_run
    for key in (
        "val/loss",
        "val/perplexity",
        "test/perplexity",
        "test/chrf",
        "test/bleu",
        "before/val/perplexity",
    ):
        assert key in metrics, key
    assert metrics["val/perplexity"] == pytest.approx(
        torch.exp(torch.tensor(metrics["val/loss"])).item(), rel=0.05
    )
    # 4 epochs on 28 pairs teach even a random 2-layer model something about the replies
    assert metrics["val/perplexity"] < metrics["before/val/perplexity"]
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["test/generated"] == 6
    assert all(r["prompt"].startswith("Translate English to Spanish: ") for r in rows)
    assert (out / "model" / "config.json").exists()
    assert json.loads((out / "model" / "sftlab.json").read_text())["task"] == "generation"


def test_generation_run_writes_report_and_a_hub_model_card(generation_run):
    from huggingface_hub import ModelCard

    _, out, _ = generation_run
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    report = (out / "report.md").read_text()
    for section in ("## Metrics", "## Sample generations (test)", "## Learning curves"):
        assert section in report, section
    for label, key in (
        ("validation perplexity before fine-tuning", "before/val/perplexity"),
        ("validation perplexity after fine-tuning", "val/perplexity"),
        ("test perplexity", "test/perplexity"),
        ("test chrF (0-100)", "test/chrf"),
        ("test BLEU (0-100)", "test/bleu"),
    ):
        assert f"| {label} | {metrics[key]:.4f} |" in report
    first = rows[0]
    assert f"| {first['prompt']} | {first['reference']} | {first['generated'].strip()} |" in report
    assert sum(line.startswith("| Translate English") for line in report.splitlines()) == 5
    assert (out / "report" / "curves.png").read_bytes()[:4] == b"\x89PNG"

    card = ModelCard.load(out / "model" / "README.md")
    data = card.data
    assert data.pipeline_tag == "text-generation" and data.library_name == "transformers"
    assert data.tags == ["sftlab", "text-generation", "generation"]
    assert data.datasets == ["tiny_translation.csv"] and data.base_model is None
    assert data.metrics == ["perplexity", "chrf", "sacrebleu"]
    got = {r.metric_name: r.metric_value for r in data.eval_results}
    want = {f"test {k}": metrics[f"test/{k}"] for k in ("loss", "perplexity", "chrf", "bleu")}
    assert got == want
    assert {r.task_type for r in data.eval_results} == {"text-generation"}
    assert 'pipeline("text-generation", model=' in card.text
    assert "gen('Translate English to Spanish: <source>', max_new_tokens=8" in card.text
    assert f"| {first['prompt']} |" in card.text


def test_generation_log_holds_the_trained_epochs_only(generation_run):
    """The starting-point score (before/val/*, step 0) and the best checkpoint's validation
    (best/val/*, last step) are rows with no epoch, not a first or an extra epoch."""
    _, out, metrics = generation_run
    history = pd.read_csv(out / "csv" / "metrics.csv")
    assert set(history["epoch"].dropna().astype(int)) == {0, 1, 2, 3}
    assert history.groupby("epoch")["val/loss"].count().tolist() == [1, 1, 1, 1]
    before, after = history[history["epoch"].isna()].to_dict("records")
    assert before["step"] == 0 and after["step"] == history["step"].max()
    assert before["before/val/loss"] == pytest.approx(metrics["before/val/loss"], abs=1e-6)
    assert after["best/val/loss"] == pytest.approx(metrics["val/loss"], abs=1e-6)


def test_exported_causal_lm_reloads_and_generates_the_same(generation_run, tokenizer):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sftlab.tasks.generation import generate

    cfg, out, metrics = generation_run
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    again = generate(model, tok, [r["prompt"] for r in rows], max_new_tokens=8)
    assert again == [r["generated"] for r in rows]


@pytest.mark.slow
def test_smollm2_gguf_converts_once_and_generates(tmp_path):
    from transformers import AutoModelForCausalLM

    from sftlab.models.convert.gguf import gguf_folder
    from sftlab.tasks.generation import generate

    cfg = compose_cfg(["model=smollm2"])
    folder = gguf_folder(cfg.model.name_or_path, str(tmp_path))
    mtime = (folder / "config.json").stat().st_mtime_ns
    assert (
        gguf_folder(cfg.model.name_or_path, str(tmp_path)) == folder
    )  # reused, not converted again
    assert (folder / "config.json").stat().st_mtime_ns == mtime
    tok = load_tokenizer({"name_or_path": str(folder)})
    assert tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.num_parameters() > 100e6
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    (reply,) = generate(model, tok, ["What is the capital of France?"], max_new_tokens=16)
    assert "Paris" in reply


@pytest.mark.slow
def test_chitchat_pairs_are_consecutive_turns():
    from sftlab.data.packaged import load_chitchat

    df = load_chitchat()
    assert len(df) == 131557 and df["conversation"].nunique() == 4017
    first = df[df["conversation"] == df["conversation"].iloc[0]]
    assert first["response"].iloc[0] == first["prompt"].iloc[1]  # each reply is the next prompt


def test_predict_py_generates_from_the_runs_prompt_template(generation_run, tmp_path):
    """predict.py fills the run's prompt_template from each input row and writes `generated`."""
    import pandas as pd
    from omegaconf import OmegaConf

    from sftlab.deploy.predict import predict

    cfg, out, metrics = generation_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    prefix = "Translate English to Spanish: "
    inp = tmp_path / "new.csv"
    pd.DataFrame({"source": [r["prompt"][len(prefix) :] for r in rows]}).to_csv(inp, index=False)
    written = predict(OmegaConf.create({"run": str(out), "input": str(inp), "progress": False}))
    result = pd.read_csv(written, keep_default_na=False)
    assert result["source"].tolist() == [r["prompt"][len(prefix) :] for r in rows]
    assert result["generated"].tolist() == [r["generated"] for r in rows]

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["hello"]}).to_csv(bad, index=False)
    with pytest.raises(SftlabError, match="no column 'source'"):
        predict(OmegaConf.create({"run": str(out), "input": str(bad), "progress": False}))


def test_classification_head_strategies_are_refused_for_generation(tmp_path):
    cfg = compose_cfg([*GEN, "strategy=gradual"], output_dir=tmp_path / "run")
    with pytest.raises(SftlabError, match="strategy=gradual is for classification heads: use"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_lora_generation_trains_adapters_and_exports_a_plain_causal_lm(tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    overrides = [*GEN, "strategy=lora", "trainer.max_epochs=1", "data.max_new_tokens=4"]
    metrics = train(compose_cfg(overrides, output_dir=out))
    assert 0 < metrics["trainable_params"] < metrics["total_params"] / 10
    assert metrics["val/perplexity"] < metrics["before/val/perplexity"]  # the adapters learnt
    model = AutoModelForCausalLM.from_pretrained(out / "model")  # merged: no peft needed
    assert not any("lora" in n for n, _ in model.named_parameters())


def test_serve_answers_a_generation_model_as_the_run_generated(generation_run):
    from fastapi.testclient import TestClient

    from sftlab.deploy.serve import create_app
    from sftlab.inference.predictor import load_predictor

    cfg, out, metrics = generation_run
    rows = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    client = TestClient(create_app(load_predictor(out, device="cpu")))
    resp = client.post("/predict", json={"texts": [r["prompt"] for r in rows[:4]]})
    assert resp.status_code == 200
    assert [p["generated"] for p in resp.json()["predictions"]] == [
        r["generated"] for r in rows[:4]
    ]
