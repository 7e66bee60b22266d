#!/usr/bin/env bash
# Decode (tg) of moe-bench, moe-bench-2x and dense-bench, alternating model by model
# for ROUNDS rounds, so that the cost-tracks-active-parameters comparisons (MoE vs
# dense with the same active bytes; 2x experts at fixed top-k) are made between
# runs minutes apart rather than one table's rows, on a VM whose memory bandwidth
# changes state within minutes. Prints medians per model and type, and the ratios.
#   scripts/bench_decode_ab.sh                (env: MOE, THREADS=2, ROUNDS=3, REPS=3, OUT, TYPES)
set -euo pipefail
MOE=${MOE:-build/dev/bin/moe}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
REPS=${REPS:-3}
TYPES=${TYPES:-"q8_0 q4_0 q4_K"}
MODELS=${MODELS:-models}
OUT=${OUT:-decode-ab.jsonl}
for r in $(seq "$ROUNDS"); do
  for ty in $TYPES; do
    for s in moe-bench moe-bench-2x dense-bench; do
      f="$MODELS/$s-L4-$ty.gguf"
      [[ -s $f ]] || { echo "missing $f (scripts/bench_models.sh make)" >&2; exit 1; }
      echo "round $r: $f -t $THREADS" >&2
      "$MOE" bench -m "$f" -p 0 -n 128 -t "$THREADS" -r "$REPS" --bw-mib 256 --json |
        python3 -c "import json,sys; j=json.load(sys.stdin); j['shape']='$s'; j['type']='$ty'; j['round']=$r; print(json.dumps(j))" >> "$OUT"
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r['type'], r['threads']), {}).setdefault(r['shape'], []).append(r)
print("| type | threads | moe-bench tg | moe-bench-2x tg | dense-bench tg | MoE vs dense | 2x experts | % of peak BW sample (moe / 2x / dense) |")
print("|---|---|---|---|---|---|---|---|")
for (ty, th), m in sorted(by.items()):
    med = {s: statistics.median(x['tg_tokens_per_s'] for x in v) for s, v in m.items()}
    def frac(v):
        f = [x['tg_roofline_fraction'] for x in v if x.get('tg_roofline_fraction') is not None]
        return statistics.median(f) if f else float('nan')
    pf = {s: frac(v) for s, v in m.items()}
    print(f"| {ty} | {th} | {med['moe-bench']:.1f} | {med['moe-bench-2x']:.1f} | {med['dense-bench']:.1f} | "
          f"{100 * (med['moe-bench'] / med['dense-bench'] - 1):+.1f}% | {100 * (med['moe-bench-2x'] / med['moe-bench'] - 1):+.1f}% | "
          f"{100 * pf['moe-bench']:.0f}% / {100 * pf['moe-bench-2x']:.0f}% / {100 * pf['dense-bench']:.0f}% |")
PY
