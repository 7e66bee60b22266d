// Bad-input battery: truncated and non-UTF-8 JSON, wrong types, huge and negative
// numbers, oversized bodies, lying Content-Length, partial requests that never
// finish, garbage, a client that disconnects mid-stream, and a flood of
// connections. The server answers each with an OpenAI error object (or drops the
// connection) and keeps serving the rest.
import { makeModel, startServer, rawHttp, check, eq, fail } from './lib.mjs';
import net from 'node:net';

const model = makeModel();
const srv = await startServer(model, ['-np', '2', '-c', '256', '--timeout', '2', '--max-body', '65536', '--max-tokens', '200']);

function post(path, body, extraHeaders = '') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\nConnection: close\r\n${extraHeaders}\r\n`), b]);
}
function status(resp) {
  const m = resp.match(/^HTTP\/1\.1 (\d{3})/);
  return m ? Number(m[1]) : 0;
}
function errorBody(resp) {
  const i = resp.indexOf('\r\n\r\n');
  const j = JSON.parse(resp.slice(i + 4));
  check(j.error && typeof j.error.message === 'string' && 'type' in j.error && 'param' in j.error && 'code' in j.error,
    'not an OpenAI error object: ' + resp.slice(i + 4));
  return j.error;
}
async function expect400(path, body, param) {
  const r = await rawHttp(srv.port, post(path, body));
  check(status(r) === 400, `${path} ${String(body).slice(0, 80)}: status ${status(r)}\n${r.slice(0, 300)}`);
  const e = errorBody(r);
  if (param !== undefined) eq(e.param, param, `param of ${String(body).slice(0, 80)}`);
  return e;
}
async function healthy() {
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'still there?' }], max_tokens: 4 }) });
  check(r.status === 200, 'server stopped serving: ' + r.status);
  await r.json();
}

const chat = '/v1/chat/completions', compl = '/v1/completions';
const msg = '[{"role":"user","content":"hi"}]';
try {
  // Malformed JSON.
  await expect400(chat, '{"messages":[{"role":"user","content":"hi"');
  await expect400(chat, '');
  await expect400(chat, Buffer.from([0x7b, 0x22, 0x6d, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]));  // {"m\xff\xfe":1}
  await expect400(chat, Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xa0]), Buffer.from('"}]}')]));
  await expect400(chat, '[1,2,3]');
  await expect400(chat, 'null');
  await expect400(chat, '{"messages":' + msg + ',}');
  // Wrong types.
  await expect400(chat, '{"messages":"hi"}', 'messages');
  await expect400(chat, '{"messages":[]}', 'messages');
  await expect400(chat, '{"messages":[5]}', 'messages[0]');
  await expect400(chat, '{"messages":[{"role":7,"content":"x"}]}', 'messages[0].role');
  await expect400(chat, '{"messages":[{"role":"wizard","content":"x"}]}', 'messages[0].role');
  await expect400(chat, '{"messages":[{"role":"user","content":5}]}', 'messages[0].content');
  await expect400(chat, '{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}', 'messages[0].content');
  await expect400(chat, `{"messages":${msg},"max_tokens":"10"}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"temperature":"hot"}`, 'temperature');
  await expect400(chat, `{"messages":${msg},"stream":1}`, 'stream');
  await expect400(chat, `{"messages":${msg},"stop":5}`, 'stop');
  await expect400(chat, `{"messages":${msg},"stop":["a",3]}`, 'stop');
  await expect400(chat, `{"messages":${msg},"stream_options":true}`, 'stream_options');
  await expect400(chat, `{"messages":${msg},"logprobs":"yes"}`, 'logprobs');
  await expect400(chat, `{"messages":${msg},"model":42}`, 'model');
  await expect400(compl, '{"prompt":{}}', 'prompt');
  await expect400(compl, '{"prompt":[-1]}', 'prompt');
  await expect400(compl, '{"prompt":[1e9]}', 'prompt');
  await expect400(compl, '{"prompt":[1.5]}', 'prompt');
  await expect400(compl, '{}', 'prompt');
  // Huge, negative and out-of-range numbers.
  await expect400(chat, `{"messages":${msg},"max_tokens":1e300}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":99999999999999999999999}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":18446744073709551615}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":-1}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":0}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":201}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"max_tokens":2.5}`, 'max_tokens');
  await expect400(chat, `{"messages":${msg},"temperature":-1}`, 'temperature');
  await expect400(chat, `{"messages":${msg},"temperature":1e308}`, 'temperature');
  await expect400(chat, `{"messages":${msg},"top_p":0}`, 'top_p');
  await expect400(chat, `{"messages":${msg},"top_logprobs":1000,"logprobs":true}`, 'top_logprobs');
  await expect400(chat, `{"messages":${msg},"seed":1e30}`, 'seed');
  await expect400(chat, `{"messages":${msg},"n":2}`, 'n');
  await expect400(chat, `{"messages":${msg},"stop":${JSON.stringify(Array(17).fill('x'))}}`, 'stop');
  await expect400('/detokenize', '{"tokens":[1,-5]}', 'tokens');
  await expect400('/tokenize', '{"content":7}', 'content');
  // Context overflow: a prompt longer than the 256-token context.
  const e = await expect400(chat, JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(600) }] }));
  eq(e.code, 'context_length_exceeded', 'context overflow code');
  const e2 = await expect400(compl, JSON.stringify({ prompt: 'word '.repeat(100), max_tokens: 200 }), 'max_tokens');
  eq(e2.code, 'context_length_exceeded', 'prompt + max_tokens overflow code');
  await healthy();

  // Oversized body: 413 with an error object (or a dropped connection).
  const big = await rawHttp(srv.port, post(chat, '{"messages":[{"role":"user","content":"' + 'x'.repeat(100000) + '"}]}'));
  check(big === '' || status(big) === 413, 'oversized body: ' + big.slice(0, 200));
  if (big) errorBody(big);
  // Unknown route and method.
  const nf = await rawHttp(srv.port, 'GET /v2/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  check(status(nf) === 404, 'unknown route: ' + nf.slice(0, 100));
  eq(errorBody(nf).code, 'not_found', '404 code');
  const wm = await rawHttp(srv.port, 'GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  check(status(wm) >= 400 && status(wm) < 500, 'wrong method: ' + wm.slice(0, 100));
  // Garbage and oversized headers.
  const g = await rawHttp(srv.port, Buffer.from([0, 1, 2, 255, 13, 10, 13, 10]));
  check(g === '' || status(g) === 400, 'garbage: ' + g.slice(0, 100));
  const hh = await rawHttp(srv.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`);
  check(hh === '' || status(hh) >= 400, 'huge header: ' + hh.slice(0, 100));
  await healthy();

  // Partial requests that never finish are dropped after the read timeout (2 s).
  const t0 = Date.now();
  const partial = await Promise.all([
    rawHttp(srv.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"messages":', { timeoutMs: 15000 }),
    rawHttp(srv.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 15000 }),
    rawHttp(srv.port, 'GE', { timeoutMs: 15000 }),
  ]);
  const waited = (Date.now() - t0) / 1000;
  check(waited < 12, `partial requests were held ${waited} s`);
  for (const p of partial) check(p === '' || status(p) >= 400, 'partial request answered: ' + p.slice(0, 80));

  // A client that disconnects mid-stream cancels its generation.
  await new Promise((resolve) => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'go on' }], max_tokens: 200, ignore_eos: true, stream: true });
    const s = net.connect(srv.port, '127.0.0.1', () => s.write(post(chat, body)));
    s.once('data', () => { s.destroy(); resolve(); });
    s.on('error', resolve);
  });
  let cancelled = false;
  for (let i = 0; i < 50 && !cancelled; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const m = await (await fetch(srv.url + '/metrics')).text();
    cancelled = /moe_client_disconnects_total [1-9]/.test(m) && /moe_slots_busy 0/.test(m);
  }
  check(cancelled, 'a disconnected stream was not cancelled');

  // A flood of connections: idle ones, half-sent ones and real requests at once.
  const flood = [];
  for (let i = 0; i < 150; i++) {
    const data = i % 3 === 0 ? '' : i % 3 === 1 ? 'POST /v1/completions HTTP/1.1\r\nContent-Length: 50\r\n\r\n{' :
      'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    flood.push(rawHttp(srv.port, data, { timeoutMs: 20000 }));
  }
  await healthy();
  const fr = await Promise.all(flood);
  const ok = fr.filter((r) => status(r) === 200).length;
  check(ok === 50, `flood: ${ok} of 50 health requests answered`);
  await healthy();
  const h = await (await fetch(srv.url + '/health')).json();
  eq(h.status, 'ok', 'health after the battery');
  console.log('bad_input_test: OK');
} finally {
  const ex = await srv.stop();
  check(ex.code === 0, 'server exit ' + JSON.stringify(ex) + '\n' + srv.log().slice(-4000));
}
