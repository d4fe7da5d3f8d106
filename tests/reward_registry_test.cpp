// VerifierRegistry: built-ins, config-defined composites and remotes, and config errors that name
// the file and key.
#include <gtest/gtest.h>

#include "file_testutil.h"
#include "reward/registry.h"
#include "reward/server.h"

using namespace grpo::reward;
using grpo::Config;

namespace {

using ::grpo::ckpt_test::error_of;

std::shared_ptr<const VerifierRegistry> from_yaml(const std::string& yaml) {
  return registry_from_config(Config::parse(yaml, "reward.yaml"));
}

}  // namespace

TEST(Registry, BuiltinsAreRegistered) {
  VerifierRegistry r;
  register_builtin(r);
  EXPECT_EQ(r.names(), (std::vector<std::string>{"code", "format", "language", "math", "overlong"}));
  EXPECT_TRUE(r.is_builtin("format"));
  EXPECT_EQ(r.get("format")->name(), "format");
  EXPECT_EQ(error_of([&] { r.get("nope"); }),
            "unknown verifier 'nope' (registered: code, format, language, math, overlong)");
  EXPECT_THROW(r.get("nope"), UnknownVerifier);
  EXPECT_NE(error_of([&] { register_builtin(r); }).find("'format' is already registered (as builtin)"),
            std::string::npos);
  // A built-in's further instances merge options over its defaults.
  VerifierRegistry d;
  register_builtin(d, {{"overlong", {{"max_len", 8}, {"cache", 4}}}});
  VerifyRequest req;
  req.completion = "a b c d e f";  // 6 words: (4 - 6) / 4
  EXPECT_DOUBLE_EQ(d.get("overlong")->verify(req).reward, -0.5);
  // cache 2 over the defaults: free up to 8 - 2 = 6 words -> no penalty.
  EXPECT_DOUBLE_EQ(d.make_builtin("overlong", {{"cache", 2}})->verify(req).reward, 0.0);
}

TEST(Registry, CodeStartsOnFirstUseUnlessConfigured) {
  VerifierRegistry r;
  register_builtin(r);
  EXPECT_EQ(r.list()[0].name, "code");
  EXPECT_NE(r.list()[0].description.find("(starts on first use)"), std::string::npos);
  auto code = r.get("code");  // starts its sandbox now
  EXPECT_EQ(code->name(), "code");
  EXPECT_EQ(r.get("code"), code);  // made once
  EXPECT_EQ(r.list()[0].description, code->description());
  // Named in the config: made at once, so bad options fail at startup.
  EXPECT_NE(error_of([] { from_yaml("verifiers:\n  code: {reward: most}\n"); }).find("key 'verifiers'"),
            std::string::npos);
}

TEST(Registry, FromConfig) {
  auto r = from_yaml(R"(
verifiers:
  format: {answer_tags: true}
  overlong: {max_len: 100, cache: 20}
composites:
  shaped:                       # uses a composite defined after it
    base: {verifier: basic, weight: 2}
    language: {target: "en", weight: 0.5}
  basic:
    format: {weight: 1.0}
    overlong: {max_len: 10, cache: 5}
)");
  EXPECT_EQ(r->names(),
            (std::vector<std::string>{"basic", "code", "format", "language", "math", "overlong", "shaped"}));
  auto list = r->list();
  EXPECT_EQ(list[0].kind, "composite");
  EXPECT_EQ(list[2].kind, "builtin");
  EXPECT_EQ(list[0].description, "composite: 1*format(format) + 1*overlong(overlong)");
  VerifyRequest req;
  req.completion = "<think>just words</think> <answer>4</answer>";  // 4 words, format ok (tags required)
  VerifyResult out = r->get("shaped")->verify(req);
  // basic = 1 (format) + 0 (4 words <= 5); shaped = 2*1 + 0.5*1.
  EXPECT_DOUBLE_EQ(out.reward, 2.5);
  EXPECT_EQ(out.components, (std::map<std::string, double>{{"base", 1.0}, {"language", 1.0}}));
  req.completion = "<think>just words</think> 4";  // config default answer_tags: true -> format 0
  EXPECT_DOUBLE_EQ(r->get("format")->verify(req).reward, 0.0);
}

