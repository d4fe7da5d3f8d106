#include "rollout/engine.h"

#include <ATen/core/grad_mode.h>
#include <algorithm>
#include <climits>
#include <cmath>

#include "common/error.h"
#include "common/memory_limit.h"
#include "model/device.h"
#include "model/routes_tensor.h"

namespace grpo::rollout {

struct Engine::Group {
  uint64_t id;
  Request request;
  int64_t unfinished;  // samples not completed yet
};

// A sequence in the cache: a group's leader (feeds the prompt once, then forks into `samples`)
// or one sample. tokens[0, cached) have their keys in `pages`; the rest are fed next.
struct Engine::Sequence {
  std::shared_ptr<Group> group;
  int64_t sample = -1;           // -1: leader
  std::vector<int64_t> samples;  // leader only: the sample indices it forks into
  std::vector<int64_t> tokens;   // prompt + generated
  std::vector<float> logprobs;   // one per generated token
  Routes routes;                 // with record_routes: of tokens[0, cached)
  std::vector<int32_t> pages;
  int64_t cached = 0;
  std::string text;  // decoded so far (for stop strings)
  bool done = false;
  int64_t draft = -1;  // speculative decoding: the MTP module's draft of token tokens.size() (-1: none)

  bool leader() const { return sample < 0; }
  int64_t prompt_len() const { return static_cast<int64_t>(group->request.prompt.size()); }
  int64_t generated() const { return static_cast<int64_t>(tokens.size()) - prompt_len(); }
  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - cached; }
  int64_t width() const { return leader() ? static_cast<int64_t>(samples.size()) : 1; }  // sequences it stands for
  std::pair<uint64_t, int64_t> priority() const { return {group->id, sample}; }          // smaller runs first
};

