// Files written whole or not at all: a reader (or a resumed run after a kill at any line) sees the
// old content or the new, never a torn file. Thread-safe (no shared state); the temporary name
// carries the pid, so two processes writing the same path do not share a temporary file.
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace grpo {

// Writes a file by calling `write(fd)` on `path`.tmp.<pid>, then fsync, rename onto `path` and
// fsync of the parent directory. On failure the temp file is removed and `path` is untouched.
// Throws grpo::InputError naming the file.
void write_file_atomic(const std::string& path, const std::function<void(int fd)>& write);

// write_file_atomic of one string.
void write_text_atomic(const std::string& path, std::string_view text);

// write(2) all of `n` bytes or throw grpo::InputError (naming `path`); retries EINTR.
void write_all(int fd, const void* data, size_t n, const std::string& path);

}  // namespace grpo
