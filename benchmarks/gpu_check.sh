#!/usr/bin/env bash
# The GPU rows of issues 9 and 12 in one run (about 5 minutes on one H100/H200), on a random-weight
# Llama-3.1-8B-shaped model in bf16:
#   1. builder recording vs bare decoder forward: tokens/s, ratio and MFU (targets: >= 0.95x, bare >= 40 % MFU),
#      after a small run whose naive counts must equal the builder's;
#   2. subnetwork fine-tuning vs LoRA r=32: step time and peak CUDA memory (targets: step <= 1.15x, memory <= 1x);
#   3. issue 18: format-v2 recording (counts + act(gate) moments + residual means) vs today's count-only builder,
#      tokens/s side by side (target: v2 >= 0.95x), on the same Llama-3.1-8B shape and on gemma-3-270m (real weights).
# Usage: bash benchmarks/gpu_check.sh [PEAK_TFLOPS]   (the device's dense bf16 peak; 989 for H100/H200 SXM)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=".:benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
peak="${1:-989}"
shape=(--model llama-3.1-8b --dtype bfloat16 --device cuda)
python3 benchmarks/build.py "${shape[@]}" --batches 1 --batch-size 2 --seq-len 512 --repeats 1
python3 benchmarks/build.py "${shape[@]}" --batches 4 --batch-size 8 --seq-len 2048 --repeats 3 --no-naive \
    --peak-tflops "$peak"
python3 benchmarks/build.py --part stats "${shape[@]}" --batches 4 --batch-size 8 --seq-len 2048 --repeats 3
python3 benchmarks/build.py --part stats --model gemma-3-270m --dtype bfloat16 --device cuda --batches 1 --batch-size 8 \
    --seq-len 512 --repeats 5
python3 benchmarks/finetune.py --part finetune "${shape[@]}" --methods subnetwork lora32 --batch 4 --seq 2048 \
    --steps 6 --warmup 2 --rounds 2