namespace {

template <typename Ptr>
void insert_by_priority(std::vector<Ptr>& list, Ptr s) {
  auto at = std::lower_bound(list.begin(), list.end(), s,
                             [](const Ptr& a, const Ptr& b) { return a->priority() < b->priority(); });
  list.insert(at, std::move(s));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void check_option(bool ok, const std::string& what) {
  if (!ok) throw InputError("engine options: " + what);
}

}  // namespace

std::string decode_text(const Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<int32_t> known;
  for (int64_t id : ids)
    if (id < tok.vocab_size()) known.push_back(static_cast<int32_t>(id));
  try {
    return tok.decode(known, /*skip_special=*/false);
  } catch (const InputError&) {  // an id in a gap of the vocabulary: decode the others
    std::string text;
    for (int32_t id : known) {
      try {
        text += tok.decode({id}, false);
      } catch (const InputError&) {}
    }
    return text;
  }
}

std::optional<FinishReason> finish_reason_after(int64_t token, const GenerationParams& g,
                                                const std::vector<int64_t>& eos_ids, const Tokenizer* tokenizer,
                                                std::string& text, int64_t generated, int64_t total_tokens,
                                                int64_t max_context) {
  auto has = [token](const std::vector<int64_t>& ids) { return std::find(ids.begin(), ids.end(), token) != ids.end(); };
  if (has(eos_ids)) return FinishReason::kEos;
  if (has(g.stop_token_ids)) return FinishReason::kStop;
  if (!g.stop_strings.empty() && tokenizer) {
    const size_t before = text.size();
    text += decode_text(*tokenizer, {token});
    for (const std::string& stop : g.stop_strings)
      if (text.find(stop, before >= stop.size() ? before - stop.size() + 1 : 0) != std::string::npos)
        return FinishReason::kStop;
  }
  if (generated >= g.max_new_tokens || total_tokens >= max_context) return FinishReason::kLength;
  return std::nullopt;
}

Engine::Engine(std::shared_ptr<const CausalLM> model, int64_t weight_version, EngineOptions options,
               const Tokenizer* tokenizer)
    : spec_(model->spec()),
      model_config_(model->config_json()),
      model_options_([&] {
        ModelOptions o = model->options();
        o.mtp = options.speculative && model->has_mtp();  // drafts with it (new weights may leave it out)
        return o;
      }()),
      options_([&] {
        if (options.max_context == 0) options.max_context = spec_.max_position_embeddings;
        check_option(options.page_size > 0, "page_size must be > 0");
        check_option(options.gpu_memory_fraction >= 0 && options.gpu_memory_fraction <= 1,
                     "gpu_memory_fraction must be in [0, 1], got " + std::to_string(options.gpu_memory_fraction));
        if (options.gpu_memory_fraction > 0 && model_options_.device.is_cuda()) {
          const int64_t free_bytes =
              cuda_memory_of(model_options_.device, "engine options: gpu_memory_fraction").free_bytes;
          const int64_t page_bytes = options.page_size * cache_layers() * spec_.cache_width *
                                     static_cast<int64_t>(c10::elementSize(model_options_.compute_dtype));
          options.num_pages = pages_for_memory(free_bytes, options.gpu_memory_fraction, page_bytes);
          check_option(options.num_pages > 0, "gpu_memory_fraction " + std::to_string(options.gpu_memory_fraction) +
                                                  " of the " + std::to_string(free_bytes >> 20) + " MiB free on " +
                                                  device_name(model_options_.device) + " holds no cache page");
        }
        check_option(options.num_pages > 0, "num_pages must be > 0");
        const double cache_bytes = static_cast<double>(options.num_pages) * static_cast<double>(options.page_size) *
                                   static_cast<double>(cache_layers() * spec_.cache_width) *
                                   static_cast<double>(c10::elementSize(model_options_.compute_dtype));
        const std::string shortfall = model_options_.device.is_cpu() ? memory_shortfall(cache_bytes) : "";
        check_device_memory(model_options_.device, static_cast<int64_t>(cache_bytes),
                            "rollout engine option num_pages (the latent cache: " + std::to_string(options.num_pages) +
                                " pages of " + std::to_string(options.page_size) + " tokens)");
        check_option(shortfall.empty(), "num_pages: " + std::to_string(options.num_pages) + " pages of " +
                                            std::to_string(options.page_size) + " tokens (the latent cache) " +
                                            shortfall);
        check_option(options.num_pages <= INT32_MAX,
                     "num_pages must be <= 2147483647 (page ids are 32-bit), got " + std::to_string(options.num_pages));
        check_option(options.max_seqs > 0, "max_seqs must be > 0");
        check_option(options.max_batched_tokens >= options.max_seqs,
                     "max_batched_tokens (" + std::to_string(options.max_batched_tokens) + ") must be >= max_seqs (" +
                         std::to_string(options.max_seqs) + ")");
        check_option(options.max_new_tokens_limit > 0, "max_new_tokens_limit must be > 0");
        check_option(options.max_context > 0, "max_context must be > 0");
        check_option(options.max_queued_requests > 0, "max_queued_requests must be > 0");
        return options;
      }()),
      tokenizer_(tokenizer),
      eos_ids_(spec_.eos_token_ids),
      model_(std::move(model)),
      version_(weight_version),
      pool_(cache_layers(), options_.num_pages, options_.page_size, spec_.cache_width, model_options_.compute_dtype,
            model_options_.device),
      batch_(pool_),
      ids_(at::empty({0, 0}, at::kLong)),
      latest_version_(weight_version) {
  if (tokenizer_ && tokenizer_->eos_id() >= 0) eos_ids_.push_back(tokenizer_->eos_id());
  publish_stats();
}

Engine::~Engine() = default;

int64_t pages_for_memory(int64_t free_bytes, double fraction, int64_t page_bytes) {
  if (free_bytes <= 0 || fraction <= 0 || page_bytes <= 0) return 0;
  return static_cast<int64_t>(std::floor(static_cast<double>(free_bytes) * fraction / static_cast<double>(page_bytes)));
}

int64_t Engine::mha_cache_bytes_per_token() const {
  return spec_.num_hidden_layers * spec_.mha_cache_width *
         static_cast<int64_t>(c10::elementSize(model_options_.compute_dtype));
}

void validate_request(const Request& r, int64_t vocab, int64_t max_context, bool has_tokenizer) {
  const int64_t p = static_cast<int64_t>(r.prompt.size());
  const GenerationParams& g = r.params;
  if (r.prompt.empty()) throw InputError("prompt: empty (a request needs at least one token)");
  if (p > max_context)
    throw InputError("prompt: " + std::to_string(p) + " tokens exceed the context of " + std::to_string(max_context) +
                     " (max_context)");
  for (size_t i = 0; i < r.prompt.size(); ++i)
    if (r.prompt[i] < 0 || r.prompt[i] >= vocab)
      throw InputError("prompt[" + std::to_string(i) + "]: token id " + std::to_string(r.prompt[i]) +
                       " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  if (g.max_new_tokens < 1) throw InputError("max_new_tokens: must be >= 1, got " + std::to_string(g.max_new_tokens));
  validate_sampling(g.sampling);
  for (size_t i = 0; i < g.stop_token_ids.size(); ++i)
    if (g.stop_token_ids[i] < 0 || g.stop_token_ids[i] >= vocab)
      throw InputError("stop_token_ids[" + std::to_string(i) + "]: token id " + std::to_string(g.stop_token_ids[i]) +
                       " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  if (!g.stop_strings.empty() && !has_tokenizer)
    throw InputError("stop_strings: need a tokenizer (the engine has none)");
  for (size_t i = 0; i < g.stop_strings.size(); ++i)
    if (g.stop_strings[i].empty()) throw InputError("stop_strings[" + std::to_string(i) + "]: empty");
}

void Engine::validate(const Request& r) const {
  validate_request(r, spec_.vocab_size, options_.max_context, tokenizer_ != nullptr);
  const int64_t p = static_cast<int64_t>(r.prompt.size());
  const GenerationParams& g = r.params;
  if (r.n < 1 || r.n > options_.max_seqs)
    throw InputError("n: the number of samples must be in [1, " + std::to_string(options_.max_seqs) +
                     "] (max_seqs), got " + std::to_string(r.n));
  if (g.max_new_tokens > options_.max_new_tokens_limit)
    throw InputError("max_new_tokens: " + std::to_string(g.max_new_tokens) + " exceeds the limit of " +
                     std::to_string(options_.max_new_tokens_limit) + " (max_new_tokens_limit)");
  const int64_t longest = std::min(p + g.max_new_tokens, options_.max_context);
  if (ceil_div(longest, options_.page_size) > options_.num_pages)
    throw InputError("max_new_tokens: prompt (" + std::to_string(p) + ") + max_new_tokens (" +
                     std::to_string(g.max_new_tokens) + ") need " +
                     std::to_string(ceil_div(longest, options_.page_size)) + " cache pages, the engine has " +
                     std::to_string(options_.num_pages) + " (num_pages)");
}

uint64_t Engine::submit(Request request) {
  validate(request);
  std::vector<Request> one;
  one.push_back(std::move(request));
  return enqueue(one).front();
}

std::vector<uint64_t> Engine::submit(std::vector<Request> requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      validate(requests[i]);
    } catch (const InputError& e) {
      throw InputError("requests[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return enqueue(requests);
}

std::vector<uint64_t> Engine::enqueue(std::vector<Request>& requests) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (static_cast<int64_t>(inbox_.size() + requests.size()) > options_.max_queued_requests)
    throw EngineFull("rollout engine: " + std::to_string(inbox_.size()) + " requests queued, " +
                     std::to_string(requests.size()) + " more exceed max_queued_requests (" +
                     std::to_string(options_.max_queued_requests) + "); try again later");
  std::vector<uint64_t> ids;
  for (Request& r : requests) {
    ids.push_back(next_id_++);
    inbox_.emplace_back(ids.back(), std::move(r));
  }
  work_.notify_all();
  return ids;
}

namespace {

// True when every value of `t` is finite. FP8 e4m3fn has no infinity; its NaN is S.1111.111.
bool all_finite(const at::Tensor& t) {
  if (t.scalar_type() == at::kFloat8_e4m3fn) {
    const at::Tensor bits = t.contiguous().view(at::kByte);
    return !at::bitwise_and(bits, 0x7f).eq(0x7f).any().item<bool>();
  }
  if (!at::isFloatingType(t.scalar_type())) return true;  // load_state names the dtype
  return at::isfinite(t).all().item<bool>();
}

// What load_state lets pass (it reads checkpoints, which may hold more) but a weight update must
// not carry: names the model does not have, except the MTP modules (layers num_hidden_layers ..
// + num_nextn_predict_layers - 1) of a trainer that has them, and non-finite values.
void check_state(const CausalLM& model, const std::map<std::string, at::Tensor>& state, const std::string& source) {
  const std::map<std::string, at::Tensor> have = model.state_dict();
  const std::string layers = "model.layers.";
  const int64_t first_mtp = model.spec().num_hidden_layers;
  const int64_t end_mtp = first_mtp + model.config_json().value("num_nextn_predict_layers", int64_t{0});
  for (const auto& [name, t] : state) {
    const int64_t layer = name.rfind(layers, 0) == 0 ? std::atoll(name.c_str() + layers.size()) : -1;
    const bool mtp = layer >= first_mtp && layer < end_mtp;
    if (!have.count(name) && !mtp)
      throw InputError(source + ": tensor '" + name + "' is not a tensor of this " + model.spec().model_type +
                       " model (" + std::to_string(have.size()) + " tensors)");
    if (!all_finite(t))
      throw InputError(source + ": tensor '" + name + "' holds NaN or infinite values; the weights stay as they are");
  }
}

}  // namespace

void Engine::set_weights(int64_t version, const std::map<std::string, at::Tensor>& state) {
  auto check_version = [&] {
    if (version <= latest_version_)
      throw InputError("version: " + std::to_string(version) + " is not above the latest version " +
                       std::to_string(latest_version_));
  };
  std::shared_ptr<const CausalLM> current;  // for its architecture
  {
    std::lock_guard<std::mutex> lock(mutex_);
    check_version();
    current = model_;
  }
  const std::string source = "weights version " + std::to_string(version);
  ModelOptions options = model_options_;  // without MTP tensors the new version does not draft
  options.mtp =
      options.mtp && state.count("model.layers." + std::to_string(spec_.num_hidden_layers) + ".eh_proj.weight");
  std::shared_ptr<CausalLM> model = current->make_empty(options);
  model->load_state(state, source);
  check_state(*current, state, source);
  std::lock_guard<std::mutex> lock(mutex_);
  check_version();
  pending_model_ = std::move(model);
  pending_version_ = latest_version_ = version;
  work_.notify_all();
}

void Engine::cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto queued = std::find_if(inbox_.begin(), inbox_.end(), [id](const auto& r) { return r.first == id; });
  if (queued != inbox_.end()) {
    inbox_.erase(queued);
    return;
  }
  done_.erase(std::remove_if(done_.begin(), done_.end(), [id](const Completion& c) { return c.request_id == id; }),
              done_.end());
  if (id < next_id_) cancelled_.insert(id);
  work_.notify_all();
}

int64_t Engine::latest_weight_version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return latest_version_;
}

std::vector<Completion> Engine::poll() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Completion> out;
  out.swap(done_);
  return out;
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  EngineStats s = published_;
  s.queued_requests = static_cast<int64_t>(inbox_.size());
  return s;
}

