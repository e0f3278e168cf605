#!/usr/bin/env bash
# Build the embedded default atlas (gemma-3-270m, then smollm2-135m, every UDHR language with at least
# 256 tokens of text) into one folder, logging to <out>.log. Rerun the same command to resume after an
# interruption: finished (model, language) shards are kept, never recounted.
# Budgets come from the measured CPU throughput here (bfloat16, 2 cores: ~1000 tok/s when the build has
# them, ~50-110 tok/s when four other agents' jobs compete; benchmarks/RESULTS.md, "Builder"): 512 tokens
# per language. With a free machine or a GPU, raise them: TOKENS=2048 builders/build_default_atlas.sh OUT
set -euo pipefail
OUT=${1:-/work/atlas-build/atlas}
PYTHON=${PYTHON:-python}
TOKENS=${TOKENS:-512}
LOG="$OUT.log"
mkdir -p "$(dirname "$OUT")"
HERE="$(cd "$(dirname "$0")" && pwd)"
COMMON=(--out "$OUT" --tokens-per-language "$TOKENS" --seq-len 128 --batch-size 8 --dtype bfloat16 --min-tokens 256)
{
  for model in gemma-3-270m smollm2-135m; do
    echo "== $(date -u +%FT%TZ) $model"
    "$PYTHON" "$HERE/build_default_atlas.py" --models "$model" "${COMMON[@]}"
  done
  echo "== $(date -u +%FT%TZ) done"
} 2>&1 | tee -a "$LOG"
