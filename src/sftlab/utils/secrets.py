"""Credentials never reach a file or a logger: values of keys that look secret are masked.

A key looks secret when one of its ``_``/``-``/``.``-separated words is token, key, api_key,
secret, password, passwd, credentials or auth (``secrets.hf_token``, ``wandb.api_key``).
``pad_token_id`` also matches: only string values are masked, so numbers stay.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sftlab.utils.files import write_text

SECRET = re.compile(
    r"(^|[_\-.])(api_?key|key|token|password|passwd|secret|secrets|credentials?|auth)($|[_\-.])",
    re.IGNORECASE,
)
MASK = "***"


def is_secret(key: str) -> bool:
    return bool(SECRET.search(str(key)))


def masked(value: Any) -> Any:
    """A plain container (dicts, lists) with the string values of secret-looking keys masked."""
    if isinstance(value, dict):
        return {
            k: MASK if is_secret(k) and isinstance(v, str) and v else masked(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def secret_values(value: Any) -> list[str]:
    """Every string value under a secret-looking key, longest first (for masking text)."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if is_secret(k) and isinstance(v, str) and len(v) >= 4:
                found.append(v)
            else:
                found += secret_values(v)
    elif isinstance(value, list):
        for v in value:
            found += secret_values(v)
    return sorted(set(found), key=len, reverse=True)


def mask_text(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def mask_files(folder: Path, secrets: list[str], pattern: str = "*.yaml") -> None:
    """Mask the secrets in files Hydra wrote before sftlab ran (``.hydra/*.yaml``)."""
    if not secrets or not folder.is_dir():
        return
    for path in folder.glob(pattern):
        text = path.read_text(encoding="utf-8")
        clean = mask_text(text, secrets)
        if clean != text:
            write_text(path, clean)
