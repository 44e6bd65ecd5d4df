#!/usr/bin/env bash
# GPU check, step 1 (HERE, on the CPU machine, in the checkout the device tool sends):
# fill bench/.gpu_carry/ (git-ignored, well under the device tool's 64 MiB) with what the GPU
# machine's Python lacks: wheels of hydra-core, omegaconf and antlr4 (pure Python, built here
# from the sdist where there is no wheel), the packaged MiniLM with fp16 weights and its
# dist-info, and the airline splits as CSVs. Then: the device tool's run with
# carry ["bench/.gpu_carry"] and command "bash bench/gpu_check.sh" (bench/README.md).
#
#   bash bench/gpu_prepare.sh            # PYTHON=... to use another venv than .venv
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CARRY=bench/.gpu_carry
TMP=$CARRY.tmp
[ -x "$PY" ] || { echo "error: no Python at $PY: run \`make install\` first, or set PYTHON=" >&2; exit 2; }

# The versions this venv runs, so that the GPU machine runs the same.
versions=$("$PY" - <<'PY'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in ("hydra-core", "omegaconf", "antlr4-python3-runtime",
                                             "pytest", "pluggy", "iniconfig")))
PY
)
read -r hydra omegaconf antlr pytest pluggy iniconfig <<<"$versions"

rm -rf "$TMP"
mkdir -p "$TMP/wheels"
# Pure-Python wheels (py3-none-any) install on the GPU machine's Python 3.12 as they are.
# pytest runs the GPU tests there (tests/models/test_cuda_graphs.py -m gpu).
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$TMP/wheels" "$hydra" "$omegaconf" \
    "$pytest" "$pluggy" "$iniconfig"
# antlr4-python3-runtime 4.9.3 (the one omegaconf 2.3 needs) is published as an sdist only.
"$PY" -m pip wheel -q --no-deps -w "$TMP/wheels" "$antlr"
ls "$TMP/wheels"

PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 WANDB_MODE=disabled \
    "$PY" bench/gpu_check.py prepare --carry "$TMP"

rm -rf "$CARRY"
mv "$TMP" "$CARRY"  # a failed prepare leaves the earlier carry folder as it was
du -sh "$CARRY"/*
du -sh "$CARRY"
