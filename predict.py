"""Predict on new data with a trained run: `python predict.py run=outputs/<date>/<time> input=new.csv`."""

import sys

import hydra
from omegaconf import DictConfig

from sftlab.deploy.predict import predict, predict_stopped
from sftlab.utils.cli import hide_secrets, quote_non_ascii, run_or_exit
from sftlab.utils.setup import setup


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    run_or_exit(predict, cfg, None, on_stop=predict_stopped)


if __name__ == "__main__":
    sys.argv = quote_non_ascii(sys.argv)  # Hydra rejects unquoted non-ASCII values: 评论
    sys.argv = hide_secrets(sys.argv)  # Hydra and W&B write the overrides; the values stay out
    setup()
    main()
