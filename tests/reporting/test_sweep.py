"""Multirun sweeps end with a summary; a failed job is listed, not fatal; Optuna searches go on."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from sftlab.reporting.summary import collect_jobs, group_jobs, summarize
from sftlab.reporting.sweep import fail_nan_trials, objective
from tests.conftest import ROOT, TINY

FAST = [*TINY, "trainer.max_epochs=1"]
STRATEGIES = sorted(p.stem for p in (ROOT / "conf" / "strategy").glob("*.yaml"))


def run_multirun(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def fake_job(root: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job = root / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))


def test_summary_groups_seeds_and_lists_failed_jobs(tmp_path):
    values = {("full", 1): 0.6, ("full", 2): 0.8, ("head_only", 1): 0.5}
    for num, ((strategy, seed), f1) in enumerate(values.items()):
        metrics = {
            "test/f1_macro": f1,
            "test/acc": f1 + 0.1,
            "wall_seconds": 2.0,
            "trainable_params": 10,
        }
        fake_job(
            tmp_path, num, ["model=tiny_bert", f"strategy={strategy}", f"seed={seed}"], metrics
        )
    fake_job(tmp_path, 3, ["model=tiny_bert", "strategy=head_only", "seed=2"], None)
    jobs = collect_jobs(tmp_path)
    groups = {g.config: g for g in group_jobs(jobs)}
    assert set(groups) == {
        "strategy=full",
        "strategy=head_only",
    }  # shared override and seed left out
    mean, std, n = groups["strategy=full"].mean_std("test/f1_macro")
    assert (mean, n) == (pytest.approx(0.7), 2) and std == pytest.approx(
        statistics.stdev([0.6, 0.8])
    )
    assert groups["strategy=head_only"].mean_std("test/f1_macro") == (pytest.approx(0.5), 0.0, 1)

    summarize(tmp_path, "test/f1_macro")
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "failed"]
    assert rows[3]["error"] == "no metrics.json" and rows[3]["test/f1_macro"] == ""
    md = (tmp_path / "summary.md").read_text()
    assert "4 jobs, 3 finished, 1 failed." in md
    assert "| `strategy=full` | 2/2 | " in md and "0.7000 +- 0.1414" in md
    assert "| `strategy=head_only` | 1/2 |" in md
    assert (tmp_path / "summary.png").stat().st_size > 1000
    assert not (tmp_path / "learning_curve.png").exists()  # data.train_size did not vary


def test_multirun_learning_curve_with_a_failed_job(tmp_path):
    """3 sizes x 2 seeds; train_size=2 is below the number of labels, so those jobs fail."""
    sweep = tmp_path / "sweep"
    result = run_multirun(*FAST, "data.train_size=2,24,48", "seed=1,2", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 1, result.stderr[-3000:]  # some jobs failed
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 6
    by_size = {}
    for row in rows:
        by_size.setdefault(row["config"], []).append(row)
    assert {r["status"] for r in by_size["data.train_size=2"]} == {"failed"}
    assert "smaller than the number of labels" in by_size["data.train_size=2"][0]["error"]
    for size in (24, 48):
        group = by_size[f"data.train_size={size}"]
        assert [r["status"] for r in group] == ["ok", "ok"]
        assert {int(r["train_rows"]) for r in group} == {size}  # metrics.json holds the actual rows
        # the table's mean +- std is computed from the jobs' own metrics.json
        f1 = [
            json.loads((sweep / r["job"] / "metrics.json").read_text())["test/f1_macro"]
            for r in group
        ]
        assert (
            f"{statistics.fmean(f1):.4f} +- {statistics.stdev(f1):.4f}"
            in (sweep / "summary.md").read_text()
        )
    assert (sweep / "0" / "error.txt").exists() and not (sweep / "0" / "metrics.json").exists()
    assert (sweep / "summary.png").exists() and (sweep / "learning_curve.png").exists()
    assert "2 failed" in (sweep / "summary.md").read_text()


def test_a_sweep_with_a_failed_job_exits_1_after_its_summary_and_names_the_job(tmp_path):
    """data.train_size=2 passes composition and fails inside the job (fewer rows than labels)."""
    sweep = tmp_path / "sweep"
    result = run_multirun(
        *TINY, "trainer.fast_dev_run=true", "data.train_size=2,24", f"hydra.sweep.dir={sweep}"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "1 failed" in (sweep / "summary.md").read_text()
    named = [line for line in result.stderr.splitlines() if line.startswith("sweep: ")]
    assert named == [
        f"sweep: 1 of 2 jobs failed: #0 data.train_size=2 ({sweep / '0' / 'error.txt'})"
    ]
    assert (sweep / "1" / "metrics.json").is_file()  # the sweep went on after the failure


def test_sweep_exit_status_comes_from_the_jobs_on_disk(tmp_path):
    from omegaconf import OmegaConf

    from sftlab.reporting.sweep import SweepSummary

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    fake_job(tmp_path, 0, ["seed=1"], {"test/f1_macro": 0.5})
    SweepSummary(enabled=False).on_multirun_end(config)  # all good: no exit
    fake_job(tmp_path, 1, ["seed=2"], None)
    with pytest.raises(SystemExit) as stop:
        SweepSummary(enabled=False).on_multirun_end(config)
    assert stop.value.code == 1


def test_a_stopped_sweep_summarizes_its_finished_jobs_and_exits_143(tmp_path):
    """SIGTERM during the second job: the first job's result is in summary.csv, the stopped job
    says how to resume, and the sweep exits 143 (a scheduler sees a stop, not a success)."""
    import signal
    import time

    sweep = tmp_path / "sweep"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src")}
    output = tmp_path / "output.txt"  # a file, not a pipe: nothing blocks while we wait
    with output.open("w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "train.py"),
                "-m",
                *TINY,
                "trainer.max_epochs=1,500",
                f"hydra.sweep.dir={sweep}",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 300
        while not (sweep / "1" / "csv" / "metrics.csv").is_file():  # job 1 is training
            assert proc.poll() is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline, "the second job never started training"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    err = output.read_text()
    assert proc.returncode == 143, err[-3000:]
    assert f"sweep stopped: summary of the finished jobs in {sweep}" in err
    assert f"resume with: python train.py resume={sweep / '1'}" in err
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert [r["job"] for r in rows if r["status"] == "ok"] == ["0"]
    assert (sweep / "0" / "metrics.json").is_file() and not (sweep / "1" / "metrics.json").exists()
    assert (sweep / "1" / "checkpoints" / "last.ckpt").is_file()


def test_objective_reads_best_validation_value_and_nan_on_failure():
    assert objective({"best_val/f1_macro": 0.5, "test/f1_macro": 0.4}, "val/f1_macro") == 0.5
    assert objective({"test/f1_macro": 0.4}, "test/f1_macro") == 0.4
    assert math.isnan(objective(None, "val/f1_macro"))
    assert math.isnan(objective({"test/acc": 0.4}, "val/nothing"))


def test_nan_objective_fails_the_trial_not_the_study():
    import optuna
    from optuna.trial import TrialState

    fail_nan_trials()
    study = optuna.create_study(direction="maximize")
    for value in (math.nan, 0.3, 0.7):
        study.tell(study.ask(), values=[value], state=TrialState.COMPLETE)
    assert [t.state for t in study.trials] == [
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    assert study.best_value == 0.7


def lr_range(strategy: str) -> tuple[float, float]:
    low, high = OmegaConf.load(ROOT / "conf" / "strategy" / f"{strategy}.yaml").lr_range
    return float(low), float(high)


def sampled_lrs(sweep: Path) -> list[float]:
    """optimizer.lr of each trial, as the sweeper passed it to the job."""
    lrs = []
    for overrides in sorted(sweep.glob("*/.hydra/overrides.yaml")):
        values = dict(o.split("=", 1) for o in yaml.safe_load(overrides.read_text()))
        lrs.append(float(values["optimizer.lr"]))
    return lrs


def test_optuna_search_survives_a_failed_trial(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "optuna"
    result = run_multirun(
        "hparams_search=optuna",
        "strategy=head_only",
        *FAST,
        "data.train_size=choice(2,30)",  # 2 < number of labels: that trial fails
        "hydra.sweeper.n_trials=4",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 1, result.stderr[-3000:]  # the search went on, then said so
    jobs = collect_jobs(sweep)
    assert len(jobs) == 4
    failed = [j for j in jobs if not j.ok]
    ok = [j for j in jobs if j.ok]
    assert failed and ok, "seed 1234 samples both sizes in 4 trials"
    assert "failed (objective is NaN)" in result.stdout + result.stderr
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_params"]["data.train_size"] == 30
    low, high = lr_range("head_only")
    lrs = sampled_lrs(sweep)
    assert len(lrs) == 4 and all(low <= lr <= high for lr in lrs), lrs
    assert any(lr > 3e-3 for lr in lrs), "head_only's range reaches past full fine-tuning's"
    assert set(best["best_params"]) >= {
        "optimizer.lr",
        "data.batch_size",
        "optimizer.weight_decay",
    }
    assert best["best_value"] == pytest.approx(max(j.metrics["best_val/f1_macro"] for j in ok))
    assert (
        "1 failed" in (sweep / "summary.md").read_text()
        or f"{len(failed)} failed" in (sweep / "summary.md").read_text()
    )


def test_optuna_searches_the_learning_rates_of_the_chosen_strategy(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "optuna"
    result = run_multirun(
        "hparams_search=optuna",
        "strategy=full",
        *FAST,
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    low, high = lr_range("full")
    lrs = sampled_lrs(sweep)
    assert len(lrs) == 2 and all(low <= lr <= high for lr in lrs), lrs
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert low <= best["best_params"]["optimizer.lr"] <= high


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_has_a_learning_rate_range_around_its_default(strategy):
    low, high = lr_range(strategy)
    lr = float(OmegaConf.load(ROOT / "conf" / "strategy" / f"{strategy}.yaml").lr)
    assert 0 < low < lr < high


@pytest.mark.parametrize("name", ["learning_curve", "compare_strategies"])
def test_experiment_sweeps_compose(name):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.seed == "1,2,3" and len(params) == 2
    assert cfg.hydra.callbacks.sweep_summary._target_ == "sftlab.reporting.sweep.SweepSummary"


def test_optuna_search_space_composes():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.conftest import CONF

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hparams_search=optuna"], return_hydra_config=True)
    assert (
        "optuna" in cfg.hydra.sweeper._target_.lower() and cfg.hydra.sweeper.direction == "maximize"
    )
    assert set(cfg.hydra.sweeper.params) == {
        "optimizer.lr",
        "data.batch_size",
        "optimizer.weight_decay",
        "scheduler.warmup_ratio",
    }
    assert cfg.optimized_metric == "val/f1_macro"


def summary_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "sftlab.reporting.summary", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_summary_help_prints_usage():
    result = summary_cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m sftlab.reporting.summary")
    assert "sweep_dir" in result.stdout and "metric" in result.stdout


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_summary_of_a_bad_folder_is_one_line(tmp_path, make):
    target = tmp_path / "sweep"
    if make == "file":
        target.write_text("not a folder")
    elif make == "empty":
        target.mkdir()
    result = summary_cli(str(target))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target}"), result.stderr
    assert "multirun dir" in lines[0]
    if make == "empty":
        assert list(target.iterdir()) == []  # nothing half-written


def test_summary_cli_writes_the_summary(tmp_path):
    fake_job(tmp_path, 0, ["seed=1"], {"test/f1_macro": 0.5})
    fake_job(tmp_path, 1, ["seed=2"], {"test/f1_macro": 0.7})
    result = summary_cli(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "summary.md")
    assert (tmp_path / "summary.csv").is_file()
