#include "distill/card.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <sstream>

#include "common/error.h"

namespace fs = std::filesystem;

namespace grpo {
namespace {

using Ordered = nlohmann::ordered_json;

std::string hex(const unsigned char* p, size_t n) {
  std::ostringstream s;
  for (size_t i = 0; i < n; ++i) s << std::hex << std::setw(2) << std::setfill('0') << int(p[i]);
  return s.str();
}

std::string sha256_text(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr))
    throw std::runtime_error("sha256: EVP_Digest failed");
  return hex(md, n);
}

std::string text_of(const Ordered& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

Ordered counts_json(const DistillCounts& c) {
  return {{"prompts", c.prompts},
          {"prompts_sampled", c.prompts_sampled},
          {"samples", c.samples},
          {"accepted", c.accepted},
          {"rejected", c.rejected},
          {"prompts_with_zero_accepted", c.prompts_with_zero_accepted},
          {"corrupt_records_skipped", c.corrupt_records},
          {"corrupt_record_examples", c.corrupt_examples},
          {"dataset_rows_skipped", c.dataset_rows_skipped},
          {"dataset_skip_examples", c.dataset_skip_examples},
          {"prompts_without_answers_skipped", c.prompts_without_answers},
          {"prompts_not_in_template_skipped", c.prompts_not_in_template},
          {"reward_errors", c.reward_errors}};
}

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the file to compute its sha256");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr)) throw std::runtime_error("sha256: init failed");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), size_t(in.gcount()));
  }
  if (in.bad()) throw InputError(path + ": read error while computing its sha256");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &n);
  return hex(md, n);
}

Ordered file_digest(const std::string& path) {
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot read the file (" + ec.message() + ")");
  return {{"path", path}, {"bytes", bytes}, {"sha256", sha256_file(path)}};
}

Ordered checkpoint_digest(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  if (ec) throw InputError(dir + ": cannot list the checkpoint directory (" + ec.message() + ")");
  if (files.empty()) throw InputError(dir + ": no *.safetensors files to identify the checkpoint by");
  std::sort(files.begin(), files.end());
  Ordered list = Ordered::array();
  std::string lines;
  for (const auto& f : files) {
    Ordered d = file_digest(f.string());
    lines += f.filename().string() + " " + d["sha256"].get<std::string>() + "\n";
    list.push_back({{"name", f.filename().string()}, {"bytes", d["bytes"]}, {"sha256", d["sha256"]}});
  }
  const std::string digest = files.size() == 1 ? list[0]["sha256"].get<std::string>() : sha256_text(lines);
  return {{"path", dir}, {"sha256", digest}, {"files", list}};
}

std::string card_markdown(const Ordered& card) {
  std::ostringstream md;
  const Ordered& c = card.at("counts");
  md << "# Distillation dataset\n\n";
  if (card.value("empty", false))
    md << "**EMPTY: no sample passed the filters.** The export files have no lines; see the counts below.\n\n";
  md << "Made by `" << text_of(card.at("command")) << "` on " << text_of(card.at("created"))
     << " (mode: " << text_of(card.at("mode")) << ").\n\n";
  md << "## Files\n\n";
  for (const auto& [name, lines] : card.at("files").items()) md << "- `" << name << "`: " << lines.dump() << " lines\n";
  md << "\n## Counts\n\n| what | count |\n|---|---:|\n";
  for (const char* key :
       {"prompts", "prompts_sampled", "samples", "accepted", "prompts_with_zero_accepted", "corrupt_records_skipped",
        "dataset_rows_skipped", "prompts_without_answers_skipped", "prompts_not_in_template_skipped", "reward_errors"})
    md << "| " << key << " | " << c.at(key).dump() << " |\n";
  md << "\nRejected samples, each counted by the first filter that rejected it (in this order):\n\n"
        "| filter | rejected |\n|---|---:|\n";
  for (const auto& name : card.at("filter_order")) {
    const std::string n = name.get<std::string>();
    md << "| " << n << " | " << c.at("rejected").value(n, int64_t(0)) << " |\n";
  }
  auto examples = [&](const char* key, const char* title) {
    if (c.at(key).empty()) return;
    md << "\n" << title << ":\n\n";
    for (const auto& e : c.at(key)) md << "- " << e.get<std::string>() << "\n";
  };
  examples("corrupt_record_examples", "Corrupt records (first few)");
  examples("dataset_skip_examples", "Skipped dataset rows (first few)");
  md << "\n## Sources\n\n```json\n" << card.at("sources").dump(2) << "\n```\n";
  md << "\n## Teacher\n\n```json\n" << card.at("teacher").dump(2) << "\n```\n";
  md << "\n## Settings\n\n```json\n"
     << Ordered{{"sampling", card.at("sampling")},
                {"filters", card.at("filters")},
                {"tokenizer", card.at("tokenizer")},
                {"template", card.at("template")},
                {"topk_logprobs", card.at("topk_logprobs")}}
            .dump(2)
     << "\n```\n";
  return md.str();
}

}  // namespace grpo
