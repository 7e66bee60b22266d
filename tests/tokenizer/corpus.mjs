// Deterministic test corpus for the tokenizer oracle (tests/tokenizer/oracle.mjs).
// Every string is valid UTF-8 (JS strings cannot hold invalid bytes; invalid
// UTF-8 is tested on the C++ side only, for no-crash and byte round-trip).
// U+FEFF and U+0085 are left out: JS `\s` matches U+FEFF but not U+0085, the
// opposite of PCRE2/Oniguruma (what Hugging Face tokenizers uses), so the JS
// reference is known to disagree with the real tokenizers on them.

function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const prose = [
  "The quick brown fox jumps over the lazy dog.",
  "It was the best of times, it was the worst of times, it was the age of wisdom.",
  "Mixture-of-Experts models route each token to a small subset of expert networks.",
  "She said, \"I'll be there at 5 o'clock,\" but she didn't come.",
  "We're sure they've seen it; you'd think he'll call, but I'm not.",
  "THEY'RE HERE! WE'LL SEE. IT'S FINE. I'VE GOT IT. YOU'D BETTER. I'M OK.",
  "Don't stop believin' — hold on to that feelin'.",
  "Hello world", "hello", " Hello", "HELLO", "Hello, World!", "hi there...",
  "In 1969, Apollo 11 landed on the Moon; 600 million people watched.",
  "Prices rose 3.75% to $1,234,567.89 in Q3 2024 (up from $999.99).",
  "e-mail: john.doe+test@example.com, url: https://example.org/a/b?c=d&e=f#g",
  "A sentence with    multiple   spaces and\ttabs\tinside.",
  "Line one\nLine two\n\nLine four\r\nWindows line\rOld Mac line",
  "Ünïcödé àccénts: café, naïve, résumé, coöperate, façade, Zürich, São Paulo.",
  "Ligatures ﬁ ﬂ and fullwidth ＡＢＣ１２３ and superscripts x² y³ ½ ¼.",
  "Greek: Αλφα βήτα γάμμα; Russian: Привет, как дела? Ukrainian: Ґанок.",
  "Hebrew: שלום עולם. Thai: สวัสดีครับ. Hindi: नमस्ते दुनिया। Tamil: வணக்கம்",
  "Vietnamese: Tiếng Việt có dấu. Turkish: İstanbul ığdır ŞÇĞ.",
  "The 'quoted' word and the ‘curly’ “double” quotes.",
  "ſtraße with long s and ẞ capital sharp s; Kelvin sign K.",
];
const code = [
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
  "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
  "#include <vector>\nint main() { std::vector<int> v{1,2,3}; return v.size(); }",
  "const x = await fetch(`/api/${id}`).then(r => r.json());",
  "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
  "<div class=\"container\"><p>Hello &amp; welcome</p></div>",
  "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
  "if x != nil && y == 0 || !z { panic(\"boom\") }",
  "    indented\n        more indented\n\t\ttabs\n",
  "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
  "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
  "$ ls -la /usr/local/bin | grep -E '^d' > out.txt 2>&1",
  "a+=1;b-=2;c*=3;d/=4;e%=5;f<<=6;g>>=7;h&&=i||j",
  "// comment\n/* block\n   comment */\n",
  "@decorator\nclass Foo(Bar):\n    '''Docstring.'''\n    pass",
];
const cjk = [
  "今天天气很好，我们去公园散步吧。", "人工智能正在改变世界。", "我爱北京天安门",
  "混合专家模型（MoE）只激活部分参数。", "繁體中文測試：電腦、網路、軟體。",
  "日本語のテキストです。ひらがなとカタカナ、漢字が混ざっています。",
  "東京は日本の首都です。ラーメンが好き！", "ｶﾀｶﾅ半角テスト",
  "한국어 텍스트입니다. 안녕하세요, 세계!", "대한민국의 수도는 서울입니다.",
  "中文English混合text测试123", "第１２３号　全角スペース",
];
const rtl = [
  "مرحبا بالعالم", "اللغة العربية جميلة جداً.", "السلام عليكم ورحمة الله ١٢٣٤٥",
  "فارسی: سلام دنیا", "עברית ועربית mixed with English",
];
const emoji = [
  "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸🇯🇵🇩🇪", "❤️", "🤖 robots 🚀 rockets",
  "👩🏾‍💻 codes", "🧑‍🤝‍🧑", "🙂🙃😉😊😇", "☕️ coffee", "1️⃣2️⃣3️⃣", "✨🎉✨",
  "🫠🫡🫶", "emoji at end 🐍", "a🙂b", "😀😀😀😀😀😀😀😀",
];
const spaces = [
  " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t \t", "    \n\n    ",
  "\u00a0", "\u3000", "\u2003", " \u00a0 ", "\n\n\n\n", "  \t\n  \t\n", "\u2028", "\u200b",
];
const numbers = [
  "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979",
  "1,000,000", "-273.15", "1e-9", "0x7fffffff", "2024-01-15", "12:34:56",
  "9999999999999999999999", "٣٤٥", "१२३", "Ⅻ", "①②③", "１２３", "v1.2.3",
];
const mojibake = [
  "Ã©tÃ©", "â€™s", "Ã¼ber", "æ—¥æœ¬èªž", "Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "ï»¿BOM-ish", "\ufffd\ufffd replacement",
  "Ã\u0083Â©", "e\u0301 combining", "A\u030a ring", "n\u0303o", "\u1100\u1161 jamo",
  "ｈｅｌｌｏ", "Z\u0351\u0325a\u0358\u0349l\u0360g\u0327o",
];
const contractions = [
  "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'RE", "'Ve", "'D",
  "it's", "IT'S", "we'll", "WE'LL", "they're", "They'Re", "I've", "I'M", "you'd",
  "don't", "ain't", "y'all'd've", "rock'n'roll", "'tis", "o'clock", "l'homme", "'ſ",
];

function specials() {
  return [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>",
    "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
    "<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<s>", "</s>", "<unk>",
    "<|im_start|>user\nhi<|im_end|>", "text<|endoftext|>more", "<|im_end", "<|", "|>", "<s >",
  ];
}

export function makeCorpus() {
  const rnd = mulberry32(20240601);
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const pools = [prose, code, cjk, rtl, emoji, spaces, numbers, mojibake, contractions, specials()];
  const out = [""];
  for (const p of pools) for (const s of p) out.push(s);
  const seps = ["", " ", "  ", "\n", "\t", " \n", "\r\n", "\n\n", ". ", ", "];
  while (out.length < 2200) {
    const k = 1 + Math.floor(rnd() * 6);
    let s = "";
    for (let i = 0; i < k; ++i) {
      const pool = pools[Math.floor(rnd() * pools.length)];
      let frag = pick(pool);
      const r = rnd();
      if (r < 0.1) frag = frag.toUpperCase();
      else if (r < 0.15) frag = frag.repeat(2 + Math.floor(rnd() * 3));
      else if (r < 0.2) frag = String(Math.floor(rnd() * 1e12));
      s += (i ? pick(seps) : "") + frag;
    }
    if (rnd() < 0.1) s = " " + s;
    if (rnd() < 0.1) s = s + pick(spaces);
    out.push(s);
  }
  // A long document (several KB) to exercise long words and many pre-tokens.
  out.push(prose.join(" ").repeat(5) + code.join("\n") + cjk.join(""));
  out.push("a".repeat(3000));
  out.push(" ".repeat(500) + "x");
  out.push("1234567890".repeat(50));
  return out;
}
