#!/usr/bin/env bash
# Set up everything (torch CPU, transformers, real models, test tools) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh full
. .venv/bin/activate
python -m pytest -q -p no:cacheprovider "$@"
