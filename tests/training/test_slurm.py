"""`hydra/launcher=slurm` composes, and the sbatch script hydra-submitit-launcher would submit
carries the partition, nodes, GPUs per node, one task per GPU, the time limit and the requeue
count (no cluster here: the submission itself is intercepted)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import open_dict

from tests.conftest import CONF

submitit = pytest.importorskip("submitit")


def launcher_cfg(tmp_path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hydra/launcher=slurm", "trainer=ddp", *overrides],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.sweep.dir = str(tmp_path / "sweep")
        cfg.hydra.job.name = "train"
    return cfg


def submitted(cfg, monkeypatch) -> tuple[str, list]:
    """(the sbatch script, the jobs' overrides) that launching one sweep would submit."""
    seen = {}

    def map_array(self, fn, *args):
        seen["executor"], seen["args"] = self, args
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", map_array)
    # The executor looks for `srun` on this machine (there is none): say it is a cluster.
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0)
    slurm = seen["executor"]._executor
    # The requeue count is submitit's: it resubmits a job that timed out or was preempted.
    assert slurm.max_num_timeout == cfg.hydra.launcher.max_num_timeout
    return slurm._make_submission_file_text("python -u -m submitit.core._submit", "uid"), seen[
        "args"
    ]


def test_slurm_launcher_submits_the_configured_shape(tmp_path, monkeypatch):
    cfg = launcher_cfg(
        tmp_path,
        "hydra.launcher.partition=gpu",
        "hydra.launcher.nodes=2",
        "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.timeout_min=90",
        "hydra.launcher.max_num_timeout=5",
        "trainer.devices=4",
        "trainer.num_nodes=2",
    )
    assert cfg.hydra.launcher.tasks_per_node == 4  # one process per GPU, as Lightning expects
    script, args = submitted(cfg, monkeypatch)
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --time=90",
        "#SBATCH --signal=USR2@120",  # submitit's warning before the limit: it requeues the job
    ):
        assert line in script, f"{line} not in:\n{script}"
    assert list(args[0]) == [["seed=1"], ["seed=2"]]  # one SLURM job per sweep job
    assert (tmp_path / "sweep").is_dir()


def test_slurm_defaults_are_one_gpu_and_requeue(tmp_path, monkeypatch):
    cfg = launcher_cfg(tmp_path)
    script, _ = submitted(cfg, monkeypatch)
    assert "#SBATCH --nodes=1" in script and "#SBATCH --gpus-per-node=1" in script
    assert "#SBATCH --partition" not in script  # null: the cluster's default partition
    assert cfg.hydra.launcher.max_num_timeout == 3
