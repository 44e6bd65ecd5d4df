"""LoRA (Hu et al. 2021) through PEFT: low-rank adapters on the attention projections, the task
head trained in full and saved with the adapter (``modules_to_save``)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sftlab.strategies.layers import HEAD_PREFIXES
from sftlab.utils.errors import SftlabError

# The query and value projections, as each architecture names them (the LoRA paper's choice).
TARGETS = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
}


def model_type(model: nn.Module) -> str:
    config = model.config
    backbone = getattr(config, "backbone", None)  # sftlab's pooled classifier wraps a backbone
    return backbone["model_type"] if isinstance(backbone, dict) and backbone else config.model_type


def head_modules(model: nn.Module) -> list[str]:
    """Names (last component) of the head modules present: PEFT trains and saves them whole."""
    return sorted(
        {
            n.rsplit(".", 1)[-1]
            for n, _ in model.named_modules()
            if n.rsplit(".", 1)[-1] in HEAD_PREFIXES
        }
    )


def lora(
    model: nn.Module,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.1,
    target_modules: Sequence[str] | None = None,
    adapter_only: bool = False,
) -> nn.Module:
    """The model wrapped by PEFT; only the adapters and the head train. ``adapter_only`` is read
    at export (``prepare_for_export``)."""
    from peft import LoraConfig, TaskType, get_peft_model

    kind = model_type(model)
    targets = list(target_modules) if target_modules else TARGETS.get(kind)
    if not targets:
        raise SftlabError(
            f"strategy=lora has no default target modules for model_type '{kind}': "
            f"set strategy.target_modules=[name,...] (the attention projections' module names)"
        )
    if r < 1:
        raise SftlabError(f"strategy.r must be >= 1, got {r}")
    causal = type(model).__name__.endswith("ForCausalLM")  # generative SFT: no head to save
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM if causal else TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        fan_in_fan_out=kind == "gpt2",  # GPT-2's Conv1D stores its weights transposed
        modules_to_save=head_modules(model),
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as e:
        raise SftlabError(f"strategy.target_modules={targets}: {e}".splitlines()[0]) from None
    peft_model.sftlab_adapter_only = bool(adapter_only)
    return peft_model


def prepare_for_export(model: nn.Module) -> nn.Module:
    """What ``save_pretrained`` should write: a PEFT model is merged into a plain Hugging Face
    model (``merge_and_unload``) unless ``strategy.adapter_only`` keeps just adapter and head."""
    if not hasattr(model, "peft_config"):
        return model
    if getattr(model, "sftlab_adapter_only", False):
        return model
    return model.merge_and_unload()
