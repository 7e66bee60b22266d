// Independent reference for the Kimi K2 pre-tokenizer split (GGUF
// tokenizer.ggml.pre = "kimi-k2"): the published tiktoken pat_str of Kimi K2's
// tokenization_kimi.py, run by V8's own regex engine (the `v` flag has class
// intersection, so `&&[^\p{Han}]` is kept as written). Only the notation is
// translated to JS, with the semantics of tiktoken's Rust regex crate:
//   \p{Han} -> \p{Script=Han} (Rust reads a bare script name as Script, not Script_Extensions)
//   \s / \S -> \p{White_Space} / \P{White_Space} (Rust's \s; JS \s also has U+FEFF)
//   [A&&[^B]] -> [[A]&&[^B]] (v-mode syntax for an intersection)
//   (?i:'s|'t|...) -> '(?:[sSſ]|[tT]|...) (Node 20 has no (?i:) groups; Rust's
//                      simple case folding adds ſ to s and nothing else here)
// Writes OUT_FILE: {"strings": [...], "pieces": [[...], ...]} where the pieces
// are the matches and the text between them, in order (Split/Isolated).
// Usage: node kimi_oracle.mjs OUT_FILE
import fs from "node:fs";
import { makeCorpus } from "./corpus.mjs";

const out = process.argv[2];
if (!out) { console.error("usage: node kimi_oracle.mjs OUT_FILE"); process.exit(2); }

const ws = String.raw`\p{White_Space}`, nws = String.raw`\P{White_Space}`;
const han = String.raw`\p{Script=Han}`;
const contraction = String.raw`(?:'(?:[sSſ]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))?`;
const upper = String.raw`[[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]&&[^${han}]]`;
const lower = String.raw`[[\p{Ll}\p{Lm}\p{Lo}\p{M}]&&[^${han}]]`;
const lead = String.raw`[^\r\n\p{L}\p{N}]?`;
const pattern = [
  String.raw`[${han}]+`,
  `${lead}${upper}*${lower}+${contraction}`,
  `${lead}${upper}+${lower}*${contraction}`,
  String.raw`\p{N}{1,3}`,
  String.raw` ?[^${ws}\p{L}\p{N}]+[\r\n]*`,
  String.raw`${ws}*[\r\n]+`,
  String.raw`${ws}+(?!${nws})`,
  String.raw`${ws}+`,
].join("|");
const re = new RegExp(pattern, "gv");

function split(s) {
  const pieces = [];
  let prev = 0;
  for (const m of s.matchAll(re)) {
    if (m.index > prev) pieces.push(s.slice(prev, m.index));
    pieces.push(m[0]);
    prev = m.index + m[0].length;
  }
  if (prev < s.length) pieces.push(s.slice(prev));
  return pieces;
}

const extra = [
  "你好。世界", "日本語のテキスト、漢字とカタカナ", "漢字abc", "abc漢字", "混合Mixed文本Text123456",
  "「引用」と『二重』", "中文，标点！", "I'm HAPPY's", "'ſ 'S 'T", "〇々〆ー", "한국어 텍스트와 漢字",
  "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "数字1234567和字母", "𠀀𠀁 CJK Ext B",
];
const strings = [...makeCorpus(), ...extra];
fs.writeFileSync(out, JSON.stringify({ strings, pieces: strings.map(split) }));
console.log(`kimi-k2: ${strings.length} strings`);
