"""A run dir in use is locked: resume=auto skips it, resume=<dir> and a new run there are refused;
a lock whose process is gone is taken over; DDP's other ranks are not refused by rank 0's lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftlab.training import resume, run_lock
from sftlab.training.resume import LAST
from sftlab.training.run_lock import LOCK_FILE, RunInUse
from sftlab.utils.errors import SftlabError
from tests.helpers.run_dirs import tiny, unfinished_run


def _fake_lock(run_dir: Path, pid: int, host: str | None = None, age: float = 0.0) -> Path:
    path = run_dir / LOCK_FILE
    path.write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid}))
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def sleeper():
    """A live process that is not this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    return proc.pid


def test_resume_dir_in_use_is_refused_naming_the_dir_and_the_pid(tmp_path, sleeper):
    run = unfinished_run(tmp_path / "run")
    _fake_lock(run, sleeper.pid)
    with pytest.raises(SftlabError) as err:
        resume.plan(tiny(tmp_path / "new", f"resume={run}"))
    line = str(err.value)
    assert "\n" not in line and f"resume={run}" in line and f"pid {sleeper.pid}" in line
    assert json.loads((run / LOCK_FILE).read_text())["pid"] == sleeper.pid  # left alone


def test_this_process_holds_a_live_lock_too(tmp_path):
    run = unfinished_run(tmp_path / "run")
    _fake_lock(run, os.getpid())
    with pytest.raises(SftlabError, match=f"pid {os.getpid()}"):
        resume.plan(tiny(tmp_path / "new", f"resume={run}"))


def test_resume_auto_skips_a_run_in_use_and_takes_the_next(tmp_path, sleeper, caplog):
    runs = tmp_path / "outputs"
    older = unfinished_run(runs / "older", age=60)
    newer = unfinished_run(runs / "newer")
    _fake_lock(newer, sleeper.pid)
    cfg = tiny(tmp_path / "new", "resume=auto", f"runs_dir={runs}")
    with caplog.at_level("WARNING"):
        plan = resume.plan(cfg)
    try:
        assert plan.out == older and plan.ckpt == older / LAST
        lock = json.loads((older / LOCK_FILE).read_text())
        assert lock["pid"] == os.getpid() and lock["host"] == socket.gethostname()
        skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
        assert len(skipped) == 1 and str(newer) in skipped[0] and str(sleeper.pid) in skipped[0]
    finally:
        plan.release()
    assert not (older / LOCK_FILE).exists()
    assert json.loads((newer / LOCK_FILE).read_text())["pid"] == sleeper.pid


def test_resume_auto_starts_fresh_when_every_unfinished_run_is_in_use(tmp_path, sleeper):
    runs = tmp_path / "outputs"
    busy = unfinished_run(runs / "busy")
    _fake_lock(busy, sleeper.pid)
    plan = resume.plan(tiny(tmp_path / "new", "resume=auto", f"runs_dir={runs}"))
    try:
        assert plan.out == tmp_path / "new" and plan.ckpt is None
        assert (tmp_path / "new" / LOCK_FILE).is_file()
    finally:
        plan.release()
    assert not (tmp_path / "new").exists()  # taking the lock made it; nothing else was written


def test_resume_auto_in_a_dir_in_use_is_refused(tmp_path, sleeper):
    """A requeued job's own dir is in use (a live process) and nothing else is unfinished: no
    new run starts in it."""
    out = unfinished_run(tmp_path / "run")
    _fake_lock(out, sleeper.pid)
    with pytest.raises(SftlabError, match=rf"the run dir {out} is in use by pid {sleeper.pid}"):
        resume.plan(tiny(out, "resume=auto", f"runs_dir={tmp_path / 'none'}"))