bool Engine::wait_for_work(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto busy = [&] {
    return !inbox_.empty() || !cancelled_.empty() || pending_model_ ||
           published_.running_sequences + published_.waiting_sequences > 0;
  };
  return work_.wait_for(lock, timeout, busy);
}

std::vector<Completion> Engine::run_until_idle() {
  while (step()) {}
  return poll();
}

bool Engine::step() {
  std::lock_guard<std::mutex> step_lock(step_mutex_);
  take_inbox();
  apply_pending_weights();
  std::vector<Chunk> chunks = schedule();
  if (!chunks.empty()) {
    run(chunks);
    ++counters_.steps;
  }
  publish_stats();
  std::lock_guard<std::mutex> lock(mutex_);
  return !inbox_.empty() || !cancelled_.empty() || pending_model_ || !running_.empty() || !waiting_.empty();
}

void Engine::take_inbox() {
  std::deque<std::pair<uint64_t, Request>> arrived;
  std::set<uint64_t> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    arrived.swap(inbox_);
    cancelled.swap(cancelled_);
  }
  drop_cancelled(cancelled);
  for (auto& [id, request] : arrived) {
    auto group = std::make_shared<Group>(Group{id, std::move(request), 0});
    group->unfinished = group->request.n;
    auto leader = std::make_unique<Sequence>();
    leader->group = group;
    for (int64_t k = 0; k < group->request.n; ++k) leader->samples.push_back(k);
    leader->tokens = group->request.prompt;
    groups_[id] = group;
    insert_by_priority(waiting_, std::move(leader));
  }
}

