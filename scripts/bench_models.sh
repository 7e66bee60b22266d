#!/usr/bin/env bash
# Synthesizes the benchmark models of ../shared/bench/models.md (scaled down in
# layers so that each file stays around 2 GB on the 24 GiB machines) and runs
# `moe bench` on each at 1 and 2 threads, writing one JSON line per run.
#
#   scripts/bench_models.sh [make|run|all]      (default: all)
# Environment:
#   MOE=build/h-perf/bin/moe   binary
#   MODELS=models              where the .gguf files go (git-ignored)
#   LAYERS=4                   layers of every model (models.md: 16)
#   TYPES="q8_0 q4_0 q4_K"     weight types
#   SHAPES="moe-bench moe-bench-2x dense-bench"
#   THREADS="1 2"  REPS=3  PP=512  TG=128
#   OUT=bench-results.jsonl    results (appended)
#   KEEP=1                     keep the model files (0: delete each after its runs)
set -euo pipefail
cd "$(dirname "$0")/.."
MOE=${MOE:-build/h-perf/bin/moe}
MODELS=${MODELS:-models}
LAYERS=${LAYERS:-4}
TYPES=${TYPES:-"q8_0 q4_0 q4_K"}
SHAPES=${SHAPES:-"moe-bench moe-bench-2x dense-bench"}
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
OUT=${OUT:-bench-results.jsonl}
KEEP=${KEEP:-1}
mode=${1:-all}
mkdir -p "$MODELS"

# Common widths of models.md: n_embd 2048, 16/4 heads of 128, vocab 50304.
common=(--layers "$LAYERS" --embd 2048 --heads 16 --kv-heads 4 --head-dim 128 --vocab 50304 --std 0.02)
shape_args() {
  case "$1" in
    moe-bench)    echo "--arch qwen3moe --experts 64 --top-k 8 --expert-ff 1024" ;;
    moe-bench-2x) echo "--arch qwen3moe --experts 128 --top-k 8 --expert-ff 1024" ;;
    dense-bench)  echo "--arch qwen3 --experts 0 --ff 8192" ;;
    *) echo "unknown shape $1" >&2; exit 1 ;;
  esac
}

path_of() { echo "$MODELS/$1-L${LAYERS}-$2.gguf"; }

make_model() {  # shape type
  local f; f=$(path_of "$1" "$2")
  [[ -s $f ]] && return 0
  echo "synth $f" >&2
  # shellcheck disable=SC2046
  "$MOE" synth -o "$f" $(shape_args "$1") "${common[@]}" --type "$2" --embd-type "$2" --seed 1 >&2
}

run_model() {  # shape type
  local f; f=$(path_of "$1" "$2")
  for t in $THREADS; do
    echo "bench $f -t $t" >&2
    "$MOE" bench -m "$f" -p "$PP" -n "$TG" -t "$t" -r "$REPS" --json |
      python3 -c "import json,sys; j=json.loads(sys.stdin.read()); j['shape']='$1'; j['type']='$2'; print(json.dumps(j))" >> "$OUT"
  done
}

for s in $SHAPES; do
  for ty in $TYPES; do
    [[ $mode == make || $mode == all ]] && make_model "$s" "$ty"
    [[ $mode == run || $mode == all ]] && run_model "$s" "$ty"
    [[ $KEEP == 0 && $mode == all ]] && rm -f "$(path_of "$s" "$ty")"
  done
done
exit 0
