#include "core/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace qconform {

namespace {

std::string system_reason() { return std::strerror(errno); }

// Every byte, or false (errno says why: ENOSPC, EFBIG, ...).
bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string hidden_temporary_name(const std::string& directory, const std::string& name) {
  static std::atomic<unsigned> counter{0};
  return (std::filesystem::path(directory) /
          ("." + name + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
      .string();
}

int remove_stale_temporaries(const std::string& directory) {
  int removed = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".partial-");
    if (name.empty() || name[0] != '.' || at == std::string::npos) continue;
    const std::string rest = name.substr(at + 9);
    const size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    const std::string pid_text = rest.substr(0, dash);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer still runs
    std::filesystem::remove_all(entry.path(), error);
    if (!error) ++removed;
  }
  return removed;
}

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what) {
  const std::filesystem::path target(path);
  const std::string directory = target.has_parent_path() ? target.parent_path().string() : ".";
  const std::string temporary = hidden_temporary_name(directory, target.filename().string());
  const auto fail = [&](const std::string& step) {
    throw Error(path + ": could not " + step + " the " + what + ": " + system_reason());
  };
  // An unnamed file first: a kill before it is complete leaves nothing at all.
  int fd = ::open(directory.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
  const bool unnamed = fd >= 0;
  if (!unnamed) fd = ::open(temporary.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) fail("create");
  if (!write_all(fd, bytes)) {
    const int saved = errno;
    ::close(fd);
    if (!unnamed) std::remove(temporary.c_str());
    errno = saved;
    fail("write");
  }
  if (unnamed) {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, temporary.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      fail("name");
    }
  }
  if (::close(fd) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    errno = saved;
    fail("write");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(temporary.c_str());
    errno = saved;
    fail("move into place");
  }
}

}  // namespace qconform
