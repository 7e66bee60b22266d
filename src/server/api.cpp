// Request validation (every known field type- and range-checked; unknown fields
// ignored, as OpenAI clients send many) and response / stream-chunk JSON.
// Bodies are parsed with a nesting-depth limit, so that nothing downstream (the
// JSON -> template value conversion, dumps, destructors) recurses deeper than
// kMaxJsonDepth; template and tokenizer failures become 400s naming the field.
#include "server/api.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>

#include "base/error.h"
#include "server/text.h"
#include "tokenizer/chat_error.h"

namespace moe::server {

using json = nlohmann::json;

const char* const kChatMlTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg, const std::string& code = {}) {
  throw ApiError{400, msg, "invalid_request_error", param, code};
}

const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t get_int(const json& j, const char* name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = field(j, name);
  if (!v) return def;
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) bad(name, fmt::format("'{}' must be an integer", name));
    // The double -> int64 cast is defined on [-2^63, 2^63) only: range-check before it
    // (double(INT64_MAX) rounds up to 2^63, so `d > hi` alone would let 2^63 through).
    if (d < -0x1p63 || d >= 0x1p63) bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
    const int64_t x = static_cast<int64_t>(d);
    if (x < lo || x > hi) bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
    return x;
  }
  if (!v->is_number_integer()) bad(name, fmt::format("'{}' must be an integer", name));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(name, fmt::format("'{}' must be in [{}, {}]", name, lo, hi));
  return x;
}

double get_num(const json& j, const char* name, double lo, double hi, double def, bool lo_open = false) {
  const json* v = field(j, name);
  if (!v) return def;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number", name));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
    bad(name, fmt::format("'{}' must be in {}{}, {}]", name, lo_open ? "(" : "[", lo, hi));
  return x;
}

// A sampler parameter (float): the range is checked again after the narrowing, since
// a tiny positive double (4.9e-324) becomes 0.0f and an open bound must stay open.
float get_float(const json& j, const char* name, double lo, double hi, double def, bool lo_open = false) {
  const float f = static_cast<float>(get_num(j, name, lo, hi, def, lo_open));
  if (lo_open && f <= static_cast<float>(lo))
    bad(name, fmt::format("'{}' must be in ({}, {}] (and above {} as a float)", name, lo, hi, lo));
  return f;
}

bool get_bool(const json& j, const char* name, bool def) {
  const json* v = field(j, name);
  if (!v) return def;
  if (!v->is_boolean()) bad(name, fmt::format("'{}' must be a boolean", name));
  return v->get<bool>();
}

// logit_bias: {"token id": bias in [-100, 100]} (OpenAI); ids checked against the vocabulary.
void parse_logit_bias(const json& j, ParsedRequest& r, int64_t n_vocab) {
  const json* lb = field(j, "logit_bias");
  if (!lb) return;
  if (!lb->is_object()) bad("logit_bias", "'logit_bias' must be an object mapping token ids to numbers");
  if (lb->size() > kMaxLogitBias) bad("logit_bias", fmt::format("'logit_bias' may hold at most {} entries", kMaxLogitBias));
  for (auto it = lb->begin(); it != lb->end(); ++it) {
    const std::string& k = it.key();
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), id);
    if (ec != std::errc() || end != k.data() + k.size() || id < 0 || id >= n_vocab)
      bad("logit_bias", fmt::format("'logit_bias' keys must be token ids in [0, {}) (got '{}')", n_vocab,
                                    sanitize_utf8(k.substr(0, 32))));
    const json& v = it.value();
    if (!v.is_number() || !std::isfinite(v.get<double>()) || std::fabs(v.get<double>()) > kMaxLogitBiasValue)
      bad("logit_bias", fmt::format("'logit_bias' values must be numbers in [-{0}, {0}]", kMaxLogitBiasValue));
    r.gen.logit_bias.emplace_back(static_cast<int32_t>(id), static_cast<float>(v.get<double>()));
  }
}

