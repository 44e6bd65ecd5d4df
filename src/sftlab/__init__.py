"""sftlab: supervised fine-tuning of pretrained language models (Lightning + Hydra + transformers)."""

from sftlab.utils.errors import SftlabError

__all__ = ["SftlabError"]
__version__ = "0.1.0"