void Engine::drop_cancelled(const std::set<uint64_t>& ids) {
  if (ids.empty()) return;
  auto drop = [&](std::vector<SeqPtr>& list) {
    for (SeqPtr& s : list)
      if (ids.count(s->group->id)) release_pages(*s);
    list.erase(std::remove_if(list.begin(), list.end(), [&](const SeqPtr& s) { return ids.count(s->group->id) > 0; }),
               list.end());
  };
  drop(running_);
  drop(waiting_);
  for (uint64_t id : ids) groups_.erase(id);
}

void Engine::apply_pending_weights() {
  std::shared_ptr<const CausalLM> old;  // freed outside the lock
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pending_model_) return;
    old = std::move(model_);
    model_ = std::move(pending_model_);  // under the lock: set_weights reads it from other threads
    version_ = pending_version_;
  }
  // RESTART: every unfinished sample starts again from its prompt on the new weights; one
  // leader per request prefills the prompt again for them.
  std::map<uint64_t, std::set<int64_t>> restart;
  auto collect = [&](std::vector<SeqPtr>& list) {
    for (SeqPtr& s : list) {
      release_pages(*s);
      auto& samples = restart[s->group->id];
      if (s->leader()) {
        samples.insert(s->samples.begin(), s->samples.end());
      } else {
        samples.insert(s->sample);
        ++counters_.restarts;
      }
    }
    list.clear();
  };
  collect(running_);
  collect(waiting_);
  for (auto& [id, samples] : restart) {
    auto leader = std::make_unique<Sequence>();
    leader->group = groups_.at(id);
    leader->samples.assign(samples.begin(), samples.end());
    leader->tokens = leader->group->request.prompt;
    waiting_.push_back(std::move(leader));  // ids ascending: already in priority order
  }
}

