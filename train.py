"""Fine-tune a pretrained language model: `python train.py model=bert strategy=head_only`."""

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sftlab.cli import run_or_exit
from sftlab.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_or_exit(train, cfg, HydraConfig.get().runtime.output_dir)
    return metrics.get(cfg.get("optimized_metric", "")) if metrics else None


if __name__ == "__main__":
    main()
