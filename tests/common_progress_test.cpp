// The progress line's text (common/progress.h) as a pure function of its state: counts, rate in
// it/s or s/it, elapsed time, ETA and the status.
#include <gtest/gtest.h>

#include "common/progress.h"

namespace grpo {
namespace {

ProgressState state(int64_t done, int64_t total, double elapsed_s, std::string status = "") {
  return {"train", done, total, elapsed_s, std::move(status)};
}

TEST(ProgressLine, ItemsPerSecondAtOneOrMore) {
  EXPECT_EQ(format_progress_line(state(12, 100, 3.75, "reward=0.41")),
            "train 12/100 [ 12%] 3.20 it/s elapsed 0:04 ETA 0:28 reward=0.41");
  EXPECT_EQ(format_progress_line(state(10, 10, 10)), "train 10/10 [100%] 1.00 it/s elapsed 0:10 ETA 0:00");
}

TEST(ProgressLine, SecondsPerItemBelowOneItemPerSecond) {
  // 3 steps in 216.9 s: 72.3 s/it (not "0.01 it/s"); 7 left -> ETA 506 s.
  EXPECT_EQ(format_progress_line(state(3, 10, 216.9)), "train 3/10 [ 30%] 72.3 s/it elapsed 3:37 ETA 8:26");
  EXPECT_EQ(format_progress_line(state(1, 2, 5000)), "train 1/2 [ 50%] 5000.0 s/it elapsed 1:23:20 ETA 1:23:20");
}

TEST(ProgressLine, NoRateOrEtaBeforeTheFirstItem) {
  EXPECT_EQ(format_progress_line(state(0, 5, 0)), "train 0/5 [  0%] ? it/s elapsed 0:00 ETA ?");
  EXPECT_EQ(format_progress_line(state(0, 5, 30)), "train 0/5 [  0%] ? it/s elapsed 0:30 ETA ?");
  EXPECT_EQ(format_progress_line(state(0, 0, 1)), "train 0/0 [  0%] ? it/s elapsed 0:01 ETA ?");
}

TEST(ProgressLine, AResumedRunCountsOnAndRatesOnlyItsOwnItems) {
  ProgressState s = state(13, 20, 4, "loss=1.5");
  s.initial = 10;  // resumed at 10: 3 items in 4 s
  EXPECT_EQ(format_progress_line(s), "train 13/20 [ 65%] 1.3 s/it elapsed 0:04 ETA 0:09 loss=1.5");
  s.done = 10;
  EXPECT_EQ(format_progress_line(s), "train 10/20 [ 50%] ? it/s elapsed 0:04 ETA ? loss=1.5");
}

TEST(ProgressLine, HasNoControlCharacters) {
  const std::string line = format_progress_line(state(7, 9, 2.5, "heldout@6=0.250"));
  for (char c : line) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << line;
}

TEST(ProgressLine, Durations) {
  EXPECT_EQ(Progress::format_duration(75), "1:15");
  EXPECT_EQ(Progress::format_duration(3725), "1:02:05");
  EXPECT_EQ(Progress::format_duration(-1), "?");
  EXPECT_EQ(Progress::format_duration(1e9), "?");
}

}  // namespace
}  // namespace grpo
