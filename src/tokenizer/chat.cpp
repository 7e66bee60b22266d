// render_chat: parses a chat template and renders it with messages,
// add_generation_prompt and extra variables (bos_token, eos_token, tools, ...).
// Parsed templates are cached by source text, since a server renders the same
// template for every request.
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

std::string render_chat(const std::string& src, const nlohmann::ordered_json& messages, bool add_generation_prompt,
                        const nlohmann::ordered_json& extra) {
  struct Parsed {
    jinja::NodePtr root;
    std::string pre;
  };
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
  jinja::Value vars = jinja::Value::dict();
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) vars.set(it.key(), jinja::Value::from_json(it.value()));
  vars.set("messages", jinja::Value::from_json(messages));
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  return jinja::render(*p->root, p->pre, vars);
}

std::string render_chat(const std::string& src, const nlohmann::json& messages, bool add_generation_prompt,
                        const nlohmann::json& extra) {
  return render_chat(src, nlohmann::ordered_json::parse(messages.dump()), add_generation_prompt,
                     nlohmann::ordered_json::parse(extra.dump()));
}

}  // namespace moe
