#!/usr/bin/env bash
# Training throughput of `moe train` against the PyTorch reference of the same
# model (tests/train/torch_ref.py, Debian python3-torch), same shape and threads:
# forward + backward + clipping + AdamW steps on batches of BATCH x CTX tokens.
#   scripts/bench_train_torch.sh   (env: MOE, MOE_BASE, ROUNDS, THREADS, STEPS, TORCH_STEPS,
#                                   REFBLAS_STEPS, TORCH_BLAS_DIR, LAYERS, EMBD, EXPERTS,
#                                   TOPK, FF, CTX, BATCH)
# Every round runs, one after the other: moe train, [MOE_BASE: an older moe binary],
# torch on Debian's default libblas.so.3 (the reference BLAS unless an optimised one is
# installed), and torch on OpenBLAS (TORCH_BLAS_DIR: a folder holding OpenBLAS's
# libblas.so.3; default: the pthread build unpacked from libopenblas0-pthread under
# /tmp/obl, see docs/TRAINING.md; skipped when absent). The machine may be shared:
# rounds interleave the variants, and the table gives per-round tokens/s, medians and
# the ratios of the medians. Both figures are steady-state tokens/s after WARM steps:
# moe's from its metrics.jsonl (steps WARM+1..STEPS; evaluation and export excluded),
# torch's timed after WARM untimed steps, the better of two OpenMP wait policies.
set -euo pipefail
cd "$(dirname "$0")/.."
MOE="${MOE:-build/release/bin/moe}"
MOE_BASE="${MOE_BASE:-}"
PY=/usr/bin/python3
ROUNDS="${ROUNDS:-3}"
THREADS="${THREADS:-2}"
STEPS="${STEPS:-30}"
TORCH_STEPS="${TORCH_STEPS:-10}"
REFBLAS_STEPS="${REFBLAS_STEPS:-4}"
WARM="${WARM:-2}"
LAYERS="${LAYERS:-4}" EMBD="${EMBD:-256}" HEADS="${HEADS:-4}" KV="${KV:-2}" HD="${HD:-64}"
EXPERTS="${EXPERTS:-8}" TOPK="${TOPK:-2}" FF="${FF:-128}" CTX="${CTX:-128}" BATCH="${BATCH:-8}"
VOCAB="${VOCAB:-1024}"
TORCH_BLAS_DIR="${TORCH_BLAS_DIR:-/tmp/obl/root/usr/lib/x86_64-linux-gnu/openblas-pthread}"

