"""Upload an exported ``model/`` folder to the Hugging Face Hub (``push_to_hub=<repo id>``).

The push is the last thing a run does: the local export is complete before it starts, and a
push that cannot happen (offline, no token, the Hub refusing) fails in one line that says how
to push the same folder later, ``python -m sftlab.export run=<run> push_to_hub=<repo id>``.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub

from sftlab.config.checks import check_repo_id
from sftlab.utils.errors import SftlabError


def push_problem() -> str | None:
    """Why a push cannot start here (offline mode, no token), or None."""
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE=1 (offline mode): unset it where the Hub can be reached"
    if not huggingface_hub.get_token():
        return "no Hugging Face token: set HF_TOKEN or run `hf auth login`"
    return None


def push_command(run_dir: Path, repo_id: str) -> str:
    return f"python -m sftlab.export run={run_dir} push_to_hub={repo_id}"


def push_model(run_dir: Path, repo_id: str) -> str:
    """Create ``repo_id`` (if new) and upload ``<run_dir>/model`` to it: exactly that folder,
    never the checkpoints, data splits or config beside it. Returns the commit's URL."""
    check_repo_id(repo_id)
    folder = Path(run_dir) / "model"
    later = push_command(run_dir, repo_id)
    if not (folder / "config.json").is_file():
        raise SftlabError(
            f"{folder} holds no exported model (no config.json): export it first with "
            f"`python -m sftlab.export run={run_dir} format=hf`, then `{later}`"
        )
    problem = push_problem()
    if problem:
        raise SftlabError(
            f"not pushed to {repo_id}: {problem}; the local export {folder} is complete: "
            f"push it later with `{later}`"
        )
    try:
        huggingface_hub.create_repo(repo_id, repo_type="model", exist_ok=True)
        info = huggingface_hub.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message="Upload model fine-tuned with sftlab",
            ignore_patterns=["onnx/*", "onnx.lock"],  # predict.py backend=onnx's own files
        )
    except Exception as e:  # noqa: BLE001 - network, auth, a repo the token cannot write
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SftlabError(
            f"pushing {folder} to {repo_id} failed ({first}); the local export is complete: "
            f"push it later with `{later}`"
        ) from None
    return str(getattr(info, "commit_url", None) or info)
