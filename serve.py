"""Serve a trained model over HTTP: `python serve.py run=outputs/<date>/<time> port=8000`."""

import sys

import hydra
from omegaconf import DictConfig

from sftlab.deploy.serve import serve, serve_stopped
from sftlab.utils.cli import hide_secrets, quote_non_ascii, run_or_exit
from sftlab.utils.setup import setup


@hydra.main(version_base="1.3", config_path="conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    run_or_exit(serve, cfg, None, on_stop=serve_stopped)


if __name__ == "__main__":
    sys.argv = quote_non_ascii(sys.argv)  # Hydra rejects unquoted non-ASCII values: 评论
    sys.argv = hide_secrets(sys.argv)  # Hydra and W&B write the overrides; the values stay out
    setup()
    main()
