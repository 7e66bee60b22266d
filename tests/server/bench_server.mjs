// Throughput benchmark (not a test): aggregate generated tokens/s of `moe serve`
// with 8 slots vs 1 slot on the same model and machine, 16 concurrent streaming
// clients, greedy, fixed lengths. Usage:
//   MOE_BIN=build/.../moe node tests/server/bench_server.mjs [model.gguf]
// Without a model it synthesizes a larger MoE (4 layers, 512 wide, 32 experts top-4).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MOE, TMP, startServer, parseSse, check } from './lib.mjs';

const CLIENTS = Number(process.env.BENCH_CLIENTS || 16);
const REQS = Number(process.env.BENCH_REQS || 2);      // per client
const TOKENS = Number(process.env.BENCH_TOKENS || 64); // per request
const THREADS = process.env.BENCH_THREADS || '0';

let model = process.argv[2];
if (!model) {
  model = path.join(TMP, 'bench.gguf');
  if (!fs.existsSync(model))
    execFileSync(MOE, ['synth', '-o', model, '--arch', 'qwen3moe', '--layers', '4', '--embd', '512', '--heads', '8',
      '--kv-heads', '2', '--head-dim', '64', '--experts', '32', '--top-k', '4', '--expert-ff', '256', '--vocab', '512',
      '--type', 'q8_0', '--std', '0'], { stdio: 'ignore' });
}

async function run(slots) {
  const srv = await startServer(model, ['-np', String(slots), '-c', '512', '-t', THREADS]);
  try {
    const one = async (c, k) => {
      const res = await fetch(srv.url + '/v1/completions', { method: 'POST', body: JSON.stringify({
        prompt: `client ${c} request ${k}: the experts`, max_tokens: TOKENS, temperature: 0, ignore_eos: true, stream: true,
        stream_options: { include_usage: true } }) });
      const chunks = parseSse(await res.text());
      return chunks.at(-1).usage.completion_tokens;
    };
    await one(0, 0);  // warm-up
    const t0 = performance.now();
    const counts = await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      let n = 0;
      for (let k = 0; k < REQS; k++) n += await one(c, k);
      return n;
    }));
    const s = (performance.now() - t0) / 1000;
    const tokens = counts.reduce((a, b) => a + b, 0);
    check(tokens === CLIENTS * REQS * TOKENS, 'token count');
    return { slots, tokens, seconds: s, tps: tokens / s };
  } finally {
    await srv.stop();
  }
}

const r1 = await run(1);
const r8 = await run(8);
for (const r of [r1, r8])
  console.log(`-np ${r.slots}: ${r.tokens} tokens in ${r.seconds.toFixed(2)} s = ${r.tps.toFixed(1)} tok/s`);
console.log(`speedup 8 slots / 1 slot: ${(r8.tps / r1.tps).toFixed(2)}x (${CLIENTS} clients x ${REQS} requests x ${TOKENS} tokens, model ${path.basename(model)})`);