@pytest.mark.parametrize("stale", ["dead pid", "exited, not reaped", "pid reused", "other host"])
def test_a_stale_lock_is_taken_over(tmp_path, stale):
    run = unfinished_run(tmp_path / "run")
    zombie = None
    if stale == "dead pid":
        _fake_lock(run, _dead_pid())
    elif stale == "exited, not reaped":
        zombie = subprocess.Popen([sys.executable, "-c", "pass"])
        while run_lock._stat(zombie.pid)[0] != "Z":
            time.sleep(0.05)
        _fake_lock(run, zombie.pid)
    elif stale == "pid reused":  # this pid, but the lock's holder started at another time
        path = _fake_lock(run, os.getpid())
        info = json.loads(path.read_text())
        path.write_text(json.dumps({**info, "started": run_lock._started(os.getpid()) - 1}))
    else:  # no heartbeat for longer than STALE_AFTER_S
        _fake_lock(run, 1, host="elsewhere", age=run_lock.STALE_AFTER_S + 5)
    plan = resume.plan(tiny(tmp_path / "new", f"resume={run}"))
    try:
        assert plan.out == run
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        plan.release()
        if zombie is not None:
            zombie.wait()
    assert not (run / LOCK_FILE).exists()


def test_a_lock_from_another_host_is_live_while_refreshed(tmp_path):
    run = unfinished_run(tmp_path / "run")
    _fake_lock(run, 1, host="elsewhere", age=run_lock.HEARTBEAT_S)
    with pytest.raises(SftlabError, match="in use by pid 1 on elsewhere"):
        resume.plan(tiny(tmp_path / "new", f"resume={run}"))


def test_the_holder_refreshes_its_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "HEARTBEAT_S", 0.05)
    lock = run_lock.acquire(tmp_path / "run", owner=tmp_path / "run")
    path = tmp_path / "run" / LOCK_FILE
    os.utime(path, (0, 0))
    deadline = time.monotonic() + 10
    while path.stat().st_mtime == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    refreshed = path.stat().st_mtime > 0
    lock.release()
    assert refreshed and not path.exists()


def test_a_new_run_in_a_dir_in_use_is_refused(tmp_path, sleeper):
    out = tmp_path / "run"
    out.mkdir()
    _fake_lock(out, sleeper.pid)
    with pytest.raises(SftlabError, match=rf"the run dir {out} is in use by pid {sleeper.pid}"):
        resume.plan(tiny(out))


def test_two_runs_cannot_both_take_one_dir(tmp_path):
    first = run_lock.acquire(tmp_path / "run", owner=tmp_path / "a")
    try:
        with pytest.raises(RunInUse):
            run_lock.acquire(tmp_path / "run", owner=tmp_path / "b")
    finally:
        first.release()
    run_lock.acquire(tmp_path / "run", owner=tmp_path / "b").release()


def test_ddp_other_ranks_are_not_refused_by_their_rank_0s_lock(tmp_path, monkeypatch, sleeper):
    """Rank 1 starts (Lightning's launcher runs the command again) while rank 0 holds the lock:
    it plans the same run dir, takes no lock and leaves rank 0's alone."""
    runs = tmp_path / "outputs"
    run = unfinished_run(runs / "run")
    out = tmp_path / "hydra-dir"  # both ranks were started with it
    rank0 = run_lock.acquire(run, owner=out)
    other = unfinished_run(runs / "other", age=60)
    _fake_lock(other, sleeper.pid)  # another job's: skipped by every rank
    monkeypatch.setenv("LOCAL_RANK", "1")
    try:
        for how in (f"resume={run}", "resume=auto"):
            plan = resume.plan(tiny(out, how, f"runs_dir={runs}"))
            assert plan.out == run and plan.lock is None, how
            plan.release()
            assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
        fresh_dir = tmp_path / "fresh"  # a new DDP run: rank 0 locked its own dir
        with_rank0 = run_lock.acquire(fresh_dir, owner=fresh_dir)
        assert resume.plan(tiny(fresh_dir)).lock is None
        with_rank0.release()
        with pytest.raises(SftlabError, match="in use"):  # another job's run: refused
            resume.plan(tiny(out, f"resume={other}"))
    finally:
        rank0.release()
