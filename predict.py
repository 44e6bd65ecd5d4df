"""Predict on new data with a trained run: `python predict.py run=outputs/<date>/<time> input=new.csv`."""

import hydra
from omegaconf import DictConfig

from sftlab.cli import run_or_exit
from sftlab.predict import predict


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    run_or_exit(predict, cfg, None)


if __name__ == "__main__":
    main()
