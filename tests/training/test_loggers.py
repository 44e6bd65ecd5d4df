"""logger=tensorboard and logger=mlflow beside CSV: the files they write hold the config (secrets
masked), the test metrics of metrics.json and the confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sftlab import train
from sftlab.config.checks import check_config
from sftlab.utils.errors import SftlabError
from tests.conftest import TINY, compose_cfg

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")

SECRET = "do-not-log-me"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    """One tiny run with TensorBoard and MLflow (an SQLite store like the default one, given as
    an absolute path: MLflow caches one store per URI in a process, so the default relative
    ``sqlite:///mlflow.db`` of an earlier test in another working dir would be reused), and no
    CSV logger asked for."""
    home = tmp_path_factory.mktemp("loggers")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)  # tracking_uri: sqlite:///mlflow.db is relative to the working dir
        cfg = compose_cfg(
            [
                *TINY,
                "logger=[tensorboard,mlflow]",
                f"logger.mlflow.tracking_uri=sqlite:///{home / 'mlflow.db'}",
                "trainer.max_epochs=2",
                f"+secrets.hf_token={SECRET}",
            ],
            output_dir=home / "run",
        )
        train(cfg)
    out = home / "run"
    return out, json.loads((out / "metrics.json").read_text())


def test_csv_is_kept_beside_the_other_loggers(run):
    out, _ = run
    assert (out / "csv" / "metrics.csv").is_file()
    assert (out / "report" / "curves.png").is_file()  # report.md's curves read the CSV


def test_tensorboard_holds_the_test_metrics_config_and_confusion_matrix(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, metrics = run
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0}).Reload()
    for key in ("test/acc", "test/f1_macro", "best/val/f1_macro"):
        (logged,) = events.Scalars(key)
        assert logged.value == pytest.approx(metrics[key.removeprefix("best/")], abs=1e-6)
    assert len(events.Scalars("train/loss_epoch")) == 2  # one per epoch trained
    assert "report/confusion_matrix" in events.Tags()["images"]
    (image,) = events.Images("report/confusion_matrix")
    assert image.width > 100 and image.height > 100
    hparams = yaml.safe_load((out / "tensorboard" / "hparams.yaml").read_text())
    assert hparams["secrets"]["hf_token"] == "***"
    assert hparams["model"]["config"]["hidden_size"] == 32
    assert not any(SECRET in p.read_bytes().decode("latin-1") for p in out.rglob("events.*"))


def test_mlflow_holds_the_test_metrics_config_and_confusion_matrix(run):
    from mlflow.tracking import MlflowClient

    out, metrics = run
    client = MlflowClient(f"sqlite:///{out.parent / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("sftlab").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.params["secrets/hf_token"] == "***"
    assert found.data.params["model/config/hidden_size"] == "32"
    for key in ("test/acc", "test/f1_macro"):
        assert found.data.metrics[key] == pytest.approx(metrics[key], abs=1e-6)
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id, "report")}
    assert "report/confusion_matrix.png" in artifacts
    png = Path(client.download_artifacts(found.info.run_id, "report/confusion_matrix.png"))
    assert png.read_bytes() == (out / "report" / "confusion_matrix.png").read_bytes()


def test_a_logger_given_by_its_class_writes_into_the_run_dir(tmp_path):
    out = tmp_path / "run"
    cfg = compose_cfg(
        [
            *TINY,
            "logger._target_=lightning.pytorch.loggers.TensorBoardLogger",
            "trainer.max_epochs=1",
        ],
        output_dir=out,
    )
    train(cfg)
    assert (out / "csv" / "metrics.csv").is_file()
    assert list((out / "lightning_logs").rglob("events.out.tfevents.*"))


def test_a_logger_without_its_package_fails_in_one_line_before_any_file(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    out = tmp_path / "run"
    cfg = compose_cfg([*TINY, "logger=[csv,mlflow]"], output_dir=out)
    with pytest.raises(SftlabError, match=r"logger.mlflow .* pip install mlflow-skinny") as err:
        train(cfg)
    assert "\n" not in str(err.value)
    assert not out.exists()


def test_a_logger_entry_without_a_class_is_refused(tmp_path):
    cfg = compose_cfg([*TINY, "+logger.mine.save_dir=x"], output_dir=tmp_path)
    with pytest.raises(SftlabError, match=r"logger.mine has no _target_"):
        check_config(cfg)