// Options shared by both endpoints.
void parse_common(const json& j, ParsedRequest& r, const PromptContext& pc) {
  r.stream = get_bool(j, "stream", false);
  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  if (const json* m = field(j, "model"); m && !m->is_string()) bad("model", "'model' must be a string");
  get_int(j, "n", 1, 1, 1);
  if (const json* u = field(j, "user"); u && !u->is_string()) bad("user", "'user' must be a string");
  parse_logit_bias(j, r, pc.tok.n_vocab());
  get_num(j, "presence_penalty", -2, 2, 0);
  get_num(j, "frequency_penalty", -2, 2, 0);
  auto& sp = r.gen.sampler;
  sp.temperature = get_float(j, "temperature", 0, 2, 1.0);
  sp.top_p = get_float(j, "top_p", 0, 1, 1.0, /*lo_open=*/true);
  sp.top_k = static_cast<int32_t>(get_int(j, "top_k", 0, 1 << 20, 0));
  sp.min_p = get_float(j, "min_p", 0, 1, 0);
  sp.repeat_penalty = get_float(j, "repeat_penalty", 0, 10, 1, /*lo_open=*/true);
  sp.repeat_last_n = static_cast<int32_t>(get_int(j, "repeat_last_n", 0, 1 << 20, 64));
  static std::random_device rd;
  static std::mutex rd_mu;
  uint64_t seed;
  {
    std::lock_guard<std::mutex> lk(rd_mu);
    seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  sp.seed = static_cast<uint64_t>(get_int(j, "seed", std::numeric_limits<int64_t>::min(),
                                          std::numeric_limits<int64_t>::max(), static_cast<int64_t>(seed)));
  r.gen.ignore_eos = get_bool(j, "ignore_eos", false);
  if (const json* st = field(j, "stop")) {
    if (st->is_string()) {
      r.gen.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      if (st->size() > kMaxStopStrings)
        bad("stop", fmt::format("'stop' may hold at most {} strings", kMaxStopStrings));
      for (const auto& s : *st) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        r.gen.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings");
    }
    for (auto& s : r.gen.stop) {
      if (s.size() > kMaxStopBytes) bad("stop", fmt::format("stop strings are limited to {} bytes", kMaxStopBytes));
      s = sanitize_utf8(s);
    }
    std::erase_if(r.gen.stop, [](const std::string& s) { return s.empty(); });
  }
}

// Checks the prompt length and settles max_tokens against the context.
void settle_lengths(const json& j, ParsedRequest& r, const Limits& lim, const char* max_name) {
  const int64_t n_prompt = static_cast<int64_t>(r.gen.prompt.size());
  if (n_prompt == 0) bad("prompt", "the prompt is empty");
  const int64_t max_prompt = lim.max_prompt_tokens > 0 ? std::min(lim.max_prompt_tokens, lim.n_ctx - 1) : lim.n_ctx - 1;
  if (n_prompt > max_prompt)
    bad("messages", fmt::format("the prompt has {} tokens; the limit is {} (context {})", n_prompt, max_prompt, lim.n_ctx),
        "context_length_exceeded");
  int64_t mt = get_int(j, "max_tokens", 1, lim.max_tokens, 0);
  if (max_name) {
    const int64_t m2 = get_int(j, max_name, 1, lim.max_tokens, 0);
    if (m2) mt = m2;
  }
  if (mt > 0) {
    if (n_prompt + mt > lim.n_ctx)
      bad("max_tokens",
          fmt::format("this request needs {} tokens ({} of prompt, {} to generate) but the context holds {}",
                      n_prompt + mt, n_prompt, mt, lim.n_ctx),
          "context_length_exceeded");
  } else {
    mt = std::min(lim.n_ctx - n_prompt, lim.default_max_tokens > 0 ? lim.default_max_tokens : lim.max_tokens);
  }
  r.gen.max_tokens = mt;
}

std::string content_text(const json& c, size_t i) {
  const std::string p = fmt::format("messages[{}].content", i);
  if (c.is_null()) return {};
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad(p, "message content must be a string or an array of text parts");
  std::string out;
  for (const auto& part : c) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad(p, "only text content parts ({\"type\":\"text\",\"text\":...}) are supported");
    out += part["text"].get<std::string>();
  }
  return out;
}

std::vector<int32_t> encode_checked(const std::string& text, const PromptContext& pc, bool add_special,
                                    const char* param) {
  // Cheap bound before tokenizing: a token is at least one byte... except BOS.
  if (static_cast<int64_t>(text.size()) > 64 * pc.limits.n_ctx + 4096)
    bad(param, "the prompt is far longer than the context", "context_length_exceeded");
  try {
    return pc.tok.encode(text, add_special, /*parse_special=*/true);
  } catch (const std::exception& e) {
    bad(param, std::string("the prompt could not be tokenized: ") + sanitize_utf8(e.what()));
  }
}

