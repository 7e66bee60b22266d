#!/usr/bin/env bash
# The main job on a fresh machine: set up, build, write a small random MoE model
# with the synthesizer (until a trained demo model ships), and generate text.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh release
mkdir -p models
model=models/demo-qwen3moe-q8_0.gguf
if [ ! -f "$model" ]; then
  build/release/bin/moe synth -o "$model" --arch qwen3moe --layers 4 --embd 256 --heads 8 \
    --kv-heads 2 --head-dim 32 --experts 16 --top-k 4 --expert-ff 128 --vocab 1024 --type q8_0 --seed 1
fi
build/release/bin/moe inspect "$model" --no-tensors
build/release/bin/moe run -m "$model" -p "${1:-The quick brown fox}" -n 32 --seed 1
