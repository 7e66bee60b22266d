// DirectFile: pread loops over an O_DIRECT descriptor with a buffered fallback.
// See direct_file.h for the alignment contract.
#include "base/direct_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace moe {

DirectFile::DirectFile(const std::string& path, bool direct) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw_error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int e = errno;
    ::close(fd_);
    throw_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  size_ = static_cast<uint64_t>(st.st_size);
#ifdef O_DIRECT
  if (direct) direct_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
#else
  (void)direct;
#endif
  use_direct_ = direct_fd_ >= 0;
}

DirectFile::~DirectFile() {
  if (direct_fd_ >= 0) ::close(direct_fd_);
  if (fd_ >= 0) ::close(fd_);
}

void DirectFile::read_aligned(uint64_t offset, size_t n, void* dst) const {
  MOE_DASSERT(offset % kDirectAlign == 0 && n % kDirectAlign == 0 &&
              reinterpret_cast<uintptr_t>(dst) % kDirectAlign == 0);
  auto* out = static_cast<uint8_t*>(dst);
  bool buffered = false;
  size_t done = 0;
  while (done < n) {
    const uint64_t at = offset + done;
    if (at >= size_) {  // the aligned tail past the end of the file reads as zero
      std::memset(out + done, 0, n - done);
      break;
    }
    // A direct read continues only from an aligned position (a short read stops
    // at the end of the file, which need not be aligned).
    const bool direct = use_direct_.load(std::memory_order_relaxed) && at % kDirectAlign == 0 &&
                        (done % kDirectAlign) == 0;
    const ssize_t r = ::pread(direct ? direct_fd_ : fd_, out + done, n - done, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && direct && errno == EINVAL) {  // O_DIRECT refused here: use the page cache
      use_direct_.store(false, std::memory_order_relaxed);
      continue;
    }
    if (r < 0)
      throw_error("{}: read of {} bytes at offset {} failed: {}", path_, n - done, at,
                  std::strerror(errno));
    if (r == 0) {
      std::memset(out + done, 0, n - done);
      break;
    }
    buffered |= !direct;
    done += static_cast<size_t>(r);
  }
  // Buffered reads leave the pages in the page cache, which a memory limit counts.
  if (buffered)
    ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
}

}  // namespace moe
