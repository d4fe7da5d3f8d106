// Tokenizer encode throughput (MB/s) on a generated ~5 MB mixed-language corpus: our encoder with
// its word cache beside the same encoder without it (the baseline), in one run. Decode too.
//
// Two tokenizers: the HF-made test fixture (3000 tokens, 1.3 bytes/token on this corpus, so
// merging is cheap), and a 32k-token byte-level BPE trained here on the corpus itself with the
// fixture's pre-tokenizer (long tokens, many merges per piece, like large real vocabularies).
//   ./build/bench/bench_tokenizer [--tokenizer PATH] [--mb 5] [--out bench/results/tokenizer.json]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/utf8.h"
#include "tokenizer/bytes.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace {

// Documents of English prose, code, math, numbers, Chinese, Japanese, Korean, emoji and
// whitespace runs, from a fixed seed. Words are drawn Zipf-like from fixed lexicons (made-up CJK,
// kana and Hangul words included), so frequent words repeat as in real text.
std::vector<std::string> make_corpus(size_t bytes) {
  std::mt19937 rng(42);
  auto made_up = [&](char32_t lo, char32_t hi, int max_chars, size_t count) {
    std::vector<std::string> words(count);
    for (auto& w : words)
      for (int i = 1 + static_cast<int>(rng() % max_chars); i > 0; --i)
        grpo::utf8::append(w, lo + rng() % (hi - lo + 1));
    return words;
  };
  const std::vector<std::string> english = {
      "the",         "answer",  "is",        "we",        "compute",  "first",    "then",   "so",       "therefore",
      "let",         "number",  "of",        "students",  "each",     "has",      "apples", "total",    "and",
      "a",           "step",    "by",        "reasoning", "model",    "train",    "policy", "reward",   "group",
      "advantage",   "because", "which",     "means",     "value",    "function", "Wait,",  "consider", "triangle",
      "probability", "integer", "remainder", "divisible", "sequence", "equation"};
  const std::vector<std::string> code = {"def ",
                                         "return ",
                                         "for i in range(n):",
                                         "if x > 0:",
                                         "self.",
                                         "print(",
                                         "import numpy as np",
                                         " = ",
                                         " == ",
                                         "(x, y)",
                                         "[0]",
                                         "{",
                                         "}",
                                         "->",
                                         "//"};
  const std::vector<std::string> math = {
      "\\frac{1}{2}", "\\boxed{",        "}",    "x^2", " + ", " - ", " = ", "\\sqrt{", "\\cdot",
      "(a+b)",        "\\sum_{i=1}^{n}", "\\pi", "$",   "\\le"};
  const std::vector<std::string> emoji = {"🚀", "🔥", "👍", "😀", "🎉", "✅", "🤔"};
  const auto chinese = made_up(0x4E00, 0x9FA5, 3, 3000);
  const auto kana = made_up(0x3041, 0x30F3, 4, 1500);
  const auto hangul = made_up(0xAC00, 0xD7A3, 3, 3000);
  // Zipf-like rank: small ranks far more often than large ones.
  auto pick = [&](const std::vector<std::string>& v) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return v[static_cast<size_t>(std::pow(static_cast<double>(v.size()), u)) - 1];
  };
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < bytes) {
    std::string d;
    const int kind = static_cast<int>(rng() % 6);
    for (int w = 0; w < 200; ++w) {
      switch (kind) {
        case 0: d += pick(english) + (rng() % 12 == 0 ? ". " : " "); break;
        case 1: d += pick(code) + (rng() % 5 == 0 ? "\n    " : ""); break;
        case 2: d += pick(math) + std::to_string(rng() % 1000); break;
        case 3: d += pick(chinese) + (rng() % 8 == 0 ? "，" : ""); break;
        case 4: d += pick(kana) + (rng() % 8 == 0 ? "。" : ""); break;
        default: d += pick(hangul) + " "; break;
      }
      if (rng() % 40 == 0) d += pick(emoji);
      if (rng() % 60 == 0) d += "\n\n";
      if (rng() % 80 == 0) d += std::string(1 + rng() % 8, ' ');
    }
    total += d.size();
    docs.push_back(std::move(d));
  }
  return docs;
}

// Wall-clock and this thread's CPU seconds; on a shared machine the CPU time is the steadier one.
struct Clock {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = thread_cpu();
  static double thread_cpu() {
    timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
  }
  std::pair<double, double> elapsed() const {
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(), thread_cpu() - cpu};
  }
};