// Thrown by the parser callback: unwinds nlohmann's parser at the first container
// that would open past kMaxJsonDepth (nothing deeper is ever built).
struct TooDeep {};

}  // namespace

json parse_body(std::string_view body) {
  json j;
  // depth: containers already open around this event (0 for the top-level value).
  const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t ev, json&) {
    if ((ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start) && depth >= kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    j = json::parse(body, limit_depth);
  } catch (const TooDeep&) {
    throw ApiError{400, fmt::format("the request body nests arrays/objects deeper than {} levels", kMaxJsonDepth),
                   "invalid_request_error", "", "nesting_too_deep"};
  } catch (const json::exception& e) {
    throw ApiError{400, std::string("malformed JSON body: ") + sanitize_utf8(e.what()), "invalid_request_error", "", ""};
  }
  if (!j.is_object()) bad("", "the request body must be a JSON object");
  return j;
}

ParsedRequest parse_chat(const json& j, const PromptContext& pc) {
  ParsedRequest r;
  r.endpoint = Endpoint::chat;
  parse_common(j, r, pc);
  r.logprobs = get_bool(j, "logprobs", false);
  const int64_t top = get_int(j, "top_logprobs", 0, 20, 0);
  r.gen.top_logprobs = r.logprobs ? static_cast<int>(top) : -1;
  const json* msgs = field(j, "messages");
  if (!msgs) bad("messages", "'messages' is required");
  if (!msgs->is_array() || msgs->empty()) bad("messages", "'messages' must be a non-empty array");
  if (msgs->size() > kMaxMessages) bad("messages", fmt::format("'messages' may hold at most {} entries", kMaxMessages));
  json conv = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    if (!m.is_object()) bad(fmt::format("messages[{}]", i), "each message must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) bad(fmt::format("messages[{}].role", i), "each message needs a string 'role'");
    static const char* roles[] = {"system", "user", "assistant", "tool", "developer", "function"};
    const std::string rs = role->get<std::string>();
    if (std::find(std::begin(roles), std::end(roles), rs) == std::end(roles))
      bad(fmt::format("messages[{}].role", i), fmt::format("unknown role '{}'", sanitize_utf8(rs)));
    json msg = m;
    msg["content"] = content_text(m.contains("content") ? m["content"] : json(), i);
    conv.push_back(std::move(msg));
  }
  json extra = json::object();
  if (pc.tok.bos_id() >= 0) extra["bos_token"] = pc.tok.token_text(pc.tok.bos_id());
  if (pc.tok.eos_id() >= 0) extra["eos_token"] = pc.tok.token_text(pc.tok.eos_id());
  if (const json* kw = field(j, "chat_template_kwargs")) {
    if (!kw->is_object()) bad("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    for (auto it = kw->begin(); it != kw->end(); ++it) extra[it.key()] = it.value();
  }
  // The template runs over client data (messages and their extra fields, kwargs):
  // whatever it throws (a template error, a resource limit) is this request's fault.
  try {
    r.prompt_text = render_chat(pc.chat_template, conv, /*add_generation_prompt=*/true, extra);
  } catch (const ChatTemplateError& e) {
    // field(): the input at fault when the interpreter knows it (messages[1].meta, a kwarg).
    bad(e.field().empty() ? "messages" : e.field(),
        std::string("the chat template failed on these messages / chat_template_kwargs: ") + sanitize_utf8(e.what()),
        "chat_template_error");
  } catch (const std::exception& e) {
    bad("messages",
        std::string("the chat template failed on these messages / chat_template_kwargs: ") + sanitize_utf8(e.what()),
        "chat_template_error");
  }
  r.gen.prompt = encode_checked(r.prompt_text, pc, false, "messages");
  const int32_t bos = pc.tok.bos_id();
  if (pc.tok.add_bos() && bos >= 0 && (r.gen.prompt.empty() || r.gen.prompt[0] != bos))
    r.gen.prompt.insert(r.gen.prompt.begin(), bos);
  settle_lengths(j, r, pc.limits, "max_completion_tokens");
  return r;
}

ParsedRequest parse_completion(const json& j, const PromptContext& pc) {
  ParsedRequest r;
  r.endpoint = Endpoint::completion;
  parse_common(j, r, pc);
  const int64_t lp = get_int(j, "logprobs", 0, 20, -1);
  r.logprobs = lp >= 0;
  r.gen.top_logprobs = static_cast<int>(lp);
  if (get_bool(j, "echo", false)) bad("echo", "'echo' is not supported");
  if (const json* s = field(j, "suffix"); s && (!s->is_string() || !s->get<std::string>().empty()))
    bad("suffix", "'suffix' is not supported");
  const json* p = field(j, "prompt");
  if (!p) bad("prompt", "'prompt' is required");
  const json* one = p;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) one = &(*p)[0];
  if (one->is_string()) {
    r.prompt_text = one->get<std::string>();
    r.gen.prompt = encode_checked(r.prompt_text, pc, /*add_special=*/true, "prompt");
  } else if (one->is_array() && !one->empty() && (*one)[0].is_number()) {
    if (static_cast<int64_t>(one->size()) >= pc.limits.n_ctx)
      bad("prompt", "the prompt is longer than the context", "context_length_exceeded");
    const int64_t n_vocab = pc.tok.n_vocab();
    for (const auto& t : *one) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= n_vocab)
        bad("prompt", fmt::format("token ids must be integers in [0, {})", n_vocab));
      r.gen.prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  } else {
    bad("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
  }
  settle_lengths(j, r, pc.limits, nullptr);
  return r;
}