void Engine::release_pages(Sequence& s) {
  for (int32_t p : s.pages) pool_.release(p);
  s.pages.clear();
  s.cached = 0;
}

// Gives `s` exclusively owned pages for slots [cached, cached + tokens): a copy of a shared page
// it writes into, fresh pages past its last one. All or nothing: false (and no change) when the
// pool has too few free pages.
bool Engine::make_writable(Sequence& s, int64_t tokens) {
  const int64_t ps = pool_.page_size();
  const int64_t first = s.cached / ps, last = (s.cached + tokens - 1) / ps;
  const int64_t have = static_cast<int64_t>(s.pages.size());
  const bool cow = first < have && pool_.refcount(s.pages[first]) > 1;
  const int64_t fresh = std::max<int64_t>(0, last + 1 - have);
  if (pool_.free_pages() < fresh + (cow ? 1 : 0)) return false;
  if (cow) {
    const int32_t copy = pool_.allocate();
    pool_.copy(s.pages[first], copy, s.cached % ps);
    pool_.release(s.pages[first]);
    s.pages[first] = copy;
  }
  for (int64_t i = 0; i < fresh; ++i) s.pages.push_back(pool_.allocate());
  return true;
}

void Engine::preempt(Sequence& victim) {
  release_pages(victim);
  ++counters_.preemptions;
  auto it = std::find_if(running_.begin(), running_.end(), [&](const SeqPtr& p) { return p.get() == &victim; });
  SeqPtr owned = std::move(*it);
  running_.erase(it);
  insert_by_priority(waiting_, std::move(owned));
}

std::vector<Engine::Chunk> Engine::schedule() {
  std::vector<Chunk> chunks;
  int64_t budget = options_.max_batched_tokens;
  // 1. Running sequences, highest priority first; the lowest-priority ones give their pages up
  //    when the cache runs out.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence& s = *running_[i];
    const int64_t n = chunk_tokens(s, budget);
    bool preempted_self = false;
    while (!make_writable(s, n)) {
      Sequence& victim = *running_.back();
      preempted_self = &victim == &s;
      preempt(victim);
      if (preempted_self) break;
    }
    if (preempted_self) break;
    chunks.push_back({&s, s.cached, n, n > s.pending()});
    budget -= n;
  }
  // 2. Waiting sequences join in priority order while sequences, tokens and pages allow.
  int64_t in_flight = 0;
  for (const SeqPtr& s : running_) in_flight += s->width();
  while (!waiting_.empty() && budget > 0) {
    Sequence& s = *waiting_.front();
    if (in_flight + s.width() > options_.max_seqs) break;
    const int64_t n = chunk_tokens(s, budget);
    const int64_t need = ceil_div(s.cached + n, pool_.page_size()) - static_cast<int64_t>(s.pages.size());
    const int64_t reserve = running_.empty() ? 0 : s.width();  // room for their first generated tokens
    if (pool_.free_pages() < need + reserve || !make_writable(s, n)) break;
    chunks.push_back({&s, s.cached, n, n > s.pending()});
    budget -= n;
    in_flight += s.width();
    SeqPtr owned = std::move(waiting_.front());
    waiting_.erase(waiting_.begin());
    insert_by_priority(running_, std::move(owned));
  }
  return chunks;
}

