#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, and generate text with the
# demo model that ships in the repo (models/kjv-moe.gguf: a 6 M-parameter MoE,
# 8 experts top-2, trained by `moe train` on the King James Bible; see
# docs/TRAINING.md). Usage: bash scripts/demo.sh ["prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release moe
model=models/kjv-moe.gguf
build/release/bin/moe inspect "$model" --no-tensors
build/release/bin/moe run -m "$model" -p "${1:-And God said}" -n 64 --seed 1
