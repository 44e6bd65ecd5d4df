"""convert_once: a packed model file is converted by one builder while the others wait."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sftlab.models.convert.cache import convert_once


def _slow_build(folder: Path) -> None:
    with (folder.parents[1] / "builds.log").open("a") as f:  # one line per build, any process
        f.write(f"{folder}\n")
    time.sleep(0.5)
    (folder / "config.json").write_text("{}")


def _convert(target: str, ready) -> None:
    ready.set()
    convert_once(Path(target), _slow_build)


def test_threads_and_processes_build_once(tmp_path):
    target = tmp_path / "models" / "model-abc"
    ctx = multiprocessing.get_context("fork")  # before any thread starts
    ready = [ctx.Event() for _ in range(2)]
    others = [ctx.Process(target=_convert, args=(str(target), r)) for r in ready]
    for p in others:
        p.start()
    assert all(r.wait(60) for r in ready)  # every builder starts at the same time
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda _: convert_once(target, _slow_build), range(3)))
    for p in others:
        p.join(60)
        assert p.exitcode == 0
    assert got == [target] * 3 and (target / "config.json").is_file()
    assert len((tmp_path / "builds.log").read_text().splitlines()) == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["model-abc", "model-abc.lock"]


def test_a_failed_build_leaves_nothing_and_the_next_call_builds(tmp_path):
    target = tmp_path / "models" / "model-abc"

    def broken(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        convert_once(target, broken)
    assert [p.name for p in target.parent.iterdir()] == ["model-abc.lock"]
    assert convert_once(target, _slow_build) == target and (target / "config.json").is_file()
