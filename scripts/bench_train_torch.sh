#!/usr/bin/env bash
# Training throughput of `moe train` against the PyTorch reference of the same
# model (tests/train/torch_ref.py, Debian python3-torch), same shape and threads:
# forward + backward + clipping + AdamW steps on batches of BATCH x CTX tokens.
#   scripts/bench_train_torch.sh            (env: MOE, THREADS, STEPS, TORCH_STEPS,
#                                            LAYERS, EMBD, EXPERTS, TOPK, FF, CTX, BATCH)
# Prints both tokens/s and the ratio moe / torch. moe's figure is the tokens/s of
# its last metrics.jsonl line (all steps, evaluation and export excluded); torch's
# is timed after WARM untimed steps. The machine may be shared: run it twice.
set -euo pipefail
cd "$(dirname "$0")/.."
MOE="${MOE:-build/release/bin/moe}"
PY=/usr/bin/python3
THREADS="${THREADS:-2}"
STEPS="${STEPS:-30}"
TORCH_STEPS="${TORCH_STEPS:-10}"
WARM="${WARM:-2}"
LAYERS="${LAYERS:-4}" EMBD="${EMBD:-256}" HEADS="${HEADS:-4}" KV="${KV:-2}" HD="${HD:-64}"
EXPERTS="${EXPERTS:-8}" TOPK="${TOPK:-2}" FF="${FF:-128}" CTX="${CTX:-128}" BATCH="${BATCH:-8}"
VOCAB="${VOCAB:-1024}"

[ -x "$MOE" ] || { echo "bench_train_torch: no $MOE (build it, or set MOE=path/to/moe)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "bench_train_torch: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# corpus: the repository's own docs and sources
cat docs/*.md README.md src/*/*.cpp src/*/*.h > "$work/data.txt"
"$MOE" tokenizer-train --data "$work/data.txt" --vocab "$VOCAB" -o "$work/tok/tokenizer.json" >/dev/null 2>&1
n_vocab=$($PY -c "import json,sys; t=json.load(open(sys.argv[1])); print(len(t['model']['vocab']) + sum(1 for a in t.get('added_tokens', []) if a['content'] not in t['model']['vocab']))" "$work/tok/tokenizer.json")

echo "model: layers $LAYERS embd $EMBD heads $HEADS/$KV head_dim $HD experts $EXPERTS top-$TOPK ff $FF vocab $n_vocab; batch $BATCH x ctx $CTX; $THREADS threads"
"$MOE" train --data "$work/data.txt" --tokenizer "$work/tok/tokenizer.json" --layers "$LAYERS" --embd "$EMBD" \
  --heads "$HEADS" --kv-heads "$KV" --head-dim "$HD" --experts "$EXPERTS" --top-k "$TOPK" --ff "$FF" \
  --ctx "$CTX" --batch "$BATCH" --steps "$STEPS" --warmup 2 --eval-every 0 --eval-batches 1 --save-every 0 \
  -t "$THREADS" --no-progress -o "$work/run" >/dev/null 2>&1
moe_tps=$($PY -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['tokens_per_s'])" "$work/run/metrics.jsonl")
echo "moe train: $moe_tps tokens/s ($STEPS steps)"

# TORCH_BLAS_DIR: a folder with libblas.so.3 for torch (e.g. OpenBLAS, unpacked from
# libopenblas0-pthread); Debian's torch uses whatever libblas.so.3 alternative is installed.
torch_json=$(LD_LIBRARY_PATH="${TORCH_BLAS_DIR:-}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS="$THREADS" \
  $PY tests/train/torch_ref.py bench --vocab "$n_vocab" --layers "$LAYERS" --embd "$EMBD" --heads "$HEADS" \
  --kv-heads "$KV" --head-dim "$HD" --experts "$EXPERTS" --top-k "$TOPK" --ff "$FF" --ctx "$CTX" --batch "$BATCH" \
  --steps "$TORCH_STEPS" --warmup-steps "$WARM" --threads "$THREADS")
torch_tps=$($PY -c "import json,sys; print(json.loads(sys.argv[1])['torch_tokens_per_s'])" "$torch_json")
torch_info=$($PY -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"BLAS {' '.join(j['blas']) or '?'}, {j['gemm_gflops']:.1f} GFLOP/s on a 1024x256x1024 matmul\")" "$torch_json")
echo "pytorch $($PY -c 'import torch; print(torch.__version__)') reference: $torch_tps tokens/s ($TORCH_STEPS steps, torch.set_num_threads($THREADS); $torch_info)"
$PY -c "import sys; print(f'ratio moe / torch: {float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$moe_tps" "$torch_tps"
