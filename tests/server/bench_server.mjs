// Throughput benchmark (not a test of speed: it asserts only that every token
// arrives): aggregate generated tokens/s of `moe serve` with 8 slots vs 1 slot on
// the same model and machine, 16 concurrent streaming clients, greedy, fixed
// lengths, alternating -np 1 / -np 8 for BENCH_ROUNDS rounds (median of each).
// Usage:
//   MOE_BIN=build/.../moe node tests/server/bench_server.mjs [model.gguf]
// Without a model it synthesizes one (BENCH_SHAPE):
//   mixtral (default): 4 layers, 1024 wide, 8 experts top-2 of width 1024, vocab
//     32000, q8_0 (189 MB): Mixtral's expert count and routing, a real vocabulary
//     size, so the attention and lm_head weights are a realistic share of a token.
//   small: 4 layers, 512 wide, 32 experts top-4 of width 256, vocab 512, q8_0.
// BENCH_JSON=file appends one JSON line with the figures.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MOE, TMP, startServer, parseSse, check } from './lib.mjs';

const CLIENTS = Number(process.env.BENCH_CLIENTS || 16);
const REQS = Number(process.env.BENCH_REQS || 2);      // per client
const TOKENS = Number(process.env.BENCH_TOKENS || 64); // per request
const THREADS = process.env.BENCH_THREADS || '0';
const ROUNDS = Number(process.env.BENCH_ROUNDS || 1);
const SHAPE = process.env.BENCH_SHAPE || 'mixtral';

const SHAPES = {
  mixtral: ['--layers', '4', '--embd', '1024', '--heads', '8', '--kv-heads', '2', '--head-dim', '128',
    '--experts', '8', '--top-k', '2', '--expert-ff', '1024', '--vocab', '32000', '--embd-type', 'q8_0'],
  small: ['--layers', '4', '--embd', '512', '--heads', '8', '--kv-heads', '2', '--head-dim', '64',
    '--experts', '32', '--top-k', '4', '--expert-ff', '256', '--vocab', '512'],
};
check(SHAPES[SHAPE] !== undefined, `BENCH_SHAPE must be one of ${Object.keys(SHAPES).join(', ')}`);

let model = process.argv[2];
if (!model) {
  model = path.join(TMP, `bench-${SHAPE}.gguf`);
  if (!fs.existsSync(model))
    execFileSync(MOE, ['synth', '-o', model, '--arch', 'qwen3moe', ...SHAPES[SHAPE], '--type', 'q8_0', '--std', '0'],
      { stdio: 'ignore' });
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
    const metrics = await (await fetch(srv.url + '/metrics')).text();
    const metric = (name) => Number((metrics.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1]);
    const busy = metric('moe_busy_tokens_per_second'), steps = metric('moe_decode_steps_total');
    const tokens = counts.reduce((a, b) => a + b, 0);
    check(tokens === CLIENTS * REQS * TOKENS, 'token count');
    return { slots, tokens, seconds: s, tps: tokens / s, busy, steps };
  } finally {
    await srv.stop();
  }
}

const median = (v) => { const a = [...v].sort((x, y) => x - y); return a[Math.floor((a.length - 1) / 2)]; };
const tps = { 1: [], 8: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const slots of [1, 8]) {
    const res = await run(slots);
    tps[slots].push(res.tps);
    console.log(`round ${r + 1} -np ${slots}: ${res.tokens} tokens in ${res.seconds.toFixed(2)} s = ${res.tps.toFixed(1)} tok/s` +
      ` (engine: ${res.busy.toFixed(1)} tok/s of decode+sampling time, ${res.steps} steps)`);
  }
}
const t1 = median(tps[1]), t8 = median(tps[8]);
console.log(`-np 1: ${t1.toFixed(1)} tok/s, -np 8: ${t8.toFixed(1)} tok/s (medians of ${ROUNDS})`);
console.log(`speedup 8 slots / 1 slot: ${(t8 / t1).toFixed(2)}x (${CLIENTS} clients x ${REQS} requests x ${TOKENS} tokens, model ${path.basename(model)})`);
if (process.env.BENCH_JSON)
  fs.appendFileSync(process.env.BENCH_JSON, JSON.stringify({ model: path.basename(model), clients: CLIENTS, requests: REQS,
    tokens: TOKENS, threads: THREADS, rounds: ROUNDS, tps_1: tps[1], tps_8: tps[8], speedup: t8 / t1 }) + '\n');
