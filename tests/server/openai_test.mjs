// The official `openai` npm client against `moe serve`: model list, chat and
// completions (non-streaming and streaming), usage, logprobs, stop strings, seeds,
// tokenize/detokenize, API keys; greedy /v1/completions equals `moe run`.
import OpenAI from 'openai';
import { makeModel, startServer, moeRun, check, eq, fail } from './lib.mjs';

const model = makeModel();
const srv = await startServer(model, ['-np', '4', '-c', '512']);
const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 30000 });
try {
  const models = await client.models.list();
  check(models.data.length === 1 && models.data[0].id === 'm.gguf', 'models.list: ' + JSON.stringify(models.data));

  // Greedy completions equal `moe run` on the same raw prompt.
  for (const [prompt, n] of [['The quick brown fox', 16], ['Mixture of experts', 24], ['Hello', 8]]) {
    const want = moeRun(model, prompt, n);
    const r = await client.completions.create({ model: 'm.gguf', prompt, max_tokens: n, temperature: 0 });
    let text = r.choices[0].text;
    const ref = r.choices[0].finish_reason === 'stop' ? want.replace(/<\|im_end\|>$/, '') : want;
    eq(text, ref, `completion of ${JSON.stringify(prompt)} differs from moe run`);
    check(r.object === 'text_completion' && r.usage.completion_tokens <= n && r.usage.prompt_tokens > 0, 'completion fields');
    // Streaming gives the same text.
    const stream = await client.completions.create({ model: 'm.gguf', prompt, max_tokens: n, temperature: 0, stream: true });
    text = '';
    let finish = null;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    eq(text, ref, 'streamed completion differs');
    eq(finish, r.choices[0].finish_reason, 'streamed finish_reason');
  }

  // Chat: non-streaming equals streaming; usage in the last chunk.
  const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name three colors.' }];
  const chat = await client.chat.completions.create({ model: 'm.gguf', messages, max_tokens: 20, temperature: 0 });
  const msg = chat.choices[0].message;
  check(chat.object === 'chat.completion' && msg.role === 'assistant' && typeof msg.content === 'string', 'chat fields');
  check(['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat finish_reason');
  check(chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, 'chat usage');
  const cs = await client.chat.completions.create({ model: 'm.gguf', messages, max_tokens: 20, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let text = '', role = null, usage = null, chunks = 0;
  for await (const c of cs) {
    chunks++;
    check(c.object === 'chat.completion.chunk', 'chunk object');
    if (c.usage) usage = c.usage;
    const d = c.choices[0]?.delta;
    if (d?.role) role = d.role;
    text += d?.content ?? '';
  }
  eq(text, msg.content, 'streamed chat differs from non-streamed');
  check(role === 'assistant' && chunks > 2, 'chat stream role / chunks');
  eq([usage.prompt_tokens, usage.completion_tokens, usage.total_tokens],
    [chat.usage.prompt_tokens, chat.usage.completion_tokens, chat.usage.total_tokens], 'stream usage');
  check(usage.prompt_tokens_details.cached_tokens === usage.prompt_tokens - 1, 'the repeated prompt reuses the KV cache');

  // The chat prompt is the ChatML rendering: the same text through /v1/completions matches.
  const rendered = '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n';
  const viaCompl = await client.completions.create({ model: 'm.gguf', prompt: rendered, max_tokens: 20, temperature: 0 });
  eq(viaCompl.choices[0].text, msg.content, 'chat vs completion of the rendered template');

  // Stop strings cut the text before the stop and finish with "stop".
  const long = (await client.completions.create({ model: 'm.gguf', prompt: 'Hello', max_tokens: 32, temperature: 0 })).choices[0].text;
  const cut = [...long].slice(6, 9).join('');
  if (cut.length >= 2 && !cut.includes('\uFFFD')) {
    const r = await client.completions.create({ model: 'm.gguf', prompt: 'Hello', max_tokens: 32, temperature: 0, stop: [cut] });
    eq(r.choices[0].text, long.slice(0, long.indexOf(cut)), 'stop string');
    eq(r.choices[0].finish_reason, 'stop', 'stop finish_reason');
  }

  // Logprobs: one entry per token, top_logprobs sorted, logprob <= 0.
  const lp = await client.chat.completions.create({ model: 'm.gguf', messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = lp.choices[0].logprobs.content;
  check(content.length === lp.usage.completion_tokens || content.length === lp.usage.completion_tokens - 1, 'logprobs count');
  for (const t of content) {
    check(t.logprob <= 0 && t.top_logprobs.length === 3 && Array.isArray(t.bytes), 'logprob entry');
    check(t.top_logprobs[0].logprob >= t.top_logprobs[2].logprob, 'top_logprobs order');
    check(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5, 'greedy token is the top one');
  }

  // Seeds: the same seed samples the same text.
  const s1 = await client.completions.create({ model: 'm.gguf', prompt: 'Once', max_tokens: 16, temperature: 1.0, seed: 42 });
  const s2 = await client.completions.create({ model: 'm.gguf', prompt: 'Once', max_tokens: 16, temperature: 1.0, seed: 42 });
  eq(s1.choices[0].text, s2.choices[0].text, 'same seed, same text');

  // max_tokens / max_completion_tokens bound the output.
  const m1 = await client.chat.completions.create({ model: 'm.gguf', messages, max_completion_tokens: 3, temperature: 0, ignore_eos: true });
  eq(m1.usage.completion_tokens, 3, 'max_completion_tokens');
  eq(m1.choices[0].finish_reason, 'length', 'length finish');

  // A bad request is a 400 BadRequestError with an OpenAI error body.
  try {
    await client.chat.completions.create({ model: 'm.gguf', messages: [], max_tokens: 3 });
    fail('empty messages accepted');
  } catch (e) {
    check(e.status === 400 && e.error?.param === 'messages', 'error object: ' + e);
  }
  try {
    await client.completions.create({ model: 'm.gguf', prompt: 'x', max_tokens: 100000 });
    fail('huge max_tokens accepted');
  } catch (e) {
    check(e.status === 400, 'max_tokens limit: ' + e);
  }

  // tokenize / detokenize round trip.
  const tk = await (await fetch(srv.url + '/tokenize', { method: 'POST', body: JSON.stringify({ content: 'Hello world' }) })).json();
  check(Array.isArray(tk.tokens) && tk.tokens.length > 0, 'tokenize');
  const dt = await (await fetch(srv.url + '/detokenize', { method: 'POST', body: JSON.stringify({ tokens: tk.tokens }) })).json();
  eq(dt.content, 'Hello world', 'detokenize');
  const metrics = await (await fetch(srv.url + '/metrics')).text();
  check(/moe_generated_tokens_total \d+/.test(metrics) && /moe_expert_tokens_total\{layer="1",expert="7"\}/.test(metrics), 'metrics');
} finally {
  const ex = await srv.stop();
  check(ex.code === 0, 'server exit code ' + JSON.stringify(ex) + '\n' + srv.log().slice(-4000));
}

// API key: 401 without or with a wrong key; /health stays open.
const sec = await startServer(model, ['--api-key', 'sekret']);
try {
  const bad = new OpenAI({ baseURL: sec.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
  try {
    await bad.models.list();
    fail('wrong key accepted');
  } catch (e) {
    check(e.status === 401 && e.code === 'invalid_api_key', 'wrong key: ' + e);
  }
  check((await fetch(sec.url + '/health')).status === 200, '/health needs no key');
  check((await fetch(sec.url + '/metrics')).status === 401, '/metrics needs the key');
  const good = new OpenAI({ baseURL: sec.url + '/v1', apiKey: 'sekret', maxRetries: 0 });
  const r = await good.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
  check(r.choices.length === 1, 'keyed request');
} finally {
  check((await sec.stop()).code === 0, 'server exit code');
}

// --kv-type f16: greedy completions equal `moe run --kv-type f16` (two slots, so the
// requests share steps).
const half = await startServer(model, ['-np', '2', '-c', '256', '--kv-type', 'f16']);
try {
  check(/KV cache f16 for 2 slots x 256 tokens/.test(half.log()), 'the server did not report an f16 KV cache');
  const hc = new OpenAI({ baseURL: half.url + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 30000 });
  const cases = [['The quick brown fox', 16], ['Mixture of experts', 24]];
  const got = await Promise.all(cases.map(([prompt, n]) =>
    hc.completions.create({ model: 'm.gguf', prompt, max_tokens: n, temperature: 0 })));
  cases.forEach(([prompt, n], i) => {
    const want = moeRun(model, prompt, n, ['--kv-type', 'f16']);
    const ref = got[i].choices[0].finish_reason === 'stop' ? want.replace(/<\|im_end\|>$/, '') : want;
    eq(got[i].choices[0].text, ref, `f16-cache completion of ${JSON.stringify(prompt)} differs from moe run --kv-type f16`);
  });
} finally {
  check((await half.stop()).code === 0, 'server exit code (f16 cache)');
}
console.log('openai_test: OK');
