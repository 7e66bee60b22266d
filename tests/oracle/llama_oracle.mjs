// Reference next-token distributions from llama.cpp, through the npm package
// @fugood/llama.node (a prebuilt llama.cpp; see README.md for the version).
//
// Usage: node llama_oracle.mjs MODEL.gguf PROMPTS.json OUT.json [--prefixes K] [--threads N]
//   PROMPTS.json: array of strings (or of {"text": ...}).
//   --prefixes K: reference at most K prefix lengths per prompt (evenly spread, always
//                 including the full prompt); default: every prefix that round-trips.
//
// OUT.json:
//   { llama_cpp: {build, commit, package}, model, n_vocab, add_bos,
//     tok_str: [n_vocab strings, as llama.node prints them],
//     groups: [[id, ...], ...]          ids whose tok_str is shared (cannot be told apart)
//     prompts: [{ text, ids, positions: [{ n: L, text, probs: [n_vocab | null],
//                                          group_probs: [[p sorted desc] per group] }] }] }
//   probs[i] is P(next token = i | ids[0..L)) from llama.cpp, null where i is in a group.
//
// How the numbers are obtained (what was found in llama.node 1.7.15):
// - completion() takes text only. The prompt ids are read back from llama.cpp's
//   tokenize(); each prefix is detokenize(ids[0..L)) and is used only if it tokenizes
//   back to exactly ids[0..L). The ids llama.cpp actually evaluated are also checked
//   against its native log line "prompt_tokens = ..." (tokens_evaluated is not: a
//   one-token prompt reports 2).
// - completion({n_predict: 1, temperature: 1, top_k: 0, top_p: 1, min_p: 0, n_probs})
//   returns completion_probabilities[0].probs: the sampler's candidates after softmax,
//   sorted by probability, as {tok_str, prob}; no token id. With n_probs = n_vocab
//   every token is returned and the probabilities sum to 1.
// - tok_str is rnllama::tokens_to_output_formatted_string(): the token's piece
//   (special tokens rendered), or "byte: \xNN" (lowercase hex) when the piece is one
//   byte >= 0x80; V8 replaces invalid UTF-8 by U+FFFD. The id -> tok_str table is built
//   here from detokenize([id]) plus the GGUF vocabulary (for the one-byte pieces).
//   Several ids can share a tok_str (e.g. <|unused_N|> tokens, type UNUSED, all print
//   as ""); they are reported as a group, with the sorted probabilities of the group.
//   Every returned tok_str multiset is checked against the table.
// - Two quirks of llama.node 1.7.15 are worked around: when the sampled token is a
//   digit the result holds one candidate with p = 1 (sample again with another seed:
//   the distribution does not depend on the seed), and the wrapper's per-token callback
//   can run after completion() resolved and after release() (SIGSEGV): the native
//   completion is called without a callback.
// - A context is loaded fresh for every prefix: a reused context (even after
//   clearCache) can return the previous prompt's distribution.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = path.dirname(fileURLToPath(import.meta.url));

export function resolveLlamaNode() {
  const roots = [process.env.MOE_NODE_MODULES_ROOT, path.resolve(here, "../.."), process.cwd()].filter(Boolean);
  for (const r of roots) {
    try {
      const req = createRequire(path.join(r, "package.json"));
      const main = req.resolve("@fugood/llama.node");
      return { req, main };
    } catch { /* next */ }
  }
  return null;
}

