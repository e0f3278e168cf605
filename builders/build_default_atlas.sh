#!/usr/bin/env bash
# Build the embedded default atlas into OUT with the settings it was built with (builders/build_default_atlas.py
# holds them), logging to OUT.log. Rerun the same command to resume: finished (model, language) shards are kept.
# Then `python builders/make_embedded_atlas.py OUT [--swap]` makes the embedded atlas from it (format v2).
#   bash builders/build_default_atlas.sh OUT [extra arguments for build_default_atlas.py]
set -euo pipefail
OUT=${1:?usage: build_default_atlas.sh OUT [--models ...] [--tokens-per-language N]}
shift
mkdir -p "$(dirname "$OUT")"
HERE="$(cd "$(dirname "$0")" && pwd)"
"${PYTHON:-python}" "$HERE/build_default_atlas.py" --out "$OUT" "$@" 2>&1 | tee -a "$OUT.log"
