// API-key handling of `moe serve`: where the key comes from (--api-key, --api-key-file,
// MOE_API_KEY) and the constant-time comparison of the Authorization header with it.
// Called by cmd_serve.cpp (resolve) and http.cpp (compare); tested in server_unit_test.
#pragma once
#include <string>
#include <string_view>

namespace moe::server {

inline constexpr size_t kMaxApiKeyFileBytes = 4096;

// The key from --api-key, else --api-key-file (its first line, surrounding whitespace
// removed), else the MOE_API_KEY environment value (`env`, may be null or empty: none).
// Throws moe::Error when both options are given, or the file is unreadable, empty,
// larger than kMaxApiKeyFileBytes, or the key holds control characters or spaces.
std::string resolve_api_key(const std::string& key, const std::string& key_file, const char* env);

// a == b in time that depends only on want.size(): no early exit on the first
// differing byte, and got's length (known to the caller anyway) only changes a flag.
bool constant_time_equal(std::string_view got, std::string_view want);

}  // namespace moe::server
