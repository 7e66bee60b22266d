#!/usr/bin/env bash
# Markdown table of an A/B run of scripts/bench_compare.sh (A = before, B = after).
#   scripts/bench_ab_table.sh ab.jsonl
set -euo pipefail
python3 - "$1" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = collections.OrderedDict()
for r in rows:
    by.setdefault((r['model'].split('/')[-1], r['threads']), {})[r['side']] = r
print("| model | threads | pp512 before | pp512 after | pp × | tg before | tg after | tg × | roofline before | roofline after |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (m, t), d in by.items():
    if 'A' not in d or 'B' not in d: continue
    a, b = d['A'], d['B']
    print("| {} | {} | {:.1f} | {:.1f} | {:.2f} | {:.1f} | {:.1f} | {:.2f} | {:.0f}% | {:.0f}% |".format(
        m, t, a['pp_tokens_per_s'], b['pp_tokens_per_s'], b['pp_tokens_per_s'] / a['pp_tokens_per_s'],
        a['tg_tokens_per_s'], b['tg_tokens_per_s'], b['tg_tokens_per_s'] / a['tg_tokens_per_s'],
        100 * a['tg_roofline_fraction'], 100 * b['tg_roofline_fraction']))
PY
