// Text helpers of the server: an incremental UTF-8 sanitizer (invalid bytes become
// U+FFFD exactly as a whole-string WHATWG decoder would replace them, so a stream
// of pieces equals the sanitized whole), and the stop-string matcher that holds
// back text which may still become a stop sequence.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace moe::server {

// Replaces invalid UTF-8 by U+FFFD (maximal-subpart rule, as TextDecoder does).
std::string sanitize_utf8(std::string_view s);

class Utf8Stream {
 public:
  // Returns the complete part of pending + bytes; holds a trailing incomplete sequence.
  std::string push(std::string_view bytes);
  std::string flush();  // the held bytes, replaced if incomplete

 private:
  std::string pending_;
};

// Feeds generated text; releases what can no longer be part of a stop string.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  // Appends text; returns the releasable text. Sets stopped() when a stop string
  // appeared (the stop string and anything after it are dropped).
  std::string push(std::string_view text);
  std::string flush();  // everything held (call at the end when not stopped)
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace moe::server
