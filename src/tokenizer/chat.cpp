// render_chat: parses a chat template and renders it with messages,
// add_generation_prompt and extra variables (bos_token, eos_token, tools, ...).
// Parsed templates are cached by source text, since a server renders the same
// template for every request. Inputs deeper than Limits::max_input_depth and
// every render-time failure throw ChatTemplateError (the server answers 400);
// a template that does not parse throws moe::Error.
#include <mutex>
#include <unordered_map>

#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"

namespace moe {

nlohmann::json ChatMessage::to_json() const {
  nlohmann::json j = extra.is_object() ? extra : nlohmann::json::object();
  j["role"] = role;
  j["content"] = content;
  return j;
}

namespace {

struct Parsed {
  jinja::NodePtr root;
  std::string pre;
};

std::shared_ptr<const Parsed> parsed_template(const std::string& src) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<Parsed>> cache;
  std::shared_ptr<Parsed> p;
  {
    std::lock_guard<std::mutex> lk(mu);
    auto it = cache.find(src);
    if (it != cache.end()) p = it->second;
  }
  if (!p) {
    p = std::make_shared<Parsed>();
    p->root = jinja::parse(src, p->pre);
    std::lock_guard<std::mutex> lk(mu);
    if (cache.size() > 64) cache.clear();
    cache.emplace(src, p);
  }
  return p;
}

// Converts the inputs straight from either JSON flavour (no dump/parse round
// trip, which would recurse without bound on deep input); each top-level name
// is the field an input-depth error names ("messages[2].meta", "tools", ...).
template <typename J>
std::string render_with(const std::string& src, const J& messages, bool add_generation_prompt, const J& extra) {
  const auto parsed = parsed_template(src);
  const jinja::Limits limits;
  jinja::Value vars = jinja::Value::dict();
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it)
      vars.set(it.key(), jinja::Value::from_json(it.value(), it.key(), limits.max_input_depth));
  vars.set("messages", jinja::Value::from_json(messages, "messages", limits.max_input_depth));
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  return jinja::render(*parsed->root, parsed->pre, vars, limits);
}

}  // namespace

std::string render_chat(const std::string& src, const nlohmann::ordered_json& messages, bool add_generation_prompt,
                        const nlohmann::ordered_json& extra) {
  return render_with(src, messages, add_generation_prompt, extra);
}

std::string render_chat(const std::string& src, const nlohmann::json& messages, bool add_generation_prompt,
                        const nlohmann::json& extra) {
  return render_with(src, messages, add_generation_prompt, extra);
}

}  // namespace moe
