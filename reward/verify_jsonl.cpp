#include "reward/verify_jsonl.h"

#include <map>
#include <vector>

#include "common/error.h"
#include "common/json_parse.h"

namespace grpo::reward {
namespace {

using nlohmann::json;
using Line = nlohmann::ordered_json;  // output lines keep their fields in this order

// One input line, parsed.
struct Item {
  int64_t line = 0;
  json id;  // echoed when given
  VerifyRequest request;
  std::map<std::string, double> weights;
  std::string error;  // set: the line is bad
};

Item parse_item(const std::string& text, int64_t line, const json& base_options, const Limits& limits) {
  Item it;
  it.line = line;
  try {
    json j = parse_json(text, "", limits.max_json_depth);
    if (!j.is_object()) throw InputError("expected a JSON object");
    if (j.contains("id")) it.id = j["id"];
    for (auto f = j.begin(); f != j.end(); ++f)
      if (f.key() != "completion" && f.key() != "reference" && f.key() != "id" && f.key() != "options" &&
          f.key() != "completion_tokens" && f.key() != "weights")
        throw InputError("unknown field '" + f.key() +
                         "' (expected completion, reference, id, options, completion_tokens, weights)");
    if (!j.contains("completion") || !j["completion"].is_string())
      throw InputError("field 'completion': required, a string");
    it.request.completion = j["completion"].get<std::string>();
    if (j.contains("reference")) it.request.reference = j["reference"];
    it.request.options = base_options;
    if (j.contains("options")) {
      if (!j["options"].is_object()) throw InputError("field 'options': expected an object");
      if (it.request.options.is_null()) it.request.options = json::object();
      it.request.options.merge_patch(j["options"]);
    }
    if (j.contains("completion_tokens")) {
      if (!j["completion_tokens"].is_number_integer() || j["completion_tokens"].get<int64_t>() < 0)
        throw InputError("field 'completion_tokens': expected a non-negative integer");
      it.request.completion_tokens = j["completion_tokens"].get<int64_t>();
    }
    if (j.contains("weights")) {
      if (!j["weights"].is_object()) throw InputError("field 'weights': expected {component: number}");
      for (auto w = j["weights"].begin(); w != j["weights"].end(); ++w) {
        if (!w.value().is_number()) throw InputError("field 'weights." + w.key() + "': expected a number");
        it.weights[w.key()] = w.value().get<double>();
      }
    }
    it.request.limits = limits;
  } catch (const json::exception& e) {
    it.error = std::string("invalid JSON: ") + e.what();
  } catch (const InputError& e) {
    it.error = e.what();
  }
  return it;
}

Line error_line(const Item& it, const std::string& error) {
  Line out = Line::object();
  out["line"] = it.line;
  if (!it.id.is_null()) out["id"] = it.id;
  out["error"] = error;
  return out;
}

Line result_line(const Item& it, const VerifyResult& r) {
  Line out = Line::object();
  if (!it.id.is_null()) out["id"] = it.id;
  out["reward"] = r.reward;
  out["correct"] = r.correct;
  out["reason"] = r.reason;
  out["components"] = r.components;
  if (!r.extracted.empty()) out["extracted"] = r.extracted;
  return out;
}

}  // namespace

int64_t verify_jsonl(const Scorer& scorer, const VerifyJsonlOptions& options, std::istream& in, std::ostream& out) {
  if (!options.options.is_null() && !options.options.is_object())
    throw InputError("verifier options: expected a JSON object");
  if (options.batch < 1) throw InputError("batch: must be >= 1");
  scorer.require(options.verifier);
  int64_t line_no = 0, failed = 0;
  std::vector<Item> items;
  auto flush = [&] {
    std::vector<VerifyRequest> requests;
    std::vector<std::map<std::string, double>> weights;
    std::vector<size_t> index;  // requests[k] is items[index[k]]
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].error.empty()) continue;
      requests.push_back(items[i].request);
      weights.push_back(items[i].weights);
      index.push_back(i);
    }
    const std::vector<std::string> verifiers(requests.size(), options.verifier);
    const std::vector<ScoreOutcome> outcomes =
        scorer.score(requests, verifiers, weights, 1, static_cast<size_t>(options.batch));
    std::vector<Line> lines(items.size());
    for (size_t k = 0; k < outcomes.size(); ++k) {
      const Item& it = items[index[k]];
      lines[index[k]] =
          outcomes[k].error.empty() ? result_line(it, outcomes[k].result) : error_line(it, outcomes[k].error);
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].error.empty()) lines[i] = error_line(items[i], items[i].error);
      failed += lines[i].contains("error");
      out << lines[i].dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
    out.flush();
    items.clear();
  };
  for (std::string text; std::getline(in, text);) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    items.push_back(parse_item(text, line_no, options.options, scorer.limits()));
    if (static_cast<int64_t>(items.size()) >= options.batch) flush();
  }
  flush();
  return failed;
}

}  // namespace grpo::reward