int64_t Engine::chunk_tokens(const Sequence& s, int64_t budget) const {
  return std::min(s.pending() + (s.draft >= 0 ? 1 : 0), budget);  // the draft after its pending tokens, if room
}

bool Engine::speculating() const { return model_options_.mtp && model_->has_mtp(); }

// A sequence whose chunk reached its last token this step, and what it drew.
struct Engine::Sampled {
  Sequence* seq;
  int64_t logits_row;      // its first row in the step's logits (with a draft: the draft's, then the one after)
  bool drafted;            // its chunk fed its draft
  std::vector<Draw> next;  // a sample: its next token (and the bonus after a kept draft); a leader: one per sample
  bool accepted = false;   // its draft was kept
  int64_t draft = -1;      // the MTP module's draft for its next step
};

void Engine::run(const std::vector<Chunk>& chunks) {
  at::NoGradGuard no_grad;
  // One forward per distinct chunk length (all decoding sequences together).
  std::map<int64_t, std::vector<const Chunk*>> by_length;
  for (const Chunk& c : chunks) by_length[c.tokens].push_back(&c);
  std::vector<std::vector<const Chunk*>> forwards;
  std::vector<at::Tensor> hidden, logits;       // per forward: [B, T, D], [n_i, V]
  std::vector<std::vector<at::Tensor>> routes;  // per forward, per decoder layer [B·T, k]
  std::vector<Sampled> sampled;
  int64_t logits_rows = 0;
  for (auto& [t, group] : by_length) {
    const int64_t b = static_cast<int64_t>(group.size());
    std::vector<PagedBatch::Row> rows;
    ids_.resize_({b, t});
    int64_t* ids = ids_.data_ptr<int64_t>();
    std::vector<int64_t> last_rows;
    for (int64_t i = 0; i < b; ++i) {
      const Chunk& c = *group[i];
      Sequence& s = *c.seq;
      rows.push_back({&s.pages, c.start});
      std::copy_n(s.tokens.begin() + c.start, t - (c.draft ? 1 : 0), ids + i * t);
      if (c.draft) ids[i * t + t - 1] = s.draft;
      const bool ends = c.start + t == static_cast<int64_t>(s.tokens.size()) + (c.draft ? 1 : 0);
      if (ends) {
        sampled.push_back({&s, logits_rows, c.draft});
        if (c.draft) last_rows.push_back(i * t + t - 2);
        last_rows.push_back(i * t + t - 1);
        logits_rows += c.draft ? 2 : 1;
      }
      // Prompts (leaders) and recomputes feed prefill tokens; a sample's last pending token and its draft are decode.
      const int64_t decode = s.leader() || !ends ? 0 : std::min<int64_t>(t, c.draft ? 2 : 1);
      counters_.decode_tokens += decode;
      counters_.prefill_tokens += t - decode;
    }
    batch_.set_rows(rows, t);
    Feed feed;
    feed.context = &batch_;
    routes.emplace_back();
    bool records = false;
    for (const Chunk* c : group) records = records || c->seq->group->request.record_routes;
    if (records) feed.routes = &routes.back();
    hidden.push_back(model_->hidden(ids_, feed));  // [B, T, D]
    if (!last_rows.empty()) logits.push_back(model_->logits_at(hidden.back(), at::tensor(last_rows, at::kLong)));
    forwards.push_back(group);
  }
  if (!sampled.empty()) draw(sampled, at::cat(logits, 0));
  std::map<const Sequence*, Sampled*> outcome;
  for (Sampled& d : sampled) outcome[d.seq] = &d;
  if (speculating()) {
    int64_t decoding = 0;  // samples in flight: drafts pay while the forward reads weights rather than computes
    for (const SeqPtr& s : running_) decoding += s->width();
    draft_next(forwards, hidden, outcome, decoding <= options_.speculative_max_seqs);
  }

  // The fed slots that stay (all but a rejected draft's) join the cache, with their routes.
  for (size_t f = 0; f < forwards.size(); ++f) {
    for (size_t i = 0; i < forwards[f].size(); ++i) {
      const Chunk& c = *forwards[f][i];
      const auto found = outcome.find(c.seq);
      const bool rejected = c.draft && !(found != outcome.end() && found->second->accepted);
      const int64_t kept = c.tokens - (rejected ? 1 : 0);
      if (c.seq->group->request.record_routes) {  // a recompute replaces what it feeds again
        truncate_routes(c.seq->routes, c.start);
        append_routes(c.seq->routes, routes[f], static_cast<int64_t>(i) * c.tokens, kept);
      }
      c.seq->cached += kept;
    }
  }

  for (Sampled& d : sampled) {
    Sequence* s = d.seq;
    if (!s->leader()) {
      for (const Draw& t : d.next)
        if (!s->done) finish_token(*s, t.token, t.logprob);
      s->draft = d.draft;
      continue;
    }
    // Fork: every sample shares the prompt's pages. When drafting, each feeds the prompt's last
    // token again (the MTP entry of that slot needs the sample's own first token).
    for (size_t k = 0; k < s->samples.size(); ++k) {
      auto m = std::make_unique<Sequence>();
      m->group = s->group;
      m->sample = s->samples[k];
      m->tokens = s->tokens;
      m->routes = s->routes;
      m->pages = s->pages;
      for (int32_t p : m->pages) pool_.retain(p);
      m->cached = s->cached - (speculating() ? 1 : 0);
      Sequence& member = *m;
      insert_by_priority(running_, std::move(m));
      finish_token(member, d.next[k].token, d.next[k].logprob);
    }
    release_pages(*s);
    s->done = true;
  }
  running_.erase(std::remove_if(running_.begin(), running_.end(), [](const SeqPtr& s) { return s->done; }),
                 running_.end());
}

