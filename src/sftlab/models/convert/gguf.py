"""A GGUF file (the packaged SmolLM2) as a plain Hugging Face folder, dequantized to fp32."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from sftlab.models.convert.cache import cache_folder, convert_once
from sftlab.utils.errors import SftlabError
from sftlab.utils.paths import resolve

log = logging.getLogger(__name__)


def gguf_folder(gguf: str, cache_dir: str | None) -> Path:
    """A plain HF folder converted from ``gguf`` once and reused."""
    path = Path(resolve(gguf))
    if not path.is_file():
        raise SftlabError(f"model.name_or_path: GGUF file not found: {path}")
    return convert_once(cache_folder(path, cache_dir), lambda folder: _convert(path, folder))


def _convert(path: Path, folder: Path) -> None:
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file
    except ImportError:
        raise SftlabError("reading a GGUF model needs the gguf package: pip install gguf") from None
    log.info("model: converting %s to a Hugging Face folder (once)", path.name)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    # transformers keeps a GGUF-loaded model marked as quantized (not saveable) even when it
    # dequantized every weight: copy the weights into a plain model of the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
