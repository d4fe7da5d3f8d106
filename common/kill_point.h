// Kill points: named places where a test can make the process die as if by `kill -9`, to check
// that a run resumes from any point (RocksDB's kill points serve the same purpose).
//
//   kill_point("train/trained");  // in the training loop, after the update, before anything records it
//
// With the environment variable GRPO_KILL_POINT=NAME the process raises SIGKILL the first time it
// reaches kill_point(NAME); with GRPO_KILL_POINT=NAME@N, the N-th time (N >= 1). Without the
// variable a kill point costs a check of an empty string. The variable is read once, at the first
// kill point; a malformed value (NAME@0, NAME@x) is ignored and reported on stderr once.
//
// Thread-safe: may be reached from any thread.
#pragma once

namespace grpo {

void kill_point(const char* name);

}  // namespace grpo
