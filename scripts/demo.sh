#!/usr/bin/env bash
# Set up the core package and ask the embedded atlas for Tagalog's language-specific neurons in Gemma 3 270M.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
. .venv/bin/activate
neuron-atlas info
neuron-atlas neurons gemma-3-270m --lang tl --top 1% --by-layer --format table
python - <<'PY'
import neuron_atlas as na
atlas = na.open()
s = atlas.neurons("gemma-3-270m", lang="tl", top="1%")
print(s)
print(s.to_pandas().head(10).to_string(index=False))
print(atlas.overlap("gemma-3-270m", ["tl", "id", "ms", "en"]).to_pandas().round(3).to_string(index=False))
PY
