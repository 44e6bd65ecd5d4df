"""DDP child processes under Hydra, in single runs and in multiruns (``-m``).

Lightning's DDP launcher starts ranks 1..N-1 by running the command line again. Its Hydra
variant (``_hydra_subprocess_cmd``) copies ``sys.argv``, so under ``-m`` each child starts a
sweep of its own in a new dir (Lightning issue #18175, Hydra issue #2070), and it points the
children at ``hydra.run.dir``, which in a multirun is not the job's dir. Here a child gets
exactly the job it belongs to: the job's own overrides (``seed=2``, not ``seed=1,2``), no
``-m``, the job's output dir, and logging to the console only (rank 0 writes the run dir).

The launcher also leaves the process group and its env vars (``LOCAL_RANK``, ``MASTER_PORT``)
behind in the parent, so the next job of a multirun would find no children to talk to;
``ddp_job()`` removes both after each job.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

# argv options of a Hydra app that a child needs too (the config to compose).
CONFIG_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")
# Hydra overrides of the parent that a child must not repeat: it is one plain run.
DROPPED = (
    "hydra.mode=",
    "hydra.run.dir=",
    "hydra.job.name=",
    "hydra.output_subdir=",
    "hydra/job_logging=",
    "hydra/launcher=",
    "hydra/sweeper=",
    "hydra.sweep",
)
# What Lightning's launcher sets in the parent's environment for its children.
LAUNCH_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)


def config_flags(argv: Sequence[str]) -> list[str]:
    """The ``--config-name``-style options in ``argv`` (with their values)."""
    kept, take_next = [], False
    for arg in argv:
        if take_next or arg.startswith(tuple(f"{f}=" for f in CONFIG_FLAGS)):
            kept.append(arg)
            take_next = False
        elif arg in CONFIG_FLAGS:
            kept.append(arg)
            take_next = True
    return kept


def child_command(local_rank: int) -> tuple[list[str], str]:
    """(command, cwd) that runs rank ``local_rank`` of the current Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += config_flags(sys.argv[1:])
    command += list(hydra_cfg.overrides.task)
    command += [o for o in hydra_cfg.overrides.hydra if not o.startswith(DROPPED)]
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.output_subdir=null",
        "hydra/job_logging=stdout",
    ]
    return command, get_original_cwd()


def use_job_commands() -> None:
    """Make Lightning's DDP launcher start children with ``child_command`` (idempotent)."""
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as pytorch_launcher

    for module in (fabric_launcher, pytorch_launcher):
        module._hydra_subprocess_cmd = child_command


@contextlib.contextmanager
def ddp_job() -> Iterator[None]:
    """One Hydra job: its DDP children run this job, and it leaves no process group or
    launcher env vars behind for the next job of a multirun."""
    import torch  # here, not at import: train.py checks the config before torch loads

    use_job_commands()
    saved = {key: os.environ.get(key) for key in LAUNCH_ENV}
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(threads)
