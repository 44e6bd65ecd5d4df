"""Freed host memory goes back to the system during a run (glibc keeps it otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PATTERN = """
import json
from sftlab.training.memory import release_freed_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

blocks = [bytearray(64 * 1024) for _ in range(3000)]  # heap-allocated, under mmap's threshold
pin = bytearray(64 * 1024)  # allocated last: the heap's top stays in use, free() cannot shrink it
full = rss_mb()
del blocks
freed = rss_mb()
release_freed_memory()
print(json.dumps({"full": full, "freed": freed, "trimmed": rss_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_returns_the_freed_heap_to_the_system():
    out = subprocess.run(
        [sys.executable, "-c", PATTERN], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    rss = json.loads(out.strip().splitlines()[-1])
    assert rss["freed"] > rss["full"] - 50, rss  # free() alone keeps (most of) the 190 MB
    assert rss["trimmed"] < rss["freed"] - 150, rss


SHAPES = """
import json, random, sys
import torch
from sftlab.utils.setup import bound_kernel_cache
if sys.argv[1] == "bounded":
    bound_kernel_cache()
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
torch.manual_seed(0); random.seed(0)
layers = torch.nn.Sequential(torch.nn.Linear(384, 1536), torch.nn.GELU(), torch.nn.Linear(1536, 384))
for step in range(90):
    tokens = random.randint(1000, 3000)  # packed batches: a new shape nearly every step
    layers(torch.randn(tokens, 384)).sum().backward()
    if step == 20:
        start = rss_mb()
print(json.dumps({"grew_mb": rss_mb() - start}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="torch's CPU build with oneDNN")
def test_changing_batch_shapes_do_not_grow_memory():
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}

    def grew(mode: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", SHAPES, mode],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
            env=env,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])["grew_mb"]

    bounded, default = grew("bounded"), grew("default")
    assert bounded < 100, bounded
    assert default > bounded + 150  # what the bound is for: oneDNN's 1,024 cached shapes
