// Helpers of the server tests: synthesize a model with `moe synth`, start
// `moe serve` on a free loopback port (parsed from its log line), run `moe run`,
// raw HTTP over sockets, and small assertions. Env: MOE_BIN, MOE_TEST_TMP.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';

export const MOE = process.env.MOE_BIN || 'moe';
export const TMP = process.env.MOE_TEST_TMP || fs.mkdtempSync('/tmp/moe-server-test-');
fs.mkdirSync(TMP, { recursive: true });

export function fail(msg) {
  console.error('FAIL: ' + msg);
  process.exit(1);
}
export function check(cond, msg) {
  if (!cond) fail(msg);
}
export function eq(a, b, msg) {
  if (JSON.stringify(a) !== JSON.stringify(b)) fail(`${msg}\n  got:      ${JSON.stringify(a)}\n  expected: ${JSON.stringify(b)}`);
}

// The synthetic MoE model of the issue (qwen3moe, 8 experts top-2, ChatML template).
export function makeModel(name = 'm.gguf', extra = []) {
  const out = path.join(TMP, name);
  if (!fs.existsSync(out)) {
    const type = process.env.MOE_TEST_TYPE || 'q8_0';
    execFileSync(MOE, ['synth', '-o', out + '.tmp', '--arch', 'qwen3moe', '--layers', '2', '--embd', '128', '--heads', '4',
      '--kv-heads', '2', '--head-dim', '32', '--experts', '8', '--top-k', '2', '--expert-ff', '64', '--vocab', '512',
      '--type', type, '--std', '0', ...extra], { stdio: 'ignore' });
    fs.renameSync(out + '.tmp', out);
  }
  return out;
}

// Starts `moe serve -m model --port 0 ...args`; resolves when it listens.
export function startServer(model, args = [], { quiet = true } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(MOE, ['serve', '-m', model, '--port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('server did not start:\n' + log)); }, 30000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      if (!quiet) process.stderr.write(d);
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && !proc.port) {
        clearTimeout(timer);
        proc.port = Number(m[1]);
        const exited = new Promise((r) => proc.on('exit', (code, sig) => r({ code, sig })));
        // Ready once /health answers (a key-protected server answers it too).
        const ready = async () => {
          for (let i = 0; i < 100; i++) {
            try { if ((await fetch(`http://127.0.0.1:${proc.port}/health`)).ok) return; } catch {}
            await new Promise((r) => setTimeout(r, 50));
          }
        };
        ready().then(() => resolve({
          proc, port: proc.port, url: `http://127.0.0.1:${proc.port}`, exited, log: () => log,
          async stop(sig = 'SIGTERM') { proc.kill(sig); return exited; },
        }));
      }
    });
    proc.on('exit', (code) => { if (!proc.port) { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${log}`)); } });
  });
}

// `moe run` greedy on a raw prompt: the generated text (prompt echo and newline removed),
// decoded as a browser would (invalid UTF-8 -> U+FFFD), as the server does.
export function moeRun(model, prompt, n, extra = []) {
  const out = execFileSync(MOE, ['run', '-m', model, '-p', prompt, '-n', String(n), '--temp', '0', ...extra],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  let s = new TextDecoder('utf-8').decode(out);
  check(s.startsWith(prompt) && s.endsWith('\n'), 'unexpected moe run output: ' + JSON.stringify(s));
  return s.slice(prompt.length, -1);
}

// One raw HTTP exchange over a socket: sends `data` (Buffer|string), resolves with
// everything the server wrote before closing or `timeoutMs` passing. The socket is
// not half-closed: cpp-httplib 0.11 drops requests whose client shut down writing.
export function rawHttp(port, data, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let closed = false;
    const done = () => { if (!closed) { closed = true; sock.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); } };
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => chunks.push(d));
    sock.on('close', done);
    sock.on('error', done);
    setTimeout(done, timeoutMs);
  });
}

export function rss(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(s.match(/VmRSS:\s+(\d+)/)[1]);  // kB
}

// Parses an SSE body into its data payloads; checks the framing.
export function parseSse(body) {
  check(body.endsWith('\n\n'), 'SSE body does not end with a blank line');
  const events = body.split('\n\n').slice(0, -1);
  const data = [];
  for (const ev of events) {
    if (ev.startsWith(':')) continue;  // comment (keep-alive)
    check(ev.startsWith('data: ') && !ev.includes('\n'), 'malformed SSE event: ' + JSON.stringify(ev));
    data.push(ev.slice(6));
  }
  check(data.length > 0 && data[data.length - 1] === '[DONE]', 'SSE stream does not end with data: [DONE]');
  return data.slice(0, -1).map((d) => JSON.parse(d));
}