[ -x "$MOE" ] || { echo "bench_train_torch: no $MOE (build it, or set MOE=path/to/moe)" >&2; exit 1; }
$PY -c 'import torch' 2>/dev/null || { echo "bench_train_torch: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }
have_openblas=0
[ -e "$TORCH_BLAS_DIR/libblas.so.3" ] && have_openblas=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# corpus: the repository's own docs and sources
cat docs/*.md README.md src/*/*.cpp src/*/*.h > "$work/data.txt"
"$MOE" tokenizer-train --data "$work/data.txt" --vocab "$VOCAB" -o "$work/tok/tokenizer.json" >/dev/null 2>&1
n_vocab=$($PY -c "import json,sys; t=json.load(open(sys.argv[1])); print(len(t['model']['vocab']) + sum(1 for a in t.get('added_tokens', []) if a['content'] not in t['model']['vocab']))" "$work/tok/tokenizer.json")
echo "model: layers $LAYERS embd $EMBD heads $HEADS/$KV head_dim $HD experts $EXPERTS top-$TOPK ff $FF vocab $n_vocab; batch $BATCH x ctx $CTX; $THREADS threads; $ROUNDS rounds"

moe_run() {  # moe_run BINARY -> tokens/s
  rm -rf "$work/run"
  "$1" train --data "$work/data.txt" --tokenizer "$work/tok/tokenizer.json" --layers "$LAYERS" --embd "$EMBD" \
    --heads "$HEADS" --kv-heads "$KV" --head-dim "$HD" --experts "$EXPERTS" --top-k "$TOPK" --ff "$FF" \
    --ctx "$CTX" --batch "$BATCH" --steps "$STEPS" --warmup 2 --eval-every 0 --eval-batches 1 --save-every 0 \
    -t "$THREADS" --no-progress -o "$work/run" >/dev/null 2>&1
  # steady state, as torch's: the steps after the first WARM (metrics.jsonl has cumulative
  # tokens and tokens/s since the loop started, so elapsed = tokens / tokens_per_s)
  $PY -c "import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; w=int(sys.argv[2]); a,b=L[w-1],L[-1]; print((b['tokens']-a['tokens'])/(b['tokens']/b['tokens_per_s']-a['tokens']/a['tokens_per_s']))" "$work/run/metrics.jsonl" "$WARM"
}
torch_run1() {  # torch_run1 BLAS_DIR STEPS OMP_WAIT_POLICY -> json
  LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OPENBLAS_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="$3" \
    $PY tests/train/torch_ref.py bench --vocab "$n_vocab" --layers "$LAYERS" --embd "$EMBD" --heads "$HEADS" \
    --kv-heads "$KV" --head-dim "$HD" --experts "$EXPERTS" --top-k "$TOPK" --ff "$FF" --ctx "$CTX" --batch "$BATCH" \
    --steps "$2" --warmup-steps "$WARM" --threads "$THREADS"
}
# torch's OpenMP threads spin while they wait (OMP_WAIT_POLICY=ACTIVE, its default): on
# an idle machine that is fastest, on a busy one it can be 10x slower than PASSIVE. Each
# torch figure is the better of the two policies, run back to back.
torch_run() {  # torch_run BLAS_DIR STEPS -> json of the faster policy
  local a p
  a=$(torch_run1 "$1" "$2" ACTIVE)
  p=$(torch_run1 "$1" "$2" PASSIVE)
  $PY -c "import json,sys; a,p=json.loads(sys.argv[1]),json.loads(sys.argv[2]); a['wait']='active'; p['wait']='passive'; b=max(a,p,key=lambda j:j['torch_tokens_per_s']); b['other_wait_tokens_per_s']=min(a,p,key=lambda j:j['torch_tokens_per_s'])['torch_tokens_per_s']; print(json.dumps(b))" "$a" "$p"
}
jget() { $PY -c "import json,sys; j=json.loads(sys.argv[1]); print($1)" "$2"; }

: > "$work/results.tsv"
for r in $(seq 1 "$ROUNDS"); do
  v=$(moe_run "$MOE"); echo -e "moe\t$v" >> "$work/results.tsv"; echo "round $r: moe train $v tokens/s"
  if [ -n "$MOE_BASE" ]; then
    v=$(moe_run "$MOE_BASE"); echo -e "moe_base\t$v" >> "$work/results.tsv"; echo "round $r: moe train (MOE_BASE) $v tokens/s"
  fi
  j=$(torch_run "" "$REFBLAS_STEPS")
  echo -e "torch_refblas\t$(jget "j['torch_tokens_per_s']" "$j")" >> "$work/results.tsv"
  echo "round $r: torch, default BLAS: $(jget "f\"{j['torch_tokens_per_s']:.0f} tokens/s (BLAS {' '.join(j['blas']) or '?'}, {j['gemm_gflops']:.1f} GFLOP/s on a 1024x256x1024 matmul; OMP wait {j['wait']}, the other policy {j['other_wait_tokens_per_s']:.0f})\"" "$j")"
  if [ "$have_openblas" = 1 ]; then
    j=$(torch_run "$TORCH_BLAS_DIR" "$TORCH_STEPS")
    echo -e "torch_openblas\t$(jget "j['torch_tokens_per_s']" "$j")" >> "$work/results.tsv"
    echo "round $r: torch, OpenBLAS: $(jget "f\"{j['torch_tokens_per_s']:.0f} tokens/s (BLAS {' '.join(j['blas']) or '?'}, {j['gemm_gflops']:.1f} GFLOP/s on a 1024x256x1024 matmul; OMP wait {j['wait']}, the other policy {j['other_wait_tokens_per_s']:.0f})\"" "$j")"
  fi
done
[ "$have_openblas" = 1 ] || echo "(no OpenBLAS at TORCH_BLAS_DIR=$TORCH_BLAS_DIR: apt-get download libopenblas0-pthread, dpkg-deb -x it, point TORCH_BLAS_DIR at usr/lib/x86_64-linux-gnu/openblas-pthread)"
echo "pytorch $($PY -c 'import torch; print(torch.__version__)'); medians over $ROUNDS rounds:"
$PY - "$work/results.tsv" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    k, v = line.split("\t")
    runs.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in runs.items()}
names = {"moe": "moe train", "moe_base": "moe train (MOE_BASE)", "torch_refblas": "torch, default BLAS",
         "torch_openblas": "torch, OpenBLAS"}
print("| variant | tokens/s per round | median | moe / variant |")
print("|---|---|---|---|")
for k, v in runs.items():
    print(f"| {names[k]} | {' / '.join(f'{x:.0f}' for x in v)} | {med[k]:.0f} | {med['moe'] / med[k]:.2f}x |")
EOF
