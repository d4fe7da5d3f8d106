// `grpo verify`: score JSONL completions with a verifier, in-process or through a reward server.
//
//   in : {"completion": "...", "reference": "42" | {...}, "id": ..., "options": {...},
//         "completion_tokens": N, "weights": {"accuracy": 1.0}}      (all but completion optional)
//   out: {"id": ..., "reward": 1.0, "correct": true, "reason": "...", "components": {...},
//         "extracted": "..."}   or, for a line that could not be scored,
//        {"line": 3, "id": ..., "error": "..."}
#include <iostream>
#include <string>
#include <vector>

#include "common/cli.h"
#include "reward/client.h"
#include "reward/registry.h"
#include "reward/scoring.h"
#include "reward/server.h"
#include "reward/wire.h"

namespace {

using namespace grpo::reward;
using nlohmann::json;

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
    json j = json::parse(text);
    if (!j.is_object()) throw grpo::InputError("expected a JSON object");
    if (j.contains("id")) it.id = j["id"];
    for (auto f = j.begin(); f != j.end(); ++f)
      if (f.key() != "completion" && f.key() != "reference" && f.key() != "id" && f.key() != "options" &&
          f.key() != "completion_tokens" && f.key() != "weights")
        throw grpo::InputError("unknown field '" + f.key() +
                               "' (expected completion, reference, id, options, completion_tokens, weights)");
    if (!j.contains("completion") || !j["completion"].is_string())
      throw grpo::InputError("field 'completion': required, a string");
    it.request.completion = j["completion"].get<std::string>();
    if (j.contains("reference")) it.request.reference = j["reference"];
    it.request.options = base_options;
    if (j.contains("options")) {
      if (!j["options"].is_object()) throw grpo::InputError("field 'options': expected an object");
      if (it.request.options.is_null()) it.request.options = json::object();
      it.request.options.merge_patch(j["options"]);
    }
    if (j.contains("completion_tokens")) {
      if (!j["completion_tokens"].is_number_integer() || j["completion_tokens"].get<int64_t>() < 0)
        throw grpo::InputError("field 'completion_tokens': expected a non-negative integer");
      it.request.completion_tokens = j["completion_tokens"].get<int64_t>();
    }
    if (j.contains("weights")) {
      if (!j["weights"].is_object()) throw grpo::InputError("field 'weights': expected {component: number}");
      for (auto w = j["weights"].begin(); w != j["weights"].end(); ++w) {
        if (!w.value().is_number()) throw grpo::InputError("field 'weights." + w.key() + "': expected a number");
        it.weights[w.key()] = w.value().get<double>();
      }
    }
    it.request.limits = limits;
  } catch (const json::exception& e) {
    it.error = std::string("invalid JSON: ") + e.what();
  } catch (const grpo::InputError& e) {
    it.error = e.what();
  }
  return it;
}

// Output lines keep their fields in this order.
using Line = nlohmann::ordered_json;

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

void emit(const Line& j) { std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n"; }

grpo::Config load_config(const grpo::Args& a) {
  if (a.has("config")) return grpo::Config::load(a.get("config"), a.overrides());
  grpo::Config c = grpo::Config::parse("", "<defaults>");
  for (const auto& o : a.overrides()) c.apply_override(o);
  return c;
}

int run_verify(const grpo::Args& a) {
  const std::string verifier = a.get("verifier");
  json base_options;
  if (a.has("options")) {
    try {
      base_options = json::parse(a.get("options"));
    } catch (const json::exception& e) {
      throw grpo::InputError(std::string("--options: invalid JSON: ") + e.what());
    }
    if (!base_options.is_object()) throw grpo::InputError("--options: expected a JSON object");
  }
  const int batch_size = a.get_int("batch");
  if (batch_size < 1) throw grpo::InputError("--batch: must be >= 1");

  // Local: the registry in this process. Remote: the server's, limits included (0 = its own).
  std::shared_ptr<const VerifierRegistry> registry;
  std::shared_ptr<const Verifier> local;
  std::unique_ptr<RewardClient> client;
  Limits limits;
  if (a.has("server")) {
    if (a.has("config")) throw grpo::InputError("--config and --server: the server uses its own config");
    ClientOptions o;
    o.timeout_ms = a.get_int("timeout-ms");
    o.retries = 2;
    client = std::make_unique<RewardClient>(a.get("server"), o);
    limits = Limits{0, 0, 0, 0};
    std::string names;
    bool known = false;
    for (const auto& v : client->list_verifiers()) {
      known = known || v.name() == verifier;
      names += (names.empty() ? "" : ", ") + v.name();
    }
    if (!known)
      throw grpo::InputError("unknown verifier '" + verifier + "' at " + a.get("server") + " (registered: " + names +
                             ")");
  } else {
    grpo::Config config = load_config(a);
    registry = registry_from_config(config);
    limits = server_options_from_config(config).limits;
    local = registry->get(verifier);  // UnknownVerifier names the registered ones
  }

  int64_t line_no = 0, failed = 0;
  std::string text;
  std::vector<Item> items;
  auto flush = [&] {
    if (client) {
      std::vector<v1::ScoreRequest> requests;
      std::vector<size_t> index;  // requests[k] is items[index[k]]
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].error.empty()) continue;
        v1::ScoreRequest r = request_to_proto(items[i].request, verifier);
        for (const auto& [name, w] : items[i].weights) (*r.mutable_weights())[name] = w;
        requests.push_back(std::move(r));
        index.push_back(i);
      }
      std::vector<v1::ScoreResponse> responses;
      if (!requests.empty()) responses = client->score_batch(requests);  // RpcError: give up
      std::vector<Line> out(items.size());
      for (size_t k = 0; k < responses.size(); ++k) {
        const Item& it = items[index[k]];
        out[index[k]] = responses[k].error_code() ? error_line(it, responses[k].error_message())
                                                  : result_line(it, result_from_proto(responses[k]));
      }
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].error.empty()) out[i] = error_line(items[i], items[i].error);
        failed += out[i].contains("error");
        emit(out[i]);
      }
    } else {
      for (const Item& it : items) {
        Line out;
        if (!it.error.empty()) {
          out = error_line(it, it.error);
        } else {
          try {
            out = result_line(it, score(*local, it.request, it.weights));
          } catch (const std::exception& e) {
            out = error_line(it, e.what());
          }
        }
        failed += out.contains("error");
        emit(out);
      }
    }
    std::cout.flush();
    items.clear();
  };
  while (std::getline(std::cin, text)) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    items.push_back(parse_item(text, line_no, base_options, limits));
    if (static_cast<int>(items.size()) >= batch_size) flush();
  }
  flush();
  if (failed) std::cerr << "grpo verify: " << failed << " line(s) could not be scored\n";
  return failed ? 1 : 0;
}

}  // namespace

GRPO_COMMAND("verify",
             "score JSONL completions on stdin with a verifier (in-process or via --server); one JSON line out "
             "per line in, an {\"error\"} line for a line that cannot be scored (then exit status 1)",
             "[key.path=value ...] < in.jsonl > out.jsonl",
             ({{"verifier", "NAME", "verifier to use: format, language, overlong, a composite, a remote, ...", true},
               {"config", "PATH", "reward config for the in-process registry (configs/reward.yaml)", false},
               {"server", "ADDR", "score through the reward server at host:port instead", false},
               {"options", "JSON", "verifier options for every line (a line's \"options\" override them)", false},
               {"batch", "N", "lines per ScoreBatch call with --server", false, "64"},
               {"timeout-ms", "N", "deadline of each call with --server", false, "60000"}}),
             run_verify);
