"""Chat-message rows for generative SFT: a column holding ``[{"role": ..., "content": ...}, ...]``
(a list from JSON, JSONL or parquet, or a JSON string in a CSV cell).

In training the last message is the assistant's reply (the response the loss is on) and every
message before it is the prompt; the tokenizer's chat template renders the prompt messages
with the generation prompt appended, exactly as at generation time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sftlab.utils.errors import SftlabError

ROLES = ("system", "user", "assistant")
Messages = list[dict[str, str]]


def is_missing(value: Any) -> bool:
    """An empty cell: None, NaN, a blank string or an empty list."""
    if value is None or (isinstance(value, float) and value != value):
        return True
    if isinstance(value, str):
        return not value.strip()
    return hasattr(value, "__len__") and len(value) == 0


def parse_messages(value: Any, where: str) -> Messages:
    """The messages of one cell as plain ``{"role", "content"}`` dicts, checked."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise SftlabError(
                f"{where}: the messages are not valid JSON ({e.msg} at character {e.pos}): "
                f'give a list like [{{"role": "user", "content": "..."}}, ...]'
            ) from None
    if hasattr(value, "tolist"):  # parquet and datasets give numpy arrays of dicts
        value = value.tolist()
    if not isinstance(value, list) or not value:
        raise SftlabError(
            f"{where}: the messages must be a non-empty list of {{role, content}} objects, "
            f"got {type(value).__name__}"
        )
    messages = []
    for i, m in enumerate(value):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise SftlabError(
                f"{where}: message {i} must be an object with 'role' and 'content' keys, got {m!r}"[
                    :300
                ]
            )
        if m["role"] not in ROLES:
            raise SftlabError(
                f"{where}: message {i} has role '{m['role']}': use one of {', '.join(ROLES)}"
            )
        messages.append({"role": str(m["role"]), "content": str(m["content"] or "")})
    return messages


def split_reply(messages: Messages, where: str) -> tuple[Messages, str]:
    """(the prompt messages, the final assistant reply) of one training conversation."""
    if messages[-1]["role"] != "assistant":
        raise SftlabError(
            f"{where}: the last message has role '{messages[-1]['role']}': a training conversation "
            f"ends with the assistant's reply (the response the model learns)"
        )
    prompt = messages[:-1]
    if not any(m["role"] == "user" for m in prompt):
        raise SftlabError(f"{where}: no user message before the assistant's reply")
    return prompt, messages[-1]["content"]


def generation_prompt(messages: Messages) -> Messages:
    """The messages to reply to: a trailing assistant message (a reference reply) is left out."""
    return messages[:-1] if len(messages) > 1 and messages[-1]["role"] == "assistant" else messages


def clean_messages(messages: Messages, clean) -> Messages:
    """``messages`` with ``clean`` (a function on a list of texts) applied to every content."""
    contents = clean([m["content"] for m in messages])
    return [{**m, "content": c} for m, c in zip(messages, contents, strict=True)]


def plain_text(messages: Messages) -> str:
    """The prompt for a tokenizer without a chat template: one ``role: content`` line each."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