// ---------------------------------------------------------------- GGUF metadata
export function readGGUFMeta(file, withTensors = false) {
  const fd = fs.openSync(file, "r");
  const size = Math.min(fs.fstatSync(fd).size, 256 << 20);
  const buf = Buffer.alloc(size);
  fs.readSync(fd, buf, 0, size, 0);
  fs.closeSync(fd);
  let o = 0;
  const u32 = () => { const v = buf.readUInt32LE(o); o += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(o)); o += 8; return v; };
  const str = () => { const n = u64(); const s = buf.subarray(o, o + n); o += n; return s; };
  const val = (t) => {
    switch (t) {
      case 0: return buf.readUInt8(o++);
      case 1: return buf.readInt8(o++);
      case 2: o += 2; return buf.readUInt16LE(o - 2);
      case 3: o += 2; return buf.readInt16LE(o - 2);
      case 4: return u32();
      case 5: o += 4; return buf.readInt32LE(o - 4);
      case 6: o += 4; return buf.readFloatLE(o - 4);
      case 7: return buf.readUInt8(o++) !== 0;
      case 8: return str().toString("utf8");
      case 9: {
        const et = u32(), n = u64(), a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = et === 8 ? str() : val(et); // strings stay Buffers
        return a;
      }
      case 10: return u64();
      case 11: o += 8; return Number(buf.readBigInt64LE(o - 8));
      case 12: o += 8; return buf.readDoubleLE(o - 8);
      default: throw new Error(`gguf: bad value type ${t}`);
    }
  };
  if (buf.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${file}: not a GGUF file`);
  o = 4; u32();
  const ntensors = u64(), nkv = u64(), kv = {};
  for (let i = 0; i < nkv; i++) { const k = str().toString("utf8"); kv[k] = val(u32()); }
  if (withTensors) {
    const tensors = [];
    for (let i = 0; i < ntensors; i++) {
      const name = str().toString("utf8"), nd = u32(), dims = [];
      for (let d = 0; d < nd; d++) dims.push(u64());
      const t = u32();
      u64(); // offset
      tensors.push({ name, dims, type: GGML_TYPES[t] ?? `type${t}` });
    }
    kv.__tensors = tensors;
  }
  return kv;
}

// Tensor names, types and shapes of a GGUF file.
const GGML_TYPES = { 0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 9: "q8_1",
  10: "q2_K", 11: "q3_K", 12: "q4_K", 13: "q5_K", 14: "q6_K", 15: "q8_K", 30: "bf16", 39: "mxfp4" };
export function readGGUFTensorTypes(file) {
  const kv = readGGUFMeta(file, true);
  return kv.__tensors;
}

// GPT-2 byte-level BPE: token text -> bytes.
function gpt2ByteDecoder() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const dec = new Map();
  bs.forEach((b, i) => dec.set(cs[i], b));
  return (text) => {
    const out = [];
    for (const ch of text) {
      const b = dec.get(ch.codePointAt(0));
      if (b === undefined) return null;
      out.push(b);
    }
    return Buffer.from(out);
  };
}

// ---------------------------------------------------------------- oracle
export async function runOracle(modelPath, prompts, { maxPrefixes = 0, threads = 2, log = () => {} } = {}) {
  const found = resolveLlamaNode();
  if (!found) throw new Error("@fugood/llama.node not found");
  const { req } = found;
  const lib = req("@fugood/llama.node");
  const pkg = req("@fugood/llama.node/package.json");

  const kv = readGGUFMeta(modelPath);
  const vocabText = kv["tokenizer.ggml.tokens"];
  const vocabType = kv["tokenizer.ggml.token_type"] || [];
  if (!vocabText) throw new Error(`${modelPath}: no embedded tokenizer`);
  const nVocab = vocabText.length;
  const addBos = kv["tokenizer.ggml.add_bos_token"] === true;
  const bosId = kv["tokenizer.ggml.bos_token_id"];
  const isGpt2 = kv["tokenizer.ggml.model"] === "gpt2";
  const byteDecode = gpt2ByteDecoder();

  const ctxOpts = {
    model: modelPath, n_ctx: 512, n_batch: 512, n_ubatch: 512, n_parallel: 1, n_threads: threads,
    cache_type_k: "f32", cache_type_v: "f32", flash_attn_type: "off", n_gpu_layers: 0, use_mmap: true,
  };
  const load = () => lib.loadModel(ctxOpts);

  // id -> tok_str, as tokens_to_output_formatted_string prints it.
  const ctx0 = await load();
  const tokStr = new Array(nVocab);
  for (let id = 0; id < nVocab; id++) {
    let s = await ctx0.detokenize([id]);
    if (isGpt2 && (vocabType[id] ?? 1) === 1) {
      const bytes = byteDecode(vocabText[id].toString("utf8"));
      if (bytes && bytes.length === 1 && bytes[0] >= 0x80) s = `byte: \\x${bytes[0].toString(16)}`;
    }
    tokStr[id] = s;
  }
  const byStr = new Map();
  tokStr.forEach((s, id) => { if (!byStr.has(s)) byStr.set(s, []); byStr.get(s).push(id); });
  const groups = [...byStr.values()].filter((ids) => ids.length > 1);
  const groupOf = new Map();
  groups.forEach((ids, g) => ids.forEach((id) => groupOf.set(id, g)));

  const tokenize = async (ctx, text) => Array.from((await ctx.tokenize(text)).tokens);
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  const out = {
    llama_cpp: { build: lib.BuildInfo?.number, commit: lib.BuildInfo?.commit, package: `${pkg.name}@${pkg.version}` },
    model: path.resolve(modelPath), n_vocab: nVocab, add_bos: addBos, tok_str: tokStr, groups, prompts: [],
  };

  let retries = 0;
  for (const p of prompts) {
    const text = typeof p === "string" ? p : p.text;
    const ids = await tokenize(ctx0, text);
    if (ids.length === 0) throw new Error(`empty tokenization for ${JSON.stringify(text)}`);
    if (!addBos && ids[0] === bosId && !text.startsWith(tokStr[bosId]))
      throw new Error(`llama.cpp added BOS although add_bos_token is false`);
    // Prefix lengths whose text round-trips to exactly ids[0..L).
    const candidates = [];
    for (let L = 1; L <= ids.length; L++) {
      const t = L === ids.length ? text : await ctx0.detokenize(ids.slice(0, L));
      if (same(await tokenize(ctx0, t), ids.slice(0, L))) candidates.push({ L, t });
    }
    if (!candidates.length || candidates[candidates.length - 1].L !== ids.length)
      throw new Error(`prompt does not round-trip: ${JSON.stringify(text)}`);
    let chosen = candidates;
    if (maxPrefixes > 0 && candidates.length > maxPrefixes) {
      const pick = new Set();
      for (let k = 0; k < maxPrefixes; k++)
        pick.add(Math.round(((k + 1) * (candidates.length - 1)) / maxPrefixes));
      chosen = candidates.filter((_, i) => pick.has(i));
    }
    const rec = { text, ids, skipped_prefixes: ids.length - candidates.length, positions: [] };
    for (const { L, t } of chosen) {
      let list = null;
      for (let seed = 1; seed <= 8 && !list; seed++) {
        const ctx = await load(); // fresh context per prefix
        // Called on the native context with no callback: the wrapper always passes one,
        // and that per-token callback is delivered after completion() resolved and reads
        // the context; releasing first crashes (token_to_piece on a freed vocab). And it
        // is not delivered at all for some tokens, so it cannot be waited for either.
        const r = await ctx.ctx.completion({
          prompt: t, n_predict: 1, temperature: 1, top_k: 0, top_p: 1, min_p: 0, typ_p: 1,
          penalty_repeat: 1, penalty_freq: 0, penalty_present: 0, dry_multiplier: 0, xtc_probability: 0,
          n_probs: nVocab, seed, ignore_eos: true,
        });
        await ctx.release();
        // When the sampled token is a digit, llama.node returns a single candidate
        // with p = 1 instead of the distribution: sample again with another seed.
        const got = r.completion_probabilities?.[0]?.probs;
        if (got && got.length === nVocab) list = got;
        else retries++;
      }
      if (!list) throw new Error(`no full distribution after 8 seeds for ${JSON.stringify(t)}`);
      const probs = new Array(nVocab).fill(null);
      const gp = groups.map(() => []);
      const seen = new Map();
      let sum = 0;
      for (const { tok_str, prob } of list) {
        const idsFor = byStr.get(tok_str);
        if (!idsFor) throw new Error(`unknown tok_str ${JSON.stringify(tok_str)}`);
        const k = (seen.get(tok_str) || 0) + 1;
        seen.set(tok_str, k);
        if (k > idsFor.length) throw new Error(`tok_str ${JSON.stringify(tok_str)} returned ${k} times`);
        sum += prob;
        if (idsFor.length === 1) probs[idsFor[0]] = prob;
        else gp[groupOf.get(idsFor[0])].push(prob);
      }
      if (Math.abs(sum - 1) > 1e-4) throw new Error(`probabilities sum to ${sum}`);
      gp.forEach((g) => g.sort((a, b) => b - a));
      rec.positions.push({ n: L, text: t, probs, group_probs: gp });
      log(`  L=${L} ok`);
    }
    out.prompts.push(rec);
  }
  await ctx0.release();
  out.resampled = retries;
  return out;
}

// ---------------------------------------------------------------- CLI
// The CLI runs the oracle in a child process and reads the child's stdout, where
// llama.cpp (rn-llama) prints "loadPrompt: prompt_tokens = ID ID ..." for every
// completion: the ids it really decoded must be, in order, the prefixes recorded.
// (These lines come from native printf, so they cannot be captured in-process.)
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, def) => {
    const i = args.indexOf(name);
    if (i < 0) return def;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const maxPrefixes = Number(opt("--prefixes", 0));
  const threads = Number(opt("--threads", 2));
  if (args.length !== 3) {
    console.error("usage: node llama_oracle.mjs MODEL.gguf PROMPTS.json OUT.json [--prefixes K] [--threads N]");
    process.exit(2);
  }
  const [model, promptsFile, outFile] = args;
  if (process.env.LLAMA_ORACLE_CHILD === "1") {
    const prompts = JSON.parse(fs.readFileSync(promptsFile, "utf8"));
    const res = await runOracle(model, prompts, { maxPrefixes, threads });
    fs.writeFileSync(outFile, JSON.stringify(res));
    process.exit(0);
  }
  const { spawnSync } = await import("node:child_process");
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    env: { ...process.env, LLAMA_ORACLE_CHILD: "1" }, encoding: "utf8", maxBuffer: 1 << 30,
  });
  const fail = (msg, code = 1) => {
    console.error(`llama_oracle: ${msg}`);
    const tail = (s) => (s || "").split("\n").slice(-30).join("\n");
    console.error(`--- child stdout (tail)\n${tail(child.stdout)}\n--- child stderr (tail)\n${tail(child.stderr)}`);
    process.exit(code);
  };
  // Exit 3: the native library crashed (a signal), which oracle_compare.mjs retries;
  // any other failure is final.
  if (child.signal) fail(`oracle process crashed (signal ${child.signal})`, 3);
  if (child.status !== 0) fail(`oracle process failed (status ${child.status})`);
  const res = JSON.parse(fs.readFileSync(outFile, "utf8"));
  const decoded = [...child.stdout.matchAll(/prompt_tokens = ([\d ]*)/g)].map((m) => m[1].trim().split(/\s+/).filter(Boolean).map(Number));
  const expected = res.prompts.flatMap((p) => p.positions.map((q) => p.ids.slice(0, q.n)));
  if (decoded.length !== expected.length) fail(`saw ${decoded.length} "prompt_tokens" lines for ${expected.length} completions`);
  expected.forEach((e, k) => {
    const d = decoded[k];
    if (d.length !== e.length || d.some((x, i) => x !== e[i])) fail(`completion ${k} decoded [${d}], expected [${e}]`);
  });
  res.decoded_ids_checked = expected.length;
  fs.writeFileSync(outFile, JSON.stringify(res));
  const n = expected.length;
  console.log(`llama_oracle: ${res.llama_cpp.package} (llama.cpp b${res.llama_cpp.build} ${res.llama_cpp.commit}): ` +
    `${res.prompts.length} prompts, ${n} positions (decoded ids checked), ${res.groups.length} ambiguous tok_str groups -> ${outFile}`);
}
