"""The shell commands of README.md and docs/ work as written.

Every ``python train.py ...`` (and ``make train ARGS="..."``, ``torchrun ... train.py ...``) line
in a ```bash block composes: Hydra parses its overrides and finds its configs, as
``python train.py <overrides> --cfg job`` would (fast, in this process). A block marked for
testing by the comment line just above it runs too:

- ``<!-- test: as-is -->``: each command runs exactly as written (cheap ones: --help, --cfg job).
- ``<!-- test: scaled -->``: each train.py / predict.py command runs scaled down (slow): a tiny
  model on a few rows for one epoch (``SCALED``), predict.py against a tiny run on a tiny file.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from sftlab.utils.cli import quote_non_ascii
from tests.conftest import ASSETS, CONF, ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:^<!-- test: (?P<mark>[\w-]+) -->\n)?^```(?:bash|sh|shell)\n(?P<body>.*?)^```", re.S | re.M
)
# Appended to a scaled-down train.py command: later overrides win, group choices stay as written
# unless they name a model (a tiny random BERT stands in for any encoder).
SCALED = [
    "model=tiny_bert",
    "data.train_size=32",
    "trainer.max_epochs=1",
    "trainer.precision=32",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "baseline=false",
]
# Placeholders the pages use for a run dir and an input file.
RUN_PLACEHOLDER = re.compile(r"outputs/<[^>]+>(?:/<[^>]+>)?|path/to/model")


@dataclass
class Command:
    page: str
    line: int
    mark: str | None
    text: str  # as written, continuations joined, comments kept
    argv: list[str]  # after the shell's quote removal and variable expansion

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def train_args(self) -> list[str] | None:
        """The arguments train.py receives, or None when this is not a training command."""
        if self.argv[:2] == ["make", "train"]:
            args = [a.split("=", 1)[1] for a in self.argv[2:] if a.startswith("ARGS=")]
            return shlex.split(args[0]) if args else []
        for i, arg in enumerate(self.argv):
            if arg == "train.py" and (i == 0 or self.argv[0] in ("python", "torchrun")):
                return self.argv[i + 1 :]
        return None


def commands() -> list[Command]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in BLOCK.finditer(text):
            first = text[: block.start("body")].count("\n") + 1
            env: dict[str, str] = {}
            lines = block["body"].splitlines()
            i = 0
            while i < len(lines):
                start, line = i, lines[i]
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1] + " " + lines[i].strip()
                i += 1
                argv = shlex.split(line, comments=True)
                if not argv:
                    continue
                if len(argv) == 1 and re.fullmatch(r"[A-Z_]+=.*", argv[0]):  # COMMON="..."
                    name, value = argv[0].split("=", 1)
                    env[name] = value
                    continue
                expanded = []
                for arg in argv:  # $COMMON unquoted: split into words, as the shell does
                    expanded += env[arg[1:]].split() if arg[1:] in env else [arg]
                found.append(
                    Command(
                        page.relative_to(ROOT).as_posix(),
                        first + start,
                        block["mark"],
                        line,
                        expanded,
                    )
                )
    return found


COMMANDS = commands()
TRAINING = [c for c in COMMANDS if c.train_args() is not None]


def overrides_of(args: list[str]) -> list[str]:
    """train.py's overrides without its flags; a sweep (``-m``) as its first value of each swept key."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--cfg", "-c", "--package", "-p", "-sc", "--shell-completion"):
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    out = quote_non_ascii(out)  # as train.py does before Hydra parses
    parsed = OverridesParser.create().parse_overrides(out)
    return [
        f"{o.input_line.split('=', 1)[0]}={next(o.sweep_string_iterator())}"
        if o.is_sweep_override()
        else o.input_line
        for o in parsed
    ]


def test_every_page_has_commands_and_the_marks_are_known():
    assert len(TRAINING) >= 40
    assert {c.mark for c in COMMANDS} <= {None, "as-is", "scaled"}
    assert any(c.mark == "scaled" for c in COMMANDS) and any(c.mark == "as-is" for c in COMMANDS)


@pytest.mark.parametrize("command", TRAINING, ids=lambda c: c.id)
def test_every_train_command_composes(command):
    overrides = overrides_of(command.train_args())
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        compose("train", overrides=overrides, return_hydra_config=True)


def shell(line: str, cwd: Path, timeout: int) -> subprocess.CompletedProcess:
    """``line`` in bash, with ``python`` this interpreter and this checkout's code importable."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


AS_IS = list({c.text.split("#")[0].strip(): c for c in COMMANDS if c.mark == "as-is"}.values())


@pytest.mark.parametrize("command", AS_IS, ids=lambda c: c.id)
def test_cheap_commands_run_as_written(command):
    result = shell(command.text, ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


SCALED_COMMANDS = [c for c in COMMANDS if c.mark == "scaled"]


@pytest.fixture(scope="module")
def tiny_run_dir(tmp_path_factory):
    from tests.helpers.tiny_run import trained_run

    return trained_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("command", SCALED_COMMANDS, ids=lambda c: c.id)
def test_marked_commands_run_scaled_down(command, tmp_path, tiny_run_dir):
    args = command.train_args()
    if args is not None:
        kept = [a for a in args if not a.startswith("model=")]  # SCALED names the model
        argv = ["python", "train.py", *kept, *SCALED, f"hydra.run.dir={tmp_path / 'run'}"]
        if "-m" in args:
            argv.append(f"hydra.sweep.dir={tmp_path / 'sweep'}")
        result = shell(shlex.join(argv), ROOT, timeout=600)
    elif command.argv[:2] == ["python", "predict.py"]:
        text = RUN_PLACEHOLDER.sub(str(tiny_run_dir), command.text.split("#")[0])
        for name in re.findall(r"input=(\S+)", text):  # the input file, made from a tiny asset
            shutil.copy(ASSETS / "tiny_sentiment.csv", tmp_path / "input.csv")
            text = text.replace(f"input={name}", f"input={tmp_path / 'input.csv'}")
        result = shell(text, tmp_path, timeout=300)
    else:
        pytest.fail(f"{command.id}: only train.py and predict.py commands can be marked scaled")
    assert result.returncode == 0, result.stderr[-3000:]
