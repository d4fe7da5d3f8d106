// The rollout engine: prompts in, groups of G sampled completions out, with the per-token
// log-probs the learner needs (docs/architecture.md §1, §4). CPU LibTorch; few large ops per step.
//
//   grpo::rollout::Engine engine(model, /*version=*/0, options, &tokenizer);
//   uint64_t id = engine.submit({prompt_ids, /*n=*/8, params});       // any thread
//   while (engine.step()) {}                                          // one thread drives it
//   for (Completion& c : engine.poll()) ...                           // any thread
//
// Threads: submit, cancel, poll, set_weights, stats and wait_for_work may be called from any
// thread at any time; step() from one thread at a time (the engine loop). step() never holds the lock that
// the others take while it computes.
//
// Per step (continuous batching): finished sequences have left; running sequences each feed
// their pending tokens (1 when decoding; a prompt or a recompute is fed in chunks), highest
// priority (oldest request, then sample index) first, within max_batched_tokens; waiting
// requests join while max_seqs, the token budget and free cache pages allow (first come, first
// served: the queue head is never skipped). A request is prefilled ONCE: its prompt is fed by one
// leader sequence, and when the prompt is cached the leader forks into the G samples, which share
// the prompt's pages by reference count; a shared, partially filled last page is copied when a
// sample first writes to it (copy-on-write). When a sequence needs a page and none is free, the
// lowest-priority running sequence is preempted: its pages are released and it waits to be
// recomputed (prompt + tokens so far fed again, its own pages; its next tokens are drawn with the
// same keys, so greedy and seeded results do not change).
//
// Speculative decoding (EngineOptions::speculative, off by default; it acts when the model has an
// MTP module, model/causal_lm.h; Leviathan et al. 2023, with DeepSeek-V3's MTP module as the
// drafter): the MTP module runs over every fed slot (its keys are one more layer of the paged
// cache); after a step that samples a sample's next token it drafts the token after that, its most
// likely one. The next step feeds the pending token and the draft together, and the target's own
// draw of that position (the sampler, its usual key) decides: equal to the draft, the draft is kept
// and the token after it is drawn from the same forward (two tokens for one step); else the draw
// stands and the draft's slot is dropped. This is speculative sampling with the draft distribution
// one-hot(draft) — kept with probability min(1, p(d)/q(d)) = p(d), otherwise a token from
// norm(max(0, p − q)) — realised by the target's draw itself, so every token, log-prob and route is
// bit for bit what the engine draws without drafts, whatever the drafts, the batch or the schedule.
// A forked sample feeds the prompt's last token again with its first one (the MTP entry of that
// slot depends on the sample's own first token).
//
// Ops per step: one forward per distinct chunk length (all decoding samples together: [B, 1], or
// [B, 2] with drafts), the head only on the rows that sample, one batched sampler call; when
// drafting, the MTP module's forward per chunk length and its head on the drafting rows. The cache pool, the page
// tables, slot/index tensors, the gather buffer and the input ids are allocated once and reused
// (PagedBatch, PagePool); nothing is allocated per token outside ATen's own op outputs.
//
// Weights: set_weights(version, state) validates the state (InputError, nothing changed) and
// hands it over; the swap happens at the start of the next step. Policy: RESTART — sequences
// still unfinished at the swap are discarded (pages freed, tokens dropped) and their samples
// start again from the prompt on the new weights, so every Completion is produced by exactly one
// version, the one it reports. Completions finished before the swap keep the old version.
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/causal_lm.h"
#include "model/routes.h"
#include "rollout/finish_reason.h"
#include "rollout/page_pool.h"
#include "rollout/paged_batch.h"
#include "rollout/sampler.h"
#include "tokenizer/tokenizer.h"

