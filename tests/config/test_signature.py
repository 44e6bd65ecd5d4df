"""The config check reads signatures from source: the same parameters as the imported classes,
the same verdicts on config values, and no torch import before a bad value is refused."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from sftlab.config.checks import check_call, matches
from sftlab.config.signature import static_signature
from sftlab.utils.errors import SftlabError
from tests.conftest import ROOT

TARGETS = [
    "lightning.pytorch.Trainer",
    "torch.optim.AdamW",
    "torch.optim.SGD",
    "sftlab.training.schedules.linear_warmup",
    "lightning.pytorch.strategies.DDPStrategy",
]


@pytest.mark.parametrize("target", TARGETS)
def test_static_signature_has_the_imported_parameters(target):
    from hydra.utils import get_object

    fn = get_object(target)
    imported = inspect.signature(fn.__init__ if inspect.isclass(fn) else fn).parameters
    static = static_signature(target)
    assert static is not None
    assert list(static.params) == [
        n for n, p in imported.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert static.open_ended == any(p.kind == p.VAR_KEYWORD for p in imported.values())


@pytest.mark.parametrize(
    ("target", "key", "good", "bad"),
    [
        ("torch.optim.AdamW", "lr", 1e-3, "abc"),  # float | Tensor: a Tensor is no config value
        ("torch.optim.AdamW", "betas", [0.9, 0.999], 0.9),
        ("lightning.pytorch.Trainer", "max_epochs", 3, "two"),
        ("lightning.pytorch.Trainer", "default_root_dir", "/tmp/run", 3),  # an alias: str | Path
        ("lightning.pytorch.Trainer", "precision", "bf16-mixed", 99),  # aliases of Literals
        ("lightning.pytorch.Trainer", "devices", [0, 1], 1.5),
        ("sftlab.training.schedules.linear_warmup", "warmup_ratio", 0.1, "x"),
    ],
)
def test_static_annotations_judge_values_as_the_imported_ones(target, key, good, bad):
    annotation = static_signature(target).params[key].annotation
    assert matches(good, annotation) and not matches(bad, annotation)


def test_a_target_it_cannot_read_falls_back_to_importing_it():
    assert static_signature("math.floor") is None  # built into the interpreter: no source
    check_call("optimizer", {"_target_": "math.floor"})  # imported, its signature read
    with pytest.raises(SftlabError, match="cannot be imported: check its spelling"):
        check_call("optimizer", {"_target_": "torch.optim.AdamWW", "lr": 1e-3})


def test_a_bad_value_is_refused_before_torch_is_imported(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "train.py"),
            "optimizer.lr=abc",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "error: optimizer.lr='abc' has the wrong type" in result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not {"torch", "lightning", "transformers"} & imported
    assert not (tmp_path / "run").exists()


def test_typing_under_other_names_overloads_and_aliases(tmp_path, monkeypatch):
    """A user's own target: typing imported under another name, an @overload stub before the
    real __init__, an alias of an alias; unknown classes still refuse config primitives."""
    (tmp_path / "my_sched.py").write_text(
        "import typing as t\n"
        "from typing import Optional as Opt, overload\n"
        "from pathlib import Path\n"
        "Ratio = float\n"
        "MaybeRatio = t.Union[Ratio, None]\n"
        "class Thing: ...\n"
        "class Sched:\n"
        "    @overload\n"
        "    def __init__(self, a: int) -> None: ...\n"
        "    def __init__(self, a: t.Optional[int] = None, b: Opt[float] = None,\n"
        "                 c: MaybeRatio = None, d: 'Thing | None' = None, e: Path | str = '.',\n"
        "                 **rest: t.Any) -> None: ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    sig = static_signature("my_sched.Sched")
    assert list(sig.params) == ["self", "a", "b", "c", "d", "e"] and sig.open_ended
    verdicts = {
        key: (matches(good, sig.params[key].annotation), matches(bad, sig.params[key].annotation))
        for key, good, bad in [
            ("a", 1, "x"),
            ("b", 0.5, "x"),
            ("c", 0.1, "x"),
            ("d", None, 3),
            ("e", "/tmp", 3),
        ]
    }
    assert verdicts == {key: (True, False) for key in "abcde"}
