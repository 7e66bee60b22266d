#!/usr/bin/env bash
# A/B comparison of two moe binaries on the same models, alternating A and B per
# model and thread count so that both see the same machine load (the machines
# here are shared; compare ratios within one run, not absolute numbers).
#   scripts/bench_compare.sh A_BIN B_BIN OUT.jsonl MODEL... 
# Environment: THREADS="1 2" REPS=3 PP=512 TG=64
set -euo pipefail
A=$1 B=$2 OUT=$3
shift 3
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-64}
for m in "$@"; do
  for t in $THREADS; do
    for side in A B; do
      bin=$A; [[ $side == B ]] && bin=$B
      echo "$side $m -t $t" >&2
      "$bin" bench -m "$m" -p "$PP" -n "$TG" -t "$t" -r "$REPS" --bw-mib 256 --json |
        python3 -c "import json,sys; j=json.loads(sys.stdin.read()); j['side']='$side'; print(json.dumps(j))" >> "$OUT"
    done
  done
done
