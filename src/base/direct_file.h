// Positional reads of a file that bypass the page cache where the file system
// allows it (O_DIRECT), for the expert cache (model/expert_cache.cpp), which
// streams routed experts of models larger than memory. O_DIRECT needs the
// offset, the length and the buffer aligned to the device's logical block;
// read_aligned() takes ranges already rounded to kDirectAlign and aligned
// buffers. Where the open or the first read with O_DIRECT is refused (tmpfs,
// some network file systems), the file is read through the page cache instead
// and the pages read are dropped afterwards (POSIX_FADV_DONTNEED), so that
// streaming does not fill the page cache either way.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace moe {

inline constexpr size_t kDirectAlign = 4096;  // covers 512-byte and 4 KiB logical blocks

class DirectFile {
 public:
  DirectFile() = default;
  // Opens path read-only; throws moe::Error naming the path. direct = false
  // never tries O_DIRECT.
  explicit DirectFile(const std::string& path, bool direct = true);
  ~DirectFile();
  DirectFile(const DirectFile&) = delete;
  DirectFile& operator=(const DirectFile&) = delete;

  // Reads [offset, offset + n) into dst. offset, n and dst must be multiples of
  // kDirectAlign; bytes past the end of the file read as zero. Thread-safe.
  // Throws moe::Error naming the file and the range on an I/O error.
  void read_aligned(uint64_t offset, size_t n, void* dst) const;
  // Whether reads still go around the page cache.
  bool direct() const { return use_direct_.load(std::memory_order_relaxed); }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int direct_fd_ = -1;                     // O_DIRECT descriptor, -1 if refused at open
  mutable std::atomic<bool> use_direct_{false};  // false once a direct read was refused
  int fd_ = -1;                 // buffered descriptor, always open
  uint64_t size_ = 0;
};

}  // namespace moe
