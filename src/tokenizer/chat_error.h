// The error render_chat throws when a request's data cannot be rendered by a
// chat template that itself parsed: input nested deeper than the limit (field()
// names it, e.g. "messages[0].meta" or a chat_template_kwargs key), a resource
// limit of the interpreter exceeded (steps, loop iterations, output length...),
// the template's raise_exception(), or a runtime error the data caused (wrong
// types). The server maps it to HTTP 400. Template syntax errors, found when the
// template is parsed, stay plain moe::Error (the model's fault, not the request's).
#pragma once
#include <string>
#include <utility>

#include "base/error.h"

namespace moe {

class ChatTemplateError : public Error {
 public:
  explicit ChatTemplateError(const std::string& msg, std::string field = "") : Error(msg), field_(std::move(field)) {}
  const std::string& field() const { return field_; }  // request field at fault; empty if unknown

 private:
  std::string field_;
};

}  // namespace moe