TEST(Registry, ConfigErrorsNameFileAndKey) {
  EXPECT_EQ(error_of([] { from_yaml("sever: {}\n"); }),
            "reward.yaml: key 'sever': unknown key (did you mean 'server'?) (expected one of: composites, http, "
            "limits, remote, server, verifiers)");
  EXPECT_EQ(error_of([] { from_yaml("verifiers:\n  fromat: {}\n"); }),
            "reward.yaml: key 'verifiers': verifiers.fromat: not a built-in verifier (built-ins: format, language, "
            "overlong, math, code)");
  EXPECT_NE(error_of([] {
              from_yaml("verifiers:\n  overlong: {max_len: 10, cache: 0}\n");
            }).find("reward.yaml: key 'verifiers': verifier 'overlong': option 'cache': must be in (0, max_len=10]"),
            std::string::npos);
  EXPECT_EQ(
      error_of([] { from_yaml("composites:\n  r1:\n    accuracy: {verifier: mth}\n"); }),
      "reward.yaml: key 'composites.r1': unknown verifier 'mth' (registered: code, format, language, math, overlong)");
  EXPECT_EQ(error_of([] { from_yaml("composites:\n  a: {x: {verifier: b}}\n  b: {y: {verifier: a}}\n"); }),
            "reward.yaml: key 'composites': composites refer to each other in a cycle (a, …)");
  EXPECT_EQ(error_of([] { from_yaml("composites:\n  a: {x: {verifier: a}}\n"); }),
            "reward.yaml: key 'composites.a': a composite cannot contain itself");
  EXPECT_EQ(error_of([] { from_yaml("composites:\n  a:\n    format: {weight: x}\n"); }),
            "reward.yaml: key 'composites': a.format.weight: expected a number");
  EXPECT_EQ(error_of([] { from_yaml("remote:\n  py: {timeout_ms: 5}\n"); }),
            "reward.yaml: key 'remote.py.address': required key is missing");
  EXPECT_NE(error_of([] {
              from_yaml("remote:\n  py: {address: 'x:1', retry: 5}\n");
            }).find("reward.yaml: key 'remote.py.retry': unknown key"),
            std::string::npos);
  EXPECT_EQ(error_of([] { from_yaml("remote:\n  format: {address: '127.0.0.1:1'}\n"); }),
            "reward.yaml: key 'remote.format': verifier 'format' is already registered (as builtin)");
}

TEST(Registry, YamlToJsonKeepsQuotedStrings) {
  auto j = yaml_to_json(YAML::Load("{a: 42, b: '42', c: 1.5, d: true, e: null, f: [x, 2], g: \"true\"}"));
  EXPECT_EQ(
      j, nlohmann::json::parse(R"({"a": 42, "b": "42", "c": 1.5, "d": true, "e": null, "f": ["x", 2], "g": "true"})"));
}

TEST(ServerOptions, FromConfigWithErrorsNamingKeys) {
  auto c = Config::parse(
      "server: {address: '127.0.0.1:0', workers: 2, max_queue: 8, max_message_mb: 4}\n"
      "limits: {max_completion_bytes: 1000, timeout_ms: 500}\n",
      "reward.yaml");
  ServerOptions o = server_options_from_config(c);
  EXPECT_EQ(o.address, "127.0.0.1:0");
  EXPECT_EQ(o.workers, 2);
  EXPECT_EQ(o.max_queue, 8);
  EXPECT_EQ(o.max_message_bytes, 4 << 20);
  EXPECT_EQ(o.max_pending_bytes, 1LL << 30);
  EXPECT_EQ(o.limits.max_completion_bytes, 1000);
  EXPECT_EQ(o.limits.timeout_ms, 500);
  EXPECT_EQ(o.limits.memory_mb, Limits().memory_mb);
  EXPECT_EQ(error_of([] { server_options_from_config(Config::parse("server: {workers: 0}\n", "r.yaml")); }),
            "r.yaml: key 'server.workers': must be >= 1, got 0");
  EXPECT_EQ(error_of([] { server_options_from_config(Config::parse("server: {workers: many}\n", "r.yaml")); }),
            "r.yaml: key 'server.workers': expected an integer, got \"many\"");
  EXPECT_NE(error_of([] {
              server_options_from_config(Config::parse("server: {max_message_mb: 8, max_pending_mb: 4}\n", "r.yaml"));
            }).find("r.yaml: key 'server.max_pending_mb': must be >= server.max_message_mb"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              server_options_from_config(Config::parse("server: {max_qeue: 3}\n", "r.yaml"));
            }).find("r.yaml: key 'server.max_qeue': unknown key"),
            std::string::npos);
}
