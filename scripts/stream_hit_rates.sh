#!/usr/bin/env bash
# Expert cache hit rate, disk bytes per token and speed vs memory budget, for LFU
# with ageing and LRU, on one model: moe bench --mem at budgets that give the
# expert cache 1/16 .. 1/1 of the routed experts' bytes. Not a test (timings on
# shared machines are noisy); docs/STREAMING.md quotes its output.
#   scripts/stream_hit_rates.sh MODEL.gguf [MOE_BINARY] [extra bench args]
set -euo pipefail
model=$1
moe=${2:-build/ci/bin/moe}
shift $(( $# >= 2 ? 2 : 1 ))
args=(-p 32 -n 64 -r 1 -t 2 --bw-mib 16 "$@")
# The minimum budget and the size of one slot per layer, from the error message
# of a budget that is too small.
msg=$("$moe" bench -m "$model" "${args[@]}" --mem 1 2>&1 || true)
min=$(sed -n 's/.*minimum \([0-9.]*\) MiB.*/\1/p' <<<"$msg")
slot=$(sed -n 's/.*MoE layers \([0-9.]*\) MiB.*/\1/p' <<<"$msg")
n_expert=$("$moe" bench -m "$model" -p 0 -n 1 -r 1 --bw-mib 16 --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["n_expert"])')
printf "%-7s %-5s %6s %8s %8s %12s %10s %8s\n" slots policy budget hit_pp hit_tg "MB/token tg" "disk GB/s" "tg tok/s"
for div in 16 8 4 2 1; do
  slots=$(( n_expert / div ))
  mem=$(python3 -c "print(int(($min + ($slots - 1) * $slot) * 1048576) + 4096)")
  for pol in lfu lru; do
    "$moe" bench -m "$model" "${args[@]}" --mem "$mem" --cache-policy $pol --json 2>/dev/null |
      python3 -c '
import json, sys
j = json.load(sys.stdin)
pp, tg = j.get("cache_pp", {}), j.get("cache_tg", {})
print("%-7d %-5s %5.0fM %7.1f%% %7.1f%% %12.2f %10.2f %8.2f" % (j["expert_slots_per_layer"], j["cache_policy"],
      j["mem_budget_bytes"] / 2**20, 100 * pp.get("hit_rate", 0), 100 * tg.get("hit_rate", 0),
      tg.get("bytes_read_per_token", 0) / 1e6, tg.get("disk_read_bytes_per_s", 0) / 1e9, j["tg_tokens_per_s"]))'
  done
done
"$moe" bench -m "$model" "${args[@]}" --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("resident (no --mem): tg %.2f tok/s, pp %.2f tok/s, routing top-eighth share %.1f%%" % (j["tg_tokens_per_s"], j["pp_tokens_per_s"], 100 * j["routing_top_eighth_share"]))'
