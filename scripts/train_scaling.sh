#!/usr/bin/env bash
# The scaling experiment of issue 7: constant active parameters and FLOPs per
# token (top-1 routing, the same expert width), experts 1 (dense) -> 4 -> 16 -> 64,
# trained on the King James Bible (Debian bible-kjv). Writes docs/scaling/
# val_loss.svg, throughput.svg and results.md (with max/mean expert load).
#
# Three phases (PHASES, default "loss throughput report"):
#   loss        one long run per expert count (STEPS steps, validation every STEPS/6),
#               at `nice -n $NICE` and with no wall-clock cap by default, so that the
#               runs finish all their steps even on a busy machine. Their tokens/s are
#               not used (on a shared machine they measure the other jobs).
#   throughput  short runs (TP_STEPS steps, no intermediate validation) of every expert
#               count, interleaved over TP_ROUNDS rounds at normal priority; the median
#               tokens/s per expert count is what the table and throughput.svg show.
#   report      `moe train-report` over the loss runs, whose summary.json gets the
#               throughput-phase median as tokens_per_s (the loss run's own figure is
#               kept as tokens_per_s_loss_run); a per-round throughput table is appended.
# Full run (STEPS=1200): ~17 min on an idle 2-core Zen 4 (see docs/TRAINING.md),
# well within the hour. Reduced: STEPS=150 TP_STEPS=30 scripts/train_scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MOE=${MOE:-build/h-train/bin/moe}
STEPS=${STEPS:-1200}
THREADS=${THREADS:-2}
TIME_LIMIT=${TIME_LIMIT:-0}        # seconds per loss run; 0: no cap
NICE=${NICE:-19}                   # niceness of the loss runs
TP_STEPS=${TP_STEPS:-80}           # steps per throughput run
TP_ROUNDS=${TP_ROUNDS:-3}
BALANCE=${BALANCE:-aux}
ALPHA=${ALPHA:-0.1}                # small batches need a larger aux coefficient (issue 7)
EXPERTS=${EXPERTS:-"1 4 16 64"}
PHASES=${PHASES:-"loss throughput report"}
WORK=${WORK:-build/scaling}
OUT=${OUT:-docs/scaling}
PY=${PY:-python3}
mkdir -p "$WORK" "$OUT"
if [ ! -s "$WORK/kjv.txt" ]; then
  command -v bible >/dev/null || { echo "install Debian's bible-kjv (apt-get install bible-kjv)" >&2; exit 1; }
  bible gen1:1-rev22:21 > "$WORK/kjv.txt"
fi
[ -s "$WORK/tok/tokenizer.json" ] || "$MOE" tokenizer-train --data "$WORK/kjv.txt" --vocab 2048 -o "$WORK/tok/tokenizer.json"

# niced NICE CMD...: CMD at that niceness in a session of its own. With the kernel's
# scheduler autogroups (sched_autogroup_enabled=1), nice only ranks processes within
# one session's group, so the new session's group gets the niceness too.
niced() {
  setsid -w sh -c 'n=$1; shift; echo "$n" > /proc/self/autogroup 2>/dev/null || true; exec nice -n "$n" "$@"' sh "$@"
}
# train X STEPS OUT_DIR EVAL_EVERY [extra flags]
train() {
  local X=$1 steps=$2 dir=$3 every=$4
  shift 4
  ${RUN_NICE:+niced "$RUN_NICE"} "$MOE" train --data "$WORK/kjv.txt" --tokenizer "$WORK/tok/tokenizer.json" \
    --layers 2 --embd 128 --heads 4 --kv-heads 2 --head-dim 32 --ff 128 --ctx 64 \
    --experts "$X" --top-k 1 --balance "$BALANCE" --aux-alpha "$ALPHA" \
    --batch 16 --steps "$steps" --warmup 30 --lr 3e-3 --eval-every "$every" --eval-batches 8 \
    --save-every 0 -t "$THREADS" --seed 1 --no-progress -o "$dir" "$@"
}
phase() { case " $PHASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
t_start=$(date +%s)

if phase loss; then
  for X in $EXPERTS; do
    t0=$(date +%s)
    RUN_NICE=$NICE train "$X" "$STEPS" "$WORK/x$X" $((STEPS / 6)) --time-limit "$TIME_LIMIT"
    echo "loss run E$X: $(($(date +%s) - t0)) s (nice $NICE)" | tee -a "$WORK/timing.txt"
  done
fi

if phase throughput; then
  for R in $(seq 1 "$TP_ROUNDS"); do
    for X in $EXPERTS; do
      t0=$(date +%s)
      train "$X" "$TP_STEPS" "$WORK/tp/x$X-r$R" 0
      tps=$($PY -c "import json,sys; print(round(json.load(open(sys.argv[1]))['tokens_per_s']))" "$WORK/tp/x$X-r$R/summary.json")
      echo "throughput run E$X round $R: $tps tokens/s, $(($(date +%s) - t0)) s" | tee -a "$WORK/timing.txt"
    done
  done
fi

if phase report; then
  runs=()
  for X in $EXPERTS; do
    # the throughput-phase median replaces the loss run's (contended) tokens/s
    $PY - "$WORK" "$X" "$TP_ROUNDS" <<'EOF'
import json, statistics, sys
work, x, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
tps = [json.load(open(f"{work}/tp/x{x}-r{r}/summary.json"))["tokens_per_s"] for r in range(1, rounds + 1)]
p = f"{work}/x{x}/summary.json"
s = json.load(open(p))
s.setdefault("tokens_per_s_loss_run", s["tokens_per_s"])
s["tokens_per_s"] = statistics.median(tps)
s["tokens_per_s_rounds"] = tps
json.dump(s, open(p, "w"), indent=1)
EOF
    runs+=(--run "E$X=$WORK/x$X")
  done
  "$MOE" train-report "${runs[@]}" -o "$OUT" > "$OUT/results.md"
  {
    echo
    echo "tokens/s: median of $TP_ROUNDS interleaved throughput runs of $TP_STEPS steps each ($THREADS threads);"
    echo "val loss and load: the $STEPS-step loss runs (max/mean load: tokens per expert summed over the whole run;"
    echo "one step routes 1024 tokens, 16 per expert on average with 64 experts, so single steps are far noisier)."
    echo
    echo "| run | total params | tokens/s per round | median | loss run's own tokens/s (nice $NICE, contended) | max/mean load of one step (mean of the last 100 steps) per layer |"
    echo "|---|---|---|---|---|---|"
    for X in $EXPERTS; do
      $PY - "$WORK/x$X" "$X" <<'EOF'
import json, sys
d, x = sys.argv[1], sys.argv[2]
s = json.load(open(f"{d}/summary.json"))
L = [json.loads(l) for l in open(f"{d}/metrics.jsonl")][-100:]
per = [sum(l["load_max_over_mean"][i] for l in L) / len(L) for i in range(len(L[0]["load_max_over_mean"]))]
print(f"| E{x} | {s['n_params']/1e6:.2f} M | {' / '.join(str(round(t)) for t in s['tokens_per_s_rounds'])} | "
      f"{round(s['tokens_per_s'])} | {round(s['tokens_per_s_loss_run'])} | {' '.join(f'{v:.2f}' for v in per)} |")
EOF
    done
  } >> "$OUT/results.md"
  cat "$OUT/results.md"
fi
echo "train_scaling.sh: phases '$PHASES' took $(($(date +%s) - t_start)) s" | tee -a "$WORK/timing.txt"