// Draws every sampled sequence's tokens from `logits` (its rows in Sampled::logits_row order), each
// with the sampler's own key: a leader's row once per sample it forks into; a sample its next token
// and, when it fed a draft, the token after it too, kept only when the first is the draft.
void Engine::draw(std::vector<Sampled>& out, const at::Tensor& logits) {
  std::vector<int64_t> source;  // logits row of each sampler row
  std::vector<SampleRow> rows;
  for (const Sampled& d : out) {
    const Sequence& s = *d.seq;
    const SamplingParams* p = &s.group->request.params.sampling;
    if (s.leader()) {
      for (int64_t k : s.samples) {
        source.push_back(d.logits_row);
        rows.push_back({p, static_cast<uint64_t>(k), 0});
      }
      continue;
    }
    const auto step = static_cast<uint64_t>(s.generated());
    for (int64_t r = 0; r < (d.drafted ? 2 : 1); ++r) {
      source.push_back(d.logits_row + r);
      rows.push_back({p, static_cast<uint64_t>(s.sample), step + static_cast<uint64_t>(r)});
    }
  }
  bool identity = static_cast<int64_t>(source.size()) == logits.size(0);
  for (size_t i = 0; identity && i < source.size(); ++i) identity = source[i] == static_cast<int64_t>(i);
  const at::Tensor all =  // [N, V] on the model's device, drawn there
      identity ? logits : logits.index_select(0, at::tensor(source, at::kLong).to(logits.device()));
  const std::vector<Draw> draws = sample_tokens(all, rows);
  size_t r = 0;
  for (Sampled& d : out) {
    const Sequence& s = *d.seq;
    const size_t n = s.leader() ? s.samples.size() : d.drafted ? 2 : 1;
    d.next.assign(draws.begin() + static_cast<std::ptrdiff_t>(r), draws.begin() + static_cast<std::ptrdiff_t>(r + n));
    r += n;
    if (!d.drafted) continue;
    // Speculative sampling with the draft's distribution q = one-hot(draft): kept with probability
    // min(1, p(draft)/q(draft)) = p(draft), else a token from norm(max(0, p - q)) = p without the
    // draft. The target's own draw realises both: it is the draft with probability p(draft), and
    // otherwise distributed as p without it.
    d.accepted = d.next[0].token == s.draft;
    if (!d.accepted) d.next.pop_back();
    ++counters_.draft_tokens;
    counters_.accepted_drafts += d.accepted ? 1 : 0;
  }
}

