"""The tiny generation run's settings: a random Llama translating the tiny pairs file."""

from __future__ import annotations

from tests.conftest import ASSETS

PAIRS = ASSETS / "tiny_translation.csv"
GEN = [
    "model=tiny_llama",
    "data=text_to_text",
    f"data.path={PAIRS}",
    "data.response_column=target",
    "data.prompt_template='Translate English to Spanish: {source}'",
    "trainer=cpu",
    "trainer.precision=32",
    "trainer.enable_progress_bar=false",
    "logger=csv",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