namespace grpo::rollout {

struct GenerationParams {
  SamplingParams sampling;       // temperature, top_p, top_k, seed (see sampler.h)
  int64_t max_new_tokens = 256;  // 1 .. EngineOptions::max_new_tokens_limit
  // Generation ends after emitting one of these, or once the decoded text contains one of these
  // strings (needs a tokenizer); the token and the text are kept. The model's EOS ids (and the
  // tokenizer's) always end it too, reported as kEos.
  std::vector<int64_t> stop_token_ids;
  std::vector<std::string> stop_strings;
};

struct Request {
  std::vector<int64_t> prompt;  // token ids, 1 .. max_context of them
  int64_t n = 1;                // samples (the group size G)
  GenerationParams params;
  bool record_routes = false;  // fill Completion::routes of its completions (the experts the MoE routers chose)
};

struct Completion {
  uint64_t request_id = 0;
  int64_t sample_index = 0;        // 0 .. n-1
  std::vector<int64_t> token_ids;  // generated tokens (not the prompt), the stop/EOS token included
  std::vector<float> logprobs;     // one per token: log-prob under the distribution it was drawn from (sampler.h)
  // With a tokenizer: token_ids decoded with added/special tokens kept (R1's <think> tags are
  // often added tokens), except the EOS that ended the completion. Stop strings are matched
  // against this text.
  std::string text;
  FinishReason finish_reason = FinishReason::kLength;
  int64_t weight_version = 0;  // the weights that produced every token
  int64_t prompt_tokens = 0;
  // With Request::record_routes on a MoE model: the experts every fed position went through
  // (prompt + token_ids − 1 positions, model/routes.h), from the weights of weight_version.
  // Otherwise empty.
  Routes routes;
};

// token_ids decoded with added/special tokens kept; ids the tokenizer does not know are dropped.
std::string decode_text(const Tokenizer& tok, const std::vector<int64_t>& ids);

// Whether a completion ends with the token just appended, and why: one of `eos_ids` (kEos), of
// g.stop_token_ids, or a stop string in the decoded text (kStop; `text`, the completion decoded so
// far, is extended by the token here when there are stop strings), or `generated` reaching
// g.max_new_tokens or `total_tokens` (prompt + completion) reaching max_context (kLength).
std::optional<FinishReason> finish_reason_after(int64_t token, const GenerationParams& g,
                                                const std::vector<int64_t>& eos_ids, const Tokenizer* tokenizer,
                                                std::string& text, int64_t generated, int64_t total_tokens,
                                                int64_t max_context);

// The checks every generator makes of a request (InputError naming the field): a prompt of
// 1..max_context ids inside the vocabulary, max_new_tokens >= 1, sampling parameters,
// stop ids inside the vocabulary, non-empty stop strings (which need a tokenizer).
void validate_request(const Request& r, int64_t vocab, int64_t max_context, bool has_tokenizer);

struct EngineOptions {
  int64_t page_size = 16;                // token slots per cache page
  int64_t num_pages = 2048;              // cache capacity: num_pages × page_size token slots
  int64_t max_seqs = 64;                 // sequences in flight (a group counts G)
  int64_t max_batched_tokens = 2048;     // tokens fed per step (prefill chunks + decode); >= max_seqs
  int64_t max_new_tokens_limit = 32768;  // requests asking for more are refused
  int64_t max_context = 0;               // prompt + completion; 0: the model's max_position_embeddings
  int64_t max_queued_requests = 4096;    // submitted but not started; more are refused (EngineFull)
  // (0, 1]: on a GPU, num_pages is instead as many pages as this share of the device's free memory
  // holds when the engine starts (pages_for_memory); 0 (default) or on the CPU: num_pages as given.
  double gpu_memory_fraction = 0;
  // Draft with the model's MTP module (speculative decoding, see above) when it has one, in the
  // steps where at most speculative_max_seqs samples are in flight (a draft is a second token per
  // sequence in the forward: it can only pay while decoding reads weights rather than computes).
  // Neither changes a completion. Off by default: on the CPU it has not paid (README, "Speculative
  // decoding, measured": a MoE model's second token reads other experts, and the MTP module runs
  // over every token to keep its keys).
  bool speculative = false;
  int64_t speculative_max_seqs = 8;
};

// Cache pages of `page_bytes` each that `fraction` of `free_bytes` holds (at least 0).
int64_t pages_for_memory(int64_t free_bytes, double fraction, int64_t page_bytes);

struct EngineStats {
  int64_t weight_version = 0;
  int64_t queued_requests = 0;    // submitted, not yet picked up by the step thread
  int64_t waiting_sequences = 0;  // waiting to start or to be recomputed (a fresh group counts 1)
  int64_t running_sequences = 0;
  int64_t unfinished_samples = 0;  // samples of accepted requests not yet completed
  int64_t page_size = 0, pages_total = 0, pages_used = 0, peak_pages_used = 0;
  int64_t steps = 0;             // steps that ran the model
  int64_t prefill_tokens = 0;    // tokens fed for prompts and recomputes
  int64_t decode_tokens = 0;     // tokens fed one per sample per step
  int64_t generated_tokens = 0;  // tokens sampled
  int64_t draft_tokens = 0;      // MTP drafts verified (fed with the token before them)
  int64_t accepted_drafts = 0;   // of those, kept
  int64_t preemptions = 0;       // sequences that gave their pages up (recomputed later)
  int64_t restarts = 0;          // unfinished samples started again after a weight swap
  int64_t completions = 0;
};

// The engine's queue is full (max_queued_requests): try again later.
// Thread-safety: immutable once thrown; owns its message.
class EngineFull : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thread-safety: see "Threads" above. Owns its page pool, queues and results; shares the model; borrows the tokenizer.
class Engine {
 public:
  // `tokenizer` (optional, must outlive the engine) enables Completion::text and stop strings.
  // `model`: either family (model/causal_lm.h); its cache rows go in the paged pool.
  Engine(std::shared_ptr<const CausalLM> model, int64_t weight_version, EngineOptions options = {},
         const Tokenizer* tokenizer = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request; returns its id. Throws InputError naming the field (prompt,
  // n, max_new_tokens, temperature, top_p, top_k, stop_token_ids, stop_strings) and EngineFull;
  // nothing is queued then.
  uint64_t submit(Request request);
  // Several requests at once, all or none (consecutive ids, taken by the same step); InputError
  // messages start with "requests[i]: ".
  std::vector<uint64_t> submit(std::vector<Request> requests);
  // The checks submit() makes, without queueing (InputError naming the field).
  void validate(const Request& r) const;

  // Drops request `id` (its caller went away): nothing of it reaches poll() from now on (its
  // completions not yet polled are discarded too); its queued or unfinished samples are removed
  // at the start of the next step, which frees their cache pages. Finished-and-polled or unknown
  // ids are ignored.
  void cancel(uint64_t id);

  // One scheduling step (see above). Returns whether work remains (queued, waiting or running).
  bool step();
  // Steps until no work remains; returns everything finished (including earlier unpolled ones).
  std::vector<Completion> run_until_idle();

  // Completions finished since the last poll, in finishing order.
  std::vector<Completion> poll();

  // Builds the new weights from `state` (HF names; float tensors, or FP8 codes + scale_inv for an
  // FP8 engine; the same checks as the model's load_state) and schedules the swap for the next
  // step. Throws InputError (and changes nothing) for a name the model does not have (the MTP
  // modules of a model served without them aside), wrong shapes, dtypes, a NaN or an infinity in
  // any tensor, or a version not above every version given before.
  void set_weights(int64_t version, const std::map<std::string, at::Tensor>& state);

  EngineStats stats() const;
  // The newest version given to set_weights (or the constructor's): every request submitted from
  // now on runs on weights of at least this version.
  int64_t latest_weight_version() const;
  // Blocks until work is queued or `timeout` passes; returns whether there is work.
  bool wait_for_work(std::chrono::milliseconds timeout);

  const EngineOptions& options() const { return options_; }
  const LmSpec& spec() const { return spec_; }
  const nlohmann::json& model_config() const { return model_config_; }  // the model's config.json
  const ModelOptions& model_options() const { return model_options_; }
  // Bytes of cache per token (all layers), and what a standard MHA cache of the same model would
  // need (LmSpec::mha_cache_width: every head's K and V).
  int64_t cache_bytes_per_token() const { return pool_.bytes_per_token(); }
  int64_t mha_cache_bytes_per_token() const;

 private:
  struct Group;
  struct Sequence;
  struct Chunk {
    Sequence* seq;
    int64_t start, tokens;  // slots [start, start + tokens), the last one the draft's when `draft`
    bool draft = false;
  };
  struct Sampled;
  using SeqPtr = std::unique_ptr<Sequence>;

  std::vector<uint64_t> enqueue(std::vector<Request>& validated);
  void take_inbox();
  void drop_cancelled(const std::set<uint64_t>& ids);
  void apply_pending_weights();
  std::vector<Chunk> schedule();
  // Tokens of `s` to feed next within `budget` (its pending ones, and its draft after them).
  int64_t chunk_tokens(const Sequence& s, int64_t budget) const;
  bool speculating() const;
  // Layers of the paged cache: the model's, and one for the MTP module when drafting.
  int64_t cache_layers() const { return spec_.num_hidden_layers + (model_options_.mtp ? 1 : 0); }
  bool make_writable(Sequence& s, int64_t tokens);
  void preempt(Sequence& victim);
  void release_pages(Sequence& s);
  void run(const std::vector<Chunk>& chunks);
  void draw(std::vector<Sampled>& sampled, const at::Tensor& logits);
  void draft_next(const std::vector<std::vector<const Chunk*>>& forwards, const std::vector<at::Tensor>& hidden,
                  const std::map<const Sequence*, Sampled*>& sampled, bool drafts);
  void finish_token(Sequence& s, int64_t token, float logprob);
  void complete(Sequence& s, FinishReason reason);
  void publish_stats();

  const LmSpec spec_;
  const nlohmann::json model_config_;
  const ModelOptions model_options_;
  const EngineOptions options_;
  const Tokenizer* tokenizer_;
  std::vector<int64_t> eos_ids_;

  // Step thread only (model_: written under mutex_ too, set_weights reads it).
  std::shared_ptr<const CausalLM> model_;
  int64_t version_;
  PagePool pool_;
  PagedBatch batch_;
  at::Tensor ids_;  // [B, T] int64 input of the current forward, reused
  std::map<uint64_t, std::shared_ptr<Group>> groups_;
  std::vector<SeqPtr> running_;  // in priority order
  std::vector<SeqPtr> waiting_;  // in priority order
  EngineStats counters_;
  std::mutex step_mutex_;

  // Shared with the other threads, under mutex_.
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::pair<uint64_t, Request>> inbox_;
  std::vector<Completion> done_;
  std::set<uint64_t> cancelled_;  // dropped by cancel(), not yet removed by the step thread
  std::shared_ptr<const CausalLM> pending_model_;
  int64_t pending_version_ = 0, latest_version_ = 0;
  uint64_t next_id_ = 1;
  EngineStats published_;
};

}  // namespace grpo::rollout