// The MTP module over every chunk of the step (its keys: the cache's last layer, the same slots),
// each slot fed the token after it (unknown ones, past what was drawn, get 0: their entries are
// written again before anything reads them); then, with `drafts`, each sample that drew its next
// token gets the draft of the token after that, from the entry of its newest fed token.
void Engine::draft_next(const std::vector<std::vector<const Chunk*>>& forwards, const std::vector<at::Tensor>& hidden,
                        const std::map<const Sequence*, Sampled*>& sampled, bool drafts) {
  static const std::vector<Draw> none;
  for (size_t f = 0; f < forwards.size(); ++f) {
    const std::vector<const Chunk*>& group = forwards[f];
    const int64_t b = static_cast<int64_t>(group.size()), t = group.front()->tokens;
    std::vector<PagedBatch::Row> rows;
    ids_.resize_({b, t});
    int64_t* ids = ids_.data_ptr<int64_t>();
    std::vector<int64_t> draft_rows;
    std::vector<Sampled*> drafting;
    for (int64_t i = 0; i < b; ++i) {
      const Chunk& c = *group[i];
      const Sequence& s = *c.seq;
      rows.push_back({&s.pages, c.start});
      const auto found = sampled.find(&s);
      Sampled* d = found == sampled.end() ? nullptr : found->second;
      const std::vector<Draw>& drawn = d && !s.leader() ? d->next : none;
      const int64_t known = static_cast<int64_t>(s.tokens.size() + drawn.size());
      auto token_at = [&](int64_t pos) {
        if (pos < static_cast<int64_t>(s.tokens.size())) return s.tokens[pos];
        return pos < known ? drawn[pos - static_cast<int64_t>(s.tokens.size())].token : int64_t{0};
      };
      for (int64_t k = 0; k < t; ++k) ids[i * t + k] = token_at(c.start + k + 1);
      if (d && !s.leader()) {  // the entry of slot known - 2 (its h and the newest token) predicts token `known`
        draft_rows.push_back(i * t + (known - 2 - c.start));
        drafting.push_back(d);
      }
    }
    batch_.set_rows(rows, t);
    Feed feed;
    feed.context = &batch_;
    const at::Tensor hm = model_->mtp_hidden(hidden[f], ids_, feed);
    if (drafting.empty() || !drafts) continue;
    // The draft: the module's most likely token (DeepSeek-V3's MTP drafts are its top-1).
    const at::Tensor top =
        model_->mtp_logits_at(hm, at::tensor(draft_rows, at::kLong)).argmax(-1).to(at::kCPU).contiguous();  // [n]
    for (size_t j = 0; j < drafting.size(); ++j) drafting[j]->draft = top.data_ptr<int64_t>()[j];
  }
}

void Engine::finish_token(Sequence& s, int64_t token, float logprob) {
  s.tokens.push_back(token);
  s.logprobs.push_back(logprob);
  ++counters_.generated_tokens;
  std::optional<FinishReason> reason =
      finish_reason_after(token, s.group->request.params, eos_ids_, tokenizer_, s.text, s.generated(),
                          static_cast<int64_t>(s.tokens.size()), options_.max_context);
  if (reason) complete(s, *reason);
}

void Engine::complete(Sequence& s, FinishReason reason) {
  Completion c;
  c.request_id = s.group->id;
  c.sample_index = s.sample;
  c.token_ids.assign(s.tokens.begin() + s.prompt_len(), s.tokens.end());
  c.logprobs = s.logprobs;
  c.routes = std::move(s.routes);
  if (!c.routes.empty())
    truncate_routes(c.routes, static_cast<int64_t>(s.tokens.size()) - 1);  // a kept draft that ended it
  if (tokenizer_) {  // the EOS that ended it is not part of the text
    const size_t n = c.token_ids.size() - (reason == FinishReason::kEos ? 1 : 0);
    c.text = decode_text(*tokenizer_, std::vector<int64_t>(c.token_ids.begin(), c.token_ids.begin() + n));
  }
  c.finish_reason = reason;
  c.weight_version = version_;
  c.prompt_tokens = s.prompt_len();
  release_pages(s);
  s.done = true;
  ++counters_.completions;
  if (--s.group->unfinished == 0) groups_.erase(s.group->id);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cancelled_.count(c.request_id)) done_.push_back(std::move(c));
}

void Engine::publish_stats() {
  EngineStats s = counters_;
  s.weight_version = version_;
  s.waiting_sequences = static_cast<int64_t>(waiting_.size());
  s.running_sequences = static_cast<int64_t>(running_.size());
  for (const auto& [id, g] : groups_) s.unfinished_samples += g->unfinished;
  s.page_size = pool_.page_size();
  s.pages_total = pool_.num_pages();
  s.pages_used = pool_.used_pages();
  s.peak_pages_used = pool_.peak_used_pages();
  std::lock_guard<std::mutex> lock(mutex_);
  published_ = s;
}

}  // namespace grpo::rollout
