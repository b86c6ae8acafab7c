#!/usr/bin/env bash
# The one prepared GPU check (one H100 / H200, <= 8 minutes). Through the device tool, from the repo root:
#
#   python -m pip download --no-deps -d .whl math-verify latex2sympy2_extended antlr4-python3-runtime==4.13.2
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
#
# The GPU machine's python3 has torch, transformers, accelerate, tensorboard and sympy (seen there);
# the carried wheels add math-verify (the toy task's reward), and asymrl itself is installed without
# dependencies. Each part writes its JSON into benchmarks/results/, copied to $OUT (what the device tool
# brings back); a part that fails is reported and the others still run.
#
# GPU_CHECK_SMOKE=1 runs every part at toy sizes on the CPU, writing into a scratch folder (checks the
# script itself, measures nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
PYTHON="${PYTHON:-python3}"
export TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
failed=()

part() {  # part NAME COMMAND...: run, time, and remember failures
    local name=$1; shift
    echo "== $name: $*"
    local start=$SECONDS
    if "$@"; then echo "== $name: ok in $((SECONDS - start)) s"; else echo "== $name: FAILED in $((SECONDS - start)) s"; failed+=("$name"); fi
}

if [ "${GPU_CHECK_SMOKE:-0}" = 1 ]; then
    export BENCHMARK_RESULTS="${BENCHMARK_RESULTS:-$(mktemp -d)}"
    DEVICE=cpu
    UPDATE=(--shape tiny --dtype float32 --rows 16 --seq 128 --micro 4 --repeats 2)
    GENERATION=(--shape tiny-qwen-vocab --dtype float32 --rows 4 --new-tokens 16)
    STEP=(--preset tiny --steps 2 train.prompts_per_step=8 train.mini_batch_prompts=8 rollout.max_new_tokens=16)
else
    DEVICE=cuda
    [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && "$PYTHON" -m pip install -q --no-deps .whl/*.whl
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . || echo "pip install -e . failed: using PYTHONPATH=src"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    # Qwen2.5-1.5B shape, 4,096-token maximum, long-tailed lengths: fixed-count vs token-budget micro-batches.
    UPDATE=(--shape qwen2.5-1.5b --dtype bfloat16 --rows 64 --seq 4096 --micro 4 --repeats 3 --peak-tflops 790)
    # Qwen's 151,936-token vocabulary at 1,024 new tokens: memory and tokens/s of the transformers engine.
    GENERATION=(--shape qwen2.5-0.5b --dtype bfloat16 --rows 64 --new-tokens 1024)
    # Five RL steps of the small embedded preset (built first: it is not committed).
    part build-small "$PYTHON" -m asymrl.toy.build --preset small --device cuda
    STEP=(--preset small --steps 5)
fi

part update "$PYTHON" benchmarks/update.py --device "$DEVICE" --lengths long-tailed "${UPDATE[@]}"
part generation "$PYTHON" benchmarks/generation.py --device "$DEVICE" "${GENERATION[@]}"
part step "$PYTHON" benchmarks/step.py "${STEP[@]}"

RESULTS="${BENCHMARK_RESULTS:-benchmarks/results}"
if [ "$OUT" != "$RESULTS" ]; then mkdir -p "$OUT" && cp "$RESULTS"/*.json "$OUT"/; fi
if [ ${#failed[@]} -gt 0 ]; then echo "failed parts: ${failed[*]}"; exit 1; fi
echo "all parts ok"