struct Timing {
  double wall = 1e30, cpu = 1e30;  // best over repetitions
  double first_wall = 0, first_cpu = 0;
  size_t tokens = 0;
  void add(std::pair<double, double> t, bool first) {
    if (first) first_wall = t.first, first_cpu = t.second;
    wall = std::min(wall, t.first);
    cpu = std::min(cpu, t.second);
  }
};

// One pass over the corpus; keeps the ids of the first pass.
void encode_pass(const grpo::Tokenizer& tok, const std::vector<std::string>& docs, bool first, Timing& t,
                 std::vector<std::vector<int32_t>>& ids) {
  Clock c;
  size_t tokens = 0;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto out = tok.encode(docs[i]);
    tokens += out.size();
    if (first) ids[i] = std::move(out);
  }
  t.add(c.elapsed(), first);
  t.tokens = tokens;
}

// Byte-level BPE training (most frequent pair first, ties to the smaller pair key) on the corpus'
// pre-tokenized pieces; writes a tokenizer.json with `fixture`'s pre-tokenizer, decoder and added
// tokens, and `merges` merges.
nlohmann::json train_bpe(const nlohmann::json& fixture, const std::vector<std::string>& docs, size_t merges) {
  const auto pre = grpo::PreTokenizer::from_json(fixture["pre_tokenizer"], {"fixture", "pre_tokenizer"});
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& d : docs) {
    grpo::PreTokenized p;
    pre.split(d, p);
    for (auto piece : p.pieces) ++counts[std::string(piece)];
  }
  std::vector<std::string> symbols;  // id -> token string (byte-level alphabet)
  symbols.reserve(256);
  for (int b = 0; b < 256; ++b) symbols.push_back(grpo::bytelevel::to_symbols(std::string(1, static_cast<char>(b))));
  std::vector<std::vector<int32_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [w, c] : counts) {
    words.emplace_back(w.begin(), w.end());
    for (auto& s : words.back()) s &= 0xFF;
    freq.push_back(c);
  }
  auto key = [](int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); };
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  std::priority_queue<std::pair<int64_t, uint64_t>> heap;  // (count, ~key): most frequent, then smallest key
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = key(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      where[k].push_back(static_cast<int32_t>(w));
    }
  for (const auto& [k, c] : pair_count) heap.push({c, ~k});
  nlohmann::json merge_list = nlohmann::json::array();
  while (merge_list.size() < merges && !heap.empty()) {
    auto [c, nk] = heap.top();
    heap.pop();
    const uint64_t k = ~nk;
    if (pair_count[k] != c || c <= 0) continue;  // stale entry
    const int32_t a = static_cast<int32_t>(k >> 32), b = static_cast<int32_t>(k & 0xFFFFFFFF);
    const int32_t id = static_cast<int32_t>(symbols.size());
    symbols.push_back(symbols[a] + symbols[b]);
    merge_list.push_back({symbols[a], symbols[b]});
    std::unordered_set<int32_t> touched(where[k].begin(), where[k].end());
    std::unordered_map<uint64_t, int64_t> delta;
    for (int32_t w : touched) {
      auto& s = words[w];
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[key(s[i], s[i + 1])] -= freq[w];
      std::vector<int32_t> merged;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(id);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      s.swap(merged);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t nk2 = key(s[i], s[i + 1]);
        delta[nk2] += freq[w];
        if (s[i] == id || s[i + 1] == id) where[nk2].push_back(w);
      }
    }
    for (const auto& [pk, d] : delta) {
      if (d == 0) continue;
      pair_count[pk] += d;
      heap.push({pair_count[pk], ~pk});
    }
  }
  nlohmann::json j = fixture;
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& t : fixture["added_tokens"]) vocab[t["content"].get<std::string>()] = t["id"];
  const int32_t offset = static_cast<int32_t>(vocab.size());
  for (size_t i = 0; i < symbols.size(); ++i) vocab[symbols[i]] = offset + static_cast<int32_t>(i);
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = merge_list;
  return j;
}

