"""Credentials never reach a file, a console line or a logger: secret values are masked, and a
secret given on the command line travels through the environment, not through Hydra.

What is secret: every value under a key named ``secrets`` (``+secrets.github=...``, whatever the
name), and the string values of keys that look secret anywhere else: one of their
``_``/``-``/``.``-separated words is token, key, api_key, secret, password, passwd, credentials
or auth (``wandb.api_key``). ``pad_token_id`` also looks secret: outside ``secrets`` only string
values are masked, so numbers stay.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from sftlab.utils.errors import SftlabError
from sftlab.utils.files import write_text

SECRET = re.compile(
    r"(^|[_\-.])(api_?key|key|token|password|passwd|secret|secrets|credentials?|auth)($|[_\-.])",
    re.IGNORECASE,
)
GROUP = "secrets"  # everything under it is secret, whatever its name
MASK = "***"
ENV_PREFIX = "SFTLAB_SECRET_"
MIN_TEXT = 4  # shorter values are masked in configs but not searched for in text


def is_secret(key: str) -> bool:
    """A key (``hf_token``), a dotted path or an override's key (``+secrets.github``) naming a
    secret: one of its parts looks secret (``secrets`` included)."""
    return any(SECRET.search(part) for part in str(key).lstrip("+~").split("."))


def masked(value: Any) -> Any:
    """A plain container (dicts, lists) with its secret values masked."""
    return _masked(value, "")


def secret_values(value: Any) -> list[str]:
    """Every secret value (as text, at least ``MIN_TEXT`` long), longest first (for masking text)."""
    found: set[str] = set()
    _collect(value, "", found)
    return sorted(found, key=len, reverse=True)


def _within(key: Any, kind: str) -> str:
    """What a key's values are: "all" secret (under ``secrets``), secret "text", or "" (not)."""
    if kind == "all" or str(key).lower() == GROUP:
        return "all"
    return "text" if kind == "text" or is_secret(key) else ""


def _hidden(value: Any, kind: str) -> bool:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return False
    return kind == "all" or (kind == "text" and isinstance(value, str))


def _masked(value: Any, kind: str) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, _within(k, kind)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, kind) for v in value]
    return MASK if _hidden(value, kind) else value


def _collect(value: Any, kind: str, found: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, _within(k, kind), found)
    elif isinstance(value, list):
        for v in value:
            _collect(v, kind, found)
    elif _hidden(value, kind) and not isinstance(value, bool) and len(str(value)) >= MIN_TEXT:
        found.add(str(value))


def mask_text(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def mask_files(folder: Path, secrets: list[str], pattern: str = "*.yaml") -> None:
    """Mask the secrets in files Hydra wrote before sftlab ran (``.hydra/*.yaml``). A YAML file
    is masked value by value, so it stays valid YAML (``key: ***`` would not be)."""
    if not secrets or not folder.is_dir():
        return
    for path in folder.glob(pattern):
        text = path.read_text(encoding="utf-8")
        if mask_text(text, secrets) == text:
            continue
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError:
            values = None
        if values is None or path.suffix not in (".yaml", ".yml"):
            write_text(path, mask_text(text, secrets))
        else:
            clean = _mask_strings(values, secrets)
            write_text(path, yaml.safe_dump(clean, sort_keys=False, allow_unicode=True))


def mask_hydra(cfg: DictConfig, out: Path | None = None) -> None:
    """Mask the secrets in what Hydra wrote before sftlab ran: ``.hydra/*.yaml`` and, in a
    multirun, the sweep's ``multirun.yaml`` (a secret set in a config file is in both)."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that fails: the config check names it
        values = OmegaConf.to_container(cfg, resolve=False)
    hidden = secret_values(values)
    job, sweep = _hydra_dirs()
    for folder in {job / ".hydra", *([out / ".hydra"] if out else [])}:
        mask_files(folder, hidden)
    mask_files(sweep, hidden, "multirun.yaml")


def _hydra_dirs() -> tuple[Path, Path]:
    """(the job's output dir, the sweep dir in a multirun); nonexistent paths outside Hydra."""
    nowhere = Path("/nonexistent")
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return nowhere, nowhere
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    return Path(hydra_cfg.runtime.output_dir), Path(hydra_cfg.sweep.dir) if multirun else nowhere


def _mask_strings(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _mask_strings(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_strings(v, secrets) for v in value]
    if isinstance(value, str):
        return mask_text(value, secrets)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return MASK if number and str(value) in secrets else value  # secrets.pin: 123456


def to_environment(argv: list[str], environ: MutableMapping[str, str]) -> list[str]:
    """The command line with each secret override's value moved into an environment variable:
    ``+secrets.hf_token=hf_x`` -> ``+secrets.hf_token=${oc.env:SFTLAB_SECRET_SECRETS_HF_TOKEN}``.

    Hydra writes the overrides it is given into ``.hydra/``, ``multirun.yaml``, the multirun
    launcher's console lines and the job's name, and W&B records ``sys.argv``; after this they
    all hold the variable's name, and the composed config resolves it to the value (a string:
    ``+secrets.pin=1234`` gives "1234"). DDP children and sweep jobs inherit the environment.
    """
    parser = OverridesParser.create()
    out = list(argv[:1])
    for arg in argv[1:]:
        raw_key, eq, _ = arg.partition("=")
        key = raw_key.lstrip("+")
        value = None
        if eq and not arg.startswith(("-", "~")) and key != GROUP and is_secret(key):
            value = _movable(parser, arg, raw_key, grouped=GROUP in key.lower().split("."))
        if value is None:
            out.append(arg)
            continue
        name = ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", key).upper()
        environ[name] = str(value)
        out.append(f"{raw_key}=${{oc.env:{name}}}")
    return out


def _movable(parser: OverridesParser, arg: str, raw_key: str, grouped: bool) -> Any:
    """The value ``to_environment`` moves, or None to leave the override as it is (not secret,
    empty, an interpolation). Under ``secrets`` a value it cannot move is refused."""
    try:
        override = parser.parse_override(arg)
    except HydraException:
        if grouped:  # Hydra's own message would quote the value
            raise SftlabError(
                f"{raw_key}=...: cannot read the value; quote it: {raw_key}='...'"
            ) from None
        return None
    if override.is_sweep_override():
        if grouped:
            raise SftlabError(f"{raw_key}=...: a secret takes one value, not a sweep")
        return None
    value = override.value()
    if isinstance(value, (list, dict)) and grouped:
        raise SftlabError(f"{raw_key}=...: a secret is one value, not a list or a dict")
    if isinstance(value, str) and value and "${" not in value:  # (an interpolation stays)
        return value
    if grouped and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None