json usage_json(const Job& job) {
  return json{{"prompt_tokens", job.n_prompt},
              {"completion_tokens", job.n_generated},
              {"total_tokens", job.n_prompt + job.n_generated},
              {"prompt_tokens_details", {{"cached_tokens", job.n_cached}}}};
}

json logprobs_json(const ParsedRequest& r, const Tokenizer& tok, const std::vector<TokenLogprob>& lps,
                   size_t text_offset) {
  auto piece = [&](int32_t id) {
    const int32_t one[1] = {id};
    return tok.decode(one);
  };
  auto bytes = [](const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(static_cast<int>(c));
    return b;
  };
  if (r.endpoint == Endpoint::chat) {
    json content = json::array();
    for (const auto& lp : lps) {
      const std::string s = piece(lp.id);
      json top = json::array();
      for (const auto& [id, v] : lp.top) {
        const std::string t = piece(id);
        top.push_back({{"token", sanitize_utf8(t)}, {"logprob", v}, {"bytes", bytes(t)}});
      }
      content.push_back({{"token", sanitize_utf8(s)}, {"logprob", lp.logprob}, {"bytes", bytes(s)}, {"top_logprobs", top}});
    }
    return json{{"content", content}};
  }
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offs = json::array();
  for (const auto& lp : lps) {
    const std::string s = sanitize_utf8(piece(lp.id));
    tokens.push_back(s);
    token_lps.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, v] : lp.top) top[sanitize_utf8(piece(id))] = v;
    tops.push_back(top);
    offs.push_back(text_offset);
    text_offset += s.size();
  }
  return json{{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offs}};
}

json final_response(const ParsedRequest& r, const ResponseMeta& m, const Job& job, const std::string& text,
                    const std::vector<TokenLogprob>& lps, const Tokenizer& tok) {
  json choice = {{"index", 0}, {"finish_reason", job.finish_reason}};
  choice["logprobs"] = r.logprobs ? logprobs_json(r, tok, lps, 0) : json(nullptr);
  if (r.endpoint == Endpoint::chat)
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  return json{{"id", m.id},
              {"object", r.endpoint == Endpoint::chat ? "chat.completion" : "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"system_fingerprint", "moe"},
              {"choices", json::array({choice})},
              {"usage", usage_json(job)}};
}

json stream_chunk(const ParsedRequest& r, const ResponseMeta& m, const std::string* text, bool first,
                  const std::string& finish_reason, const json& logprobs) {
  json choice = {{"index", 0}, {"logprobs", logprobs}};
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  if (r.endpoint == Endpoint::chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (text) delta["content"] = *text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text ? *text : std::string();
  }
  json c = {{"id", m.id},
            {"object", r.endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
            {"created", m.created},
            {"model", m.model},
            {"system_fingerprint", "moe"},
            {"choices", json::array({choice})}};
  if (r.include_usage) c["usage"] = nullptr;
  return c;
}

json usage_chunk(const ParsedRequest& r, const ResponseMeta& m, const Job& job) {
  return json{{"id", m.id},
              {"object", r.endpoint == Endpoint::chat ? "chat.completion.chunk" : "text_completion"},
              {"created", m.created},
              {"model", m.model},
              {"system_fingerprint", "moe"},
              {"choices", json::array()},
              {"usage", usage_json(job)}};
}

}  // namespace moe::server
