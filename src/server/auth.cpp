// API keys: resolution from the command line, a file or the environment (a key on
// the command line shows in process listings; a file or the environment does not),
// and the constant-time comparison used on every request.
#include "server/auth.h"

#include <fstream>
#include <iterator>

#include "base/error.h"

namespace moe::server {

namespace {

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

void check_key(const std::string& key, const std::string& from) {
  for (unsigned char c : key)
    MOE_CHECK(c > 0x20 && c != 0x7f, "{}: the API key holds a space or control character (byte 0x{:02x})", from, c);
}

}  // namespace

std::string resolve_api_key(const std::string& key, const std::string& key_file, const char* env) {
  MOE_CHECK(key.empty() || key_file.empty(), "serve: give --api-key or --api-key-file, not both");
  if (!key.empty()) {
    check_key(key, "--api-key");
    return key;
  }
  if (!key_file.empty()) {
    std::ifstream f(key_file, std::ios::binary);
    MOE_CHECK(f.good(), "--api-key-file {}: cannot open it", key_file);
    std::string text;
    text.resize(kMaxApiKeyFileBytes + 1);
    f.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(f.gcount()));
    MOE_CHECK(text.size() <= kMaxApiKeyFileBytes, "--api-key-file {}: larger than {} bytes", key_file,
              kMaxApiKeyFileBytes);
    const std::string k = trim(text.substr(0, text.find('\n')));
    MOE_CHECK(!k.empty(), "--api-key-file {}: the first line is empty", key_file);
    check_key(k, "--api-key-file " + key_file);
    return k;
  }
  if (env && *env) {
    std::string k = trim(env);
    check_key(k, "MOE_API_KEY");
    return k;
  }
  return {};
}

bool constant_time_equal(std::string_view got, std::string_view want) {
  unsigned diff = got.size() != want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    const unsigned char g = i < got.size() ? static_cast<unsigned char>(got[i]) : 0;
    diff |= static_cast<unsigned>(g ^ static_cast<unsigned char>(want[i]));
  }
  return diff == 0;
}

}  // namespace moe::server
