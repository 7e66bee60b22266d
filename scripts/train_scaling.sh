#!/usr/bin/env bash
# The scaling experiment of issue 7: constant active parameters and FLOPs per
# token (top-1 routing, the same expert width), experts 1 (dense) -> 4 -> 16 -> 64,
# trained on the King James Bible (Debian bible-kjv). Writes docs/scaling/
# val_loss.svg, throughput.svg and results.md (with max/mean expert load).
# Full run: about 1 hour on 2 cores (STEPS=1200). Reduced: STEPS=150 ./scripts/train_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MOE=${MOE:-build/h-train/bin/moe}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-2}
TIME_LIMIT=${TIME_LIMIT:-840}      # seconds per run, a cap that keeps the whole script within the hour
BALANCE=${BALANCE:-aux}
ALPHA=${ALPHA:-0.1}                # small batches need a larger aux coefficient (issue 7)
WORK=${WORK:-build/scaling}
OUT=${OUT:-docs/scaling}
mkdir -p "$WORK" "$OUT"
if [ ! -s "$WORK/kjv.txt" ]; then
  command -v bible >/dev/null || { echo "install Debian's bible-kjv (apt-get install bible-kjv)" >&2; exit 1; }
  bible gen1:1-rev22:21 > "$WORK/kjv.txt"
fi
[ -s "$WORK/tok/tokenizer.json" ] || "$MOE" tokenizer-train --data "$WORK/kjv.txt" --vocab 2048 -o "$WORK/tok/tokenizer.json"
runs=()
for X in 1 4 16 64; do
  "$MOE" train --data "$WORK/kjv.txt" --tokenizer "$WORK/tok/tokenizer.json" \
    --layers 2 --embd 128 --heads 4 --kv-heads 2 --head-dim 32 --ff 128 --ctx 64 \
    --experts "$X" --top-k 1 --balance "$BALANCE" --aux-alpha "$ALPHA" \
    --batch 16 --steps "$STEPS" --warmup 30 --lr 3e-3 --eval-every $((STEPS / 6)) --eval-batches 8 \
    --save-every 0 -t "$THREADS" --seed 1 --time-limit "$TIME_LIMIT" --no-progress -o "$WORK/x$X"
  runs+=(--run "E$X=$WORK/x$X")
done
"$MOE" train-report "${runs[@]}" -o "$OUT" | tee "$OUT/results.md"
