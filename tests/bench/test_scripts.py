"""Every script in bench/ is maintained: it imports against the current package (a renamed
module or function fails here, not in the next benchmark session)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

IMPORT_ALL = """
import importlib.util, sys
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location(path.rsplit("/", 1)[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    print("ok", path)
"""


def test_every_bench_script_imports():
    scripts = sorted(str(p) for p in BENCH.glob("*.py"))
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *scripts],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=BENCH,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("ok ") == len(scripts)


def test_the_bench_readme_lists_every_script():
    readme = (BENCH / "README.md").read_text()
    for path in [*BENCH.glob("*.py"), *BENCH.glob("*.sh")]:
        assert f"`{path.name}`" in readme, f"bench/README.md does not list {path.name}"
