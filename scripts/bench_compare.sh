#!/usr/bin/env bash
# Same-run comparison of two benchmark commands (side A and side B) on the same model
# files: for ROUNDS rounds, per model and thread count, both sides run back to back,
# A first in odd rounds and B first in even ones (ABBA), so that both see the same
# machine state (the machines here are shared and their bandwidth drifts within
# minutes). Reports, per model and thread count, the median over rounds of the
# ratio A / B for pp and tg tokens/s, with the range of the per-round ratios, and
# the medians of each side. Compare ratios from one run only, never absolute numbers.
#   scripts/bench_compare.sh OUT.jsonl MODEL...
# Environment:
#   A, B      command templates; {model} {threads} {pp} {tg} {reps} are substituted.
#             Default A: $MOE bench -m {model} -t {threads} -p {pp} -n {tg} -r {reps} --json
#             B is required: another moe (same template, other binary), the same one
#             with an environment change ("env MOE_PACK=0 build/ci/bin/moe bench ..."),
#             or a peer such as llama.cpp's
#             "llama-bench -m {model} -t {threads} -p {pp} -n {tg} -r {reps} -o jsonl".
#             A side prints either one JSON object with pp_tokens_per_s and
#             tg_tokens_per_s (moe bench --json) or llama-bench's jsonl records
#             (avg_ts of the record with n_gen = 0 is pp, of n_prompt = 0 is tg).
#   MOE=build/ci/bin/moe  ROUNDS=3  THREADS="1 2"  PP=512  TG=64  REPS=3
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
OUT=$1
shift
MOE=${MOE:-build/ci/bin/moe}
A=${A:-"$MOE bench -m {model} -t {threads} -p {pp} -n {tg} -r {reps} --json"}
B=${B:?set B to the command to compare with (see the header of $0)}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-"1 2"}
PP=${PP:-512}
TG=${TG:-64}
REPS=${REPS:-3}

# run SIDE TEMPLATE MODEL THREADS ROUND: one JSON line {side, model, threads, round, pp, tg}
run() {
  local cmd=$2
  cmd=${cmd//\{model\}/$3}
  cmd=${cmd//\{threads\}/$4}
  cmd=${cmd//\{pp\}/$PP}
  cmd=${cmd//\{tg\}/$TG}
  cmd=${cmd//\{reps\}/$REPS}
  echo "round $5 side $1: $cmd" >&2
  bash -c "$cmd" 2>/dev/null | python3 -c '
import json, sys
side, model, threads, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pp = tg = None
raw = None
for line in sys.stdin.read().splitlines():
    line = line.strip()
    if not line.startswith("{"):
        continue
    j = json.loads(line)
    if "tg_tokens_per_s" in j:
        pp, tg, raw = j.get("pp_tokens_per_s"), j["tg_tokens_per_s"], j
    elif "avg_ts" in j:  # llama-bench -o jsonl
        if j.get("n_gen", 0) == 0:
            pp = j["avg_ts"]
        elif j.get("n_prompt", 0) == 0:
            tg = j["avg_ts"]
if tg is None and pp is None:
    sys.exit("no pp/tg figures in the output of side " + side)
print(json.dumps({"side": side, "model": model, "threads": threads, "round": rnd, "pp": pp, "tg": tg,
                  "raw": raw}))
' "$1" "$3" "$4" "$5" >> "$OUT"
}

for r in $(seq "$ROUNDS"); do
  for m in "$@"; do
    for t in $THREADS; do
      if (( r % 2 )); then run A "$A" "$m" "$t" "$r"; run B "$B" "$m" "$t" "$r"
      else run B "$B" "$m" "$t" "$r"; run A "$A" "$m" "$t" "$r"; fi
    done
  done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["model"], r["threads"]), {}).setdefault(r["round"], {})[r["side"]] = r
def cell(ratios):
    if not ratios:
        return "–"
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}, n={len(ratios)})"
def med(v):
    v = [x for x in v if x]
    return f"{statistics.median(v):.1f}" if v else "–"
print("| model | threads | pp A | pp B | pp A/B (range) | tg A | tg B | tg A/B (range) |")
print("|---|---|---|---|---|---|---|---|")
for (m, t), rounds in sorted(by.items()):
    pairs = [d for d in rounds.values() if "A" in d and "B" in d]
    rp = [d["A"]["pp"] / d["B"]["pp"] for d in pairs if d["A"]["pp"] and d["B"]["pp"]]
    rt = [d["A"]["tg"] / d["B"]["tg"] for d in pairs if d["A"]["tg"] and d["B"]["tg"]]
    print(f"| {m.split('/')[-1]} | {t} | {med([d['A']['pp'] for d in pairs])} | {med([d['B']['pp'] for d in pairs])} | "
          f"{cell(rp)} | {med([d['A']['tg'] for d in pairs])} | {med([d['B']['tg'] for d in pairs])} | {cell(rt)} |")
PY
