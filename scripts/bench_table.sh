#!/usr/bin/env bash
# Turns the JSON lines of scripts/bench_models.sh into the Markdown table of
# docs/BENCH.md, with the peer (llama.cpp) figures of ../shared/bench/peer.md.
#   scripts/bench_table.sh bench-results.jsonl [LAYERS_FULL=16]
# pp is compared per layer: the benchmark files have fewer layers than models.md
# (pp time is ~ proportional to layers; lm_head runs once per prompt), so the
# ratio uses pp x layers / 16. tg is compared through the roofline fraction,
# which does not depend on the layer count.
set -euo pipefail
python3 - "$1" "${2:-16}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
full = int(sys.argv[2])
# The machines are shared: a run's own bandwidth reading can be low when a
# neighbour is busy. The session roofline uses the best copy bandwidth seen at
# that thread count over all runs of the file (conservative: lower fractions).
best = {}
for r in rows:
    best[r['threads']] = max(best.get(r['threads'], 0), r.get('peak_bandwidth_bytes_per_s', r['bandwidth_bytes_per_s']))
# llama.cpp pp512 / tg128 / tg % of read roofline on the 16-layer shapes (peer.md; midpoints of ranges)
peer = {
 ('moe-bench','q8_0',1): (29.9, 7.2, 0.535), ('moe-bench','q8_0',2): (54.9, 12.9, 0.50),
 ('moe-bench','q4_0',1): (40.2, 9.0, 0.37),  ('moe-bench','q4_0',2): (77.9, 12.15, 0.26),
 ('dense-bench','q8_0',2): (106.8, 13.3, 0.52),
 ('dense-bench','q4_0',1): (68.9, 9.5, 0.39), ('dense-bench','q4_0',2): (138.6, 16.6, 0.36),
}
print("| model | type | layers | threads | pp512 t/s | pp512 t/s ×L/16 | peer pp512 | pp ratio | tg t/s | active MB/token | copy GB/s | read GB/s | tg % of peak BW sample (this run) | tg % of best peak BW of the session | peer tg % of read roofline | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    key = (r['shape'], r['type'].lower(), r['threads'])
    p = peer.get(key)
    pp16 = r['pp_tokens_per_s'] * r['n_layer'] / full
    frac = r.get('tg_roofline_fraction')
    print("| {} | {} | {} | {} | {:.1f} | {:.1f} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {} | {:.0f}% | {} | {:.0f} |".format(
        r['shape'], r['type'], r['n_layer'], r['threads'], r['pp_tokens_per_s'], pp16,
        f"{p[0]:.1f}" if p else "–", f"{pp16 / p[0]:.2f}×" if p else "–",
        r['tg_tokens_per_s'], r['active_bytes_per_token'] / 1e6,
        r['bandwidth_bytes_per_s'] / 1e9, r['read_bandwidth_bytes_per_s'] / 1e9,
        f"{100 * frac:.0f}%" if frac is not None else "withheld",
        100 * r['tg_tokens_per_s'] * r['active_bytes_per_token'] / best[r['threads']],
        f"{100 * p[2]:.0f}%" if p else "–", r['peak_rss_bytes'] / 1e6))
PY
