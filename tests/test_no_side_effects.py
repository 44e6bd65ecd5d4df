"""Importing sftlab changes no global state: warning filters, matplotlib's backend and fonts,
OmegaConf resolvers and transformers' registries are set up explicitly, where they are needed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "sftlab"

SCRIPT = textwrap.dedent(
    """
    import importlib, sys, warnings
    from pathlib import Path

    import matplotlib
    from omegaconf import OmegaConf
    from transformers import CONFIG_MAPPING, AttentionInterface, BertConfig
    from transformers import BertForSequenceClassification
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    package = Path(sys.argv[1])
    calls = []

    def spy(name, real):
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(str(package)):
                calls.append(f"{name} from {caller}")
            return real(*args, **kwargs)
        return wrapper

    warnings.filterwarnings = spy("warnings.filterwarnings", warnings.filterwarnings)
    warnings.simplefilter = spy("warnings.simplefilter", warnings.simplefilter)
    matplotlib.use = spy("matplotlib.use", matplotlib.use)
    fonts = list(matplotlib.rcParams["font.sans-serif"])

    names = sorted(
        ".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for p in package.rglob("*.py")
    )
    for name in names:
        importlib.import_module(name)

    from sftlab.models.modeling_pooled import PooledClassifierConfig
    from sftlab.models.speed import unpad
    from sftlab.utils import setup

    assert not calls, calls
    assert matplotlib.rcParams._get_backend_or_none() is None, "a backend was forced"
    assert matplotlib.rcParams["font.sans-serif"] == fonts, "fonts changed"
    assert not OmegaConf.has_resolver("run_suffix")
    assert unpad.ATTN not in AttentionInterface._global_mapping
    assert unpad.ATTN not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping
    assert PooledClassifierConfig.model_type not in CONFIG_MAPPING
    patterns = {f[1].pattern for f in warnings.filters if f[1] is not None}
    assert not patterns & set(setup.KNOWN_WARNINGS)

    # The explicit set-up does what the imports used to do, and again without harm.
    setup.setup()
    setup.setup()
    assert OmegaConf.has_resolver("run_suffix")
    patterns = [f[1].pattern for f in warnings.filters if f[1] is not None]
    assert all(patterns.count(p) == 1 for p in setup.KNOWN_WARNINGS)
    tiny = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=8, attn_implementation="sdpa",
    )
    unpad.enable(BertForSequenceClassification(tiny))
    assert unpad.ATTN in AttentionInterface._global_mapping
    print(len(names), "modules")
    """
)


def test_importing_sftlab_changes_no_global_state():
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(PACKAGE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "modules" in result.stdout
