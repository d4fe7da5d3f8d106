// A progress line with rate and ETA on stderr:
//   train 12/100 [ 12%] 3.20 it/s elapsed 0:04 ETA 0:27 reward=0.41
// Below 1 it/s the rate reads as seconds per item, like tqdm: "72.3 s/it".
//
// On a terminal the line is redrawn in place (`\r`, at most every 0.5 s). When stderr is not a
// terminal (Slurm logs, files, pipes) each update is a plain line of its own, with no `\r` or
// escape codes: the first item, then at most one line every 10 s, and always the last item.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace grpo {

// What a progress line shows; format_progress_line is a pure function of it.
struct ProgressState {
  std::string label;
  int64_t done = 0, total = 0;
  double elapsed_s = 0;
  std::string status;   // appended as is, e.g. "reward=0.41 heldout@20=0.38"
  int64_t initial = 0;  // items done before this run (a resumed run): not counted in the rate
};

// "label done/total [pct%] RATE elapsed M:SS ETA M:SS status" (no `\r`, no newline). RATE is
// "3.20 it/s" at 1 it/s or more, "72.3 s/it" below, "? it/s" before the first item of this run;
// both it and the ETA count only the items done since `initial`.
std::string format_progress_line(const ProgressState& state);

// Not thread-safe: one owner thread draws the line. Owns its label and timings; writes to stderr.
class Progress {
 public:
  // `enabled` false draws nothing (note() still prints). Redraws in place when stderr is a terminal.
  // `initial`: items already done (a resumed run counts on from there).
  Progress(std::string label, int64_t total, bool enabled = true, int64_t initial = 0);
  // `n` more items done; a non-empty `status` replaces the one shown.
  void advance(int64_t n = 1, const std::string& status = "");
  // Draws the final state (if not drawn yet) and ends the line.
  void finish(const std::string& status = "");
  // Prints `line` on a line of its own (a warning, an evaluation) without garbling the progress
  // line, which is drawn again below it on a terminal. Printed even when the line is disabled.
  void note(const std::string& line);
  static std::string format_duration(double seconds);  // 75 -> "1:15", 3725 -> "1:02:05"

 private:
  void draw(bool final_line);
  ProgressState state_;
  bool enabled_, terminal_;
  bool drawn_ = false;      // the current state is on screen (lines mode: already printed)
  bool line_open_ = false;  // terminal mode: a progress line without its newline is on screen
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace grpo
