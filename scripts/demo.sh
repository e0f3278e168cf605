#!/usr/bin/env bash
# Set up the core package (no torch) and ask the embedded atlas for Tagalog's language-specific neurons in Gemma 3 270M.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
. .venv/bin/activate
neuron-atlas info --format table
neuron-atlas neurons gemma-3-270m --lang tl --top 1% --format table
python - <<'PY'
import neuron_atlas as na

atlas = na.open()
s = atlas.neurons("gemma-3-270m", lang="tl", top="1%")
print(s)
sub = atlas.neurons("gemma-3-270m", lang=["tl", "id", "ms", "en"], among=["tl", "id", "ms", "en", "fr", "sw", "zh", "ar"])
print("LAPE over 8 languages:", sub.sizes())
print(atlas.overlap("gemma-3-270m", ["tl", "id", "ms", "en"]).to_pandas().round(3).to_string(index=False))
print(atlas.sql("SELECT model, count(DISTINCT lang) AS languages, count(*) AS pairs FROM lape GROUP BY model").to_pandas())
PY