// Benchmarks one tokenizer: prints its table and returns its figures.
nlohmann::json bench(const std::string& name, const std::string& path, const std::vector<std::string>& docs,
                     size_t bytes) {
  const double mbytes = bytes / 1e6;
  const auto cached = grpo::Tokenizer::load(path);
  const auto uncached = grpo::Tokenizer::load(path, {/*cache_capacity=*/0});
  const int reps = 5;
  std::vector<std::vector<int32_t>> ids_cached(docs.size()), ids_uncached(docs.size());
  Timing base, ours, dec;
  for (int r = 0; r < reps; ++r) {  // interleaved, so both see the same machine load
    encode_pass(uncached, docs, r == 0, base, ids_uncached);
    encode_pass(cached, docs, r == 0, ours, ids_cached);
  }
  if (ids_cached != ids_uncached) throw std::runtime_error(name + ": cached and uncached encodes differ");
  for (int r = 0; r < reps; ++r) {
    Clock c;
    size_t n = 0;
    for (const auto& ids : ids_cached) n += cached.decode(ids).size();
    dec.add(c.elapsed(), r == 0);
    if (n != bytes) throw std::runtime_error(name + ": decode does not give the corpus back");
  }
  dec.tokens = ours.tokens;

  std::printf("\n%s: vocab %d, %zu tokens (%.2f bytes/token); best of %d interleaved passes, one thread\n",
              name.c_str(), cached.vocab_size(), ours.tokens, static_cast<double>(bytes) / ours.tokens, reps);
  std::printf("%-34s %12s %12s %14s\n", "", "MB/s (CPU)", "MB/s (wall)", "Mtok/s (CPU)");
  auto row = [&](const char* label, double cpu, double wall, size_t tokens) {
    std::printf("%-34s %12.2f %12.2f %14.3f\n", label, mbytes / cpu, mbytes / wall, tokens / cpu / 1e6);
  };
  row("encode, no cache (baseline)", base.cpu, base.wall, base.tokens);
  row("encode, word cache, first pass", ours.first_cpu, ours.first_wall, ours.tokens);
  row("encode, word cache, warm", ours.cpu, ours.wall, ours.tokens);
  row("decode", dec.cpu, dec.wall, dec.tokens);
  std::printf("word cache speed-up (warm, CPU time): %.2fx\n", base.cpu / ours.cpu);
  return {{"vocab_size", cached.vocab_size()},
          {"tokens", ours.tokens},
          {"reps", reps},
          {"encode_no_cache_mb_s_cpu", mbytes / base.cpu},
          {"encode_no_cache_mb_s_wall", mbytes / base.wall},
          {"encode_cache_first_pass_mb_s_cpu", mbytes / ours.first_cpu},
          {"encode_cache_warm_mb_s_cpu", mbytes / ours.cpu},
          {"encode_cache_warm_mb_s_wall", mbytes / ours.wall},
          {"decode_mb_s_cpu", mbytes / dec.cpu},
          {"cache_speedup_cpu", base.cpu / ours.cpu}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string tokenizer = std::string(GRPO_SOURCE_DIR) + "/tests/data/bpe-tokenizer/tokenizer.json";
  std::string out_path = std::string(GRPO_SOURCE_DIR) + "/bench/results/tokenizer.json";
  double mb = 5;
  size_t merges = 32000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--tokenizer")
      tokenizer = argv[i + 1];
    else if (a == "--out")
      out_path = argv[i + 1];
    else if (a == "--mb")
      mb = std::stod(argv[i + 1]);
    else if (a == "--merges")
      merges = std::stoul(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const auto docs = make_corpus(static_cast<size_t>(mb * 1e6));
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  std::printf("corpus: %zu generated documents, %.2f MB (English, code, math, Chinese, Japanese, Korean, emoji)\n",
              docs.size(), bytes / 1e6);

  std::ifstream in(tokenizer);
  const nlohmann::json fixture = nlohmann::json::parse(in);
  const std::string trained_path = (std::filesystem::temp_directory_path() / "grpo_bench_bpe32k.json").string();
  std::ofstream(trained_path) << train_bpe(fixture, docs, merges).dump();

  nlohmann::json j = {{"bench", "tokenizer"},
                      {"corpus_mb", bytes / 1e6},
                      {"documents", docs.size()},
                      {"threads", 1},
                      {"fixture", bench("fixture (HF-made)", tokenizer, docs, bytes)},
                      {"trained", bench("trained on the corpus", trained_path, docs, bytes)}};
  std::filesystem::remove(trained_path);
  std::filesystem::create_directories(std::filesystem::path(out_path).parent_path());
  const std::string tmp = out_path + ".tmp";
  std::ofstream(tmp) << j.dump(2) << "\n";
  std::filesystem::rename(tmp, out_path);
  std::printf("\nwrote %s\n", out_path.c_str());
  return 0;
}
