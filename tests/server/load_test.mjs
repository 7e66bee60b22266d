// Bounded load test on loopback: 32+ concurrent streaming clients, several requests
// each, over a few rounds against `moe serve -np 8`. Every request completes, every
// SSE stream is well-formed, each greedy output equals the same request served
// alone (no token lost or crossing requests), and resident memory stays steady.
import { makeModel, startServer, parseSse, rss, check, eq, fail } from './lib.mjs';

const CLIENTS = Number(process.env.LOAD_CLIENTS || 32);
const PER_CLIENT = Number(process.env.LOAD_PER_CLIENT || 3);
const ROUNDS = Number(process.env.LOAD_ROUNDS || 3);

const model = makeModel();
const srv = await startServer(model, ['-np', '8', '-c', '512']);

const words = ['alpha', 'beta', 'gamma', 'delta', 'router', 'expert', 'token', 'cache', 'batch', 'stream', 'slot', 'layer'];
const requests = [];
for (let i = 0; i < 24; i++) {
  const text = `${words[i % 12]} ${words[(i * 5) % 12]} ${words[(i * 7 + 3) % 12]} number ${i}`;
  const max_tokens = 8 + (i * 13) % 33;
  if (i % 2) requests.push({ path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: text }], max_tokens, temperature: 0 } });
  else requests.push({ path: '/v1/completions', body: { prompt: text, max_tokens, temperature: 0 } });
}

async function streamOne(req) {
  const res = await fetch(srv.url + req.path, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...req.body, stream: true, stream_options: { include_usage: true } }) });
  check(res.status === 200, `status ${res.status}`);
  check((res.headers.get('content-type') || '').startsWith('text/event-stream'), 'content-type');
  const chunks = parseSse(await res.text());
  const ids = new Set(chunks.map((c) => c.id));
  check(ids.size === 1, 'chunks of one stream carry different ids');
  let text = '', finish = null, usage = null;
  for (const c of chunks) {
    if (c.error) fail('error event: ' + JSON.stringify(c));
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    text += ch.delta ? (ch.delta.content ?? '') : ch.text;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  check(finish && usage, 'stream without finish_reason or usage');
  return { text, finish, n: usage.completion_tokens };
}

try {
  // Reference: every request served alone.
  const ref = [];
  for (const r of requests) ref.push(await streamOne(r));
  let total = 0;
  const rssRounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = Date.now();
    let tokens = 0, done = 0;
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      for (let k = 0; k < PER_CLIENT; k++) {
        const i = (c * 7 + k * 11 + round * 5) % requests.length;
        const got = await streamOne(requests[i]);
        eq(got, ref[i], `request ${i} (client ${c}, round ${round}) differs from the same request served alone`);
        tokens += got.n;
        done++;
      }
    }));
    const s = (Date.now() - t0) / 1000;
    check(done === CLIENTS * PER_CLIENT, 'not every request completed');
    total += done;
    rssRounds.push(rss(srv.proc.pid));
    console.log(`round ${round}: ${done} streams, ${tokens} tokens in ${s.toFixed(2)} s (${(tokens / s).toFixed(0)} tok/s), RSS ${(rssRounds.at(-1) / 1024).toFixed(1)} MiB`);
  }
  const first = rssRounds[0], last = rssRounds.at(-1);
  check(last <= first * 1.10 + 8192, `resident memory grew: ${rssRounds.join(' -> ')} kB`);
  const m = await (await fetch(srv.url + '/metrics')).text();
  check(/moe_slots_busy 0/.test(m) && /moe_queue_depth 0/.test(m), 'slots or queue not idle after the load');
  console.log(`load_test: OK (${total} concurrent streams + ${requests.length} solo, RSS ${rssRounds.map((x) => (x / 1024).toFixed(1)).join(' / ')} MiB)`);
} finally {
  const ex = await srv.stop();
  check(ex.code === 0, 'server exit ' + JSON.stringify(ex) + '\n' + srv.log().slice(-4000));
}
