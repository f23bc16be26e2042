// Scheduler: decides which envelopes are attempted now. Part of the queue
// module, the sole owner of envelope state: delivery only reports outcomes
// back through complete().
//
// Design (after Postfix's qmgr and KumoMTA's scheduled/ready queues):
//  - The due index (schedule column family) has two classes, 'n' for first
//    attempts and 'r' for retries. Scans take turns between them, so a
//    backlog of retries cannot starve fresh mail, nor the reverse.
//  - The active set is bounded (max_active envelopes): a million deferred
//    messages stay on disk, not in memory.
//  - Fresh mail normally skips the index: Spool hands each accepted message
//    to admit() while there is room, and it is dispatched at once. The index
//    is scanned when there is a backlog (the active set was full), for due
//    retries, and at start-up.
//  - Schedule entries stay on disk while their envelope is in flight (they
//    are skipped through an in-memory set), so a crash simply makes them
//    due again: recovery is the ordinary scan.
//  - complete() writes every consequence of one attempt in one batch:
//    envelope states, the next due entry, suppression entries, events (via
//    the caller's hook, so the queue needs no knowledge of event formats)
//    and, once every envelope is final, the deletion of the message.
//
// Threads: one scheduler thread does the scans (RocksDB reads stay off the
// I/O threads) and calls `dispatch`; complete() may be called from any
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mta/core/clock.hpp"
#include "mta/queue/spool.hpp"

namespace mta::store {
class Batch;
class Store;
}  // namespace mta::store

namespace mta::queue {

struct RetryPolicy {
  std::vector<std::chrono::milliseconds> intervals{
      std::chrono::minutes(1),  std::chrono::minutes(5), std::chrono::minutes(15),
      std::chrono::minutes(30), std::chrono::hours(1),   std::chrono::hours(2),
      std::chrono::hours(4)};  // the last one repeats
  std::chrono::milliseconds max_age = std::chrono::hours(72);
  double jitter = 0.1;  // +-10% so retries of one burst spread out
};

struct SchedulerOptions {
  size_t max_active = 20000;  // envelopes in memory at once
  RetryPolicy retry;
};

// One delivery attempt: the recipients of one message at one domain (or
// one recipient, see set_per_recipient()).
struct Job {
  std::shared_ptr<const Message> message;
  std::string domain;  // lowercased
  struct Rcpt {
    uint32_t index = 0;
    std::string address;
    uint32_t attempts = 0;  // before this one
    int64_t waited_ms = 0;  // waiting for warm-up room so far
    bool suppressed = false;
    std::string suppression_reason;
    std::string schedule_key;
  };
  std::vector<Rcpt> rcpts;
};

enum class Fate {
  kDelivered,
  kDeferred,   // temporary failure: retried per RetryPolicy, expired after max_age
  kBounced,    // permanent failure
  kPostponed,  // not attempted (no capacity): due again after `delay`, no attempt counted
};
// Warm-up waits (Outcome::warmup_wait) are postponements that count toward
// the envelope's waited_ms. Age for max_age is (now - received - waited_ms),
// so waiting for warm-up room does not eat the retry budget; an envelope
// that has waited for room longer than max_age in total expires.
const char* to_string(Fate f);

struct Outcome {
  Fate fate = Fate::kDeferred;
  std::string reply;                   // the whole reply or a description of the failure
  bool suppress = false;               // kBounced: add the address to the suppression list
  std::chrono::milliseconds delay{0};  // kPostponed: when to try again
  bool warmup_wait = false;            // kPostponed: no IP had room (see above)
  bool throttle = false;               // the reply asked us to slow down
  // For events and logs only; the queue does not interpret them.
  std::string source_ip, pool, remote_ip, remote_host;
  std::string provider;  // shaping provider of the destination ("other" for none)
  std::string bounce_type, bounce_subtype, category, rule_id, delay_type;
};

// What complete() decided for one recipient; handed to the event hook.
struct Decision {
  const Job& job;
  const Job::Rcpt& rcpt;
  const Outcome& outcome;
  EnvelopeState state;      // kQueued (will retry), kDelivered, kBounced, kExpired
  uint32_t attempts;        // including this one
  int64_t next_attempt_ms;  // kQueued only
  int64_t now_ms;
  int64_t max_age_ms;  // the retry policy's, for the expiration time
};
using EventHook = std::function<void(const Decision&, store::Batch&)>;

class Scheduler final {
 public:
  Scheduler(store::Store& store, Spool& spool, const core::Clock& clock, SchedulerOptions opts);
  ~Scheduler();

  // Starts the scheduler thread. `dispatch` receives every job; it must be
  // quick (post it somewhere) and is called from the scheduler thread or
  // the store's commit thread.
  void start(std::function<void(Job)> dispatch, EventHook hook);
  // Messages for which `fn` is true get one job per recipient instead of one
  // per domain (their bodies differ per recipient: tracking links). Call
  // before start(); `fn` is called from the scheduler and commit threads.
  void set_per_recipient(std::function<bool(const Message&)> fn);
  void stop();

  // A freshly accepted message (Spool's accepted hook). `urgent` (a high
  // priority configuration set) skips the backlog of the index and may use
  // a reserve of max_active / 4 beyond the bound, so transactional mail is
  // not queued behind bulk mail waiting for room.
  void admit(std::shared_ptr<const Message> message, bool urgent = false);
  // Records the outcome of a job: outcomes[i] belongs to job.rcpts[i].
  // `done` runs after the batch is committed (on the commit thread).
  void complete(Job job, std::vector<Outcome> outcomes, std::function<void()> done = {});

  // Gives every queued recipient at `domain` (lowercase) that is not being
  // delivered now the outcome `o` (the operator's bounce-all); returns how
  // many. Reads the whole due index: for the admin API, not the hot path.
  size_t finish_domain(const std::string& domain, const Outcome& o);

  // Makes every retry due within `window` due now (after an operator
  // resumes paused mail, which was postponed by about that long).
  void expedite(std::chrono::milliseconds window);

  void set_retry(RetryPolicy retry);
  size_t active() const;
  // Time of the next retry that is due for `attempts` failures, without
  // jitter (exposed for tests).
  static std::chrono::milliseconds interval(const RetryPolicy& p, uint32_t attempts);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Suppression list: addresses that are not sent to. Keys are lowercased.
struct SuppressionEntry {
  std::string address;
  std::string reason;  // "BOUNCE" | "COMPLAINT" | "MANUAL"
  int64_t created_ms = 0;
  std::string message_id;  // what caused it, if anything
  std::string detail;      // e.g. the bounce reply
};
std::string encode(const SuppressionEntry& e);
std::optional<SuppressionEntry> decode_suppression(std::string_view key, std::string_view bytes);
void put_suppression(store::Batch& b, const SuppressionEntry& e);
void delete_suppression(store::Batch& b, std::string_view address);
core::Result<std::optional<SuppressionEntry>> find_suppression(const store::Store& s,
                                                               std::string_view address);
core::Status list_suppressions(const store::Store& s,
                               const std::function<bool(const SuppressionEntry&)>& fn);

// Unsubscribes (one-click List-Unsubscribe) are scoped, not global: to a
// contact list and topic (SES's ListManagementOptions), to a whole contact
// list (empty topic), or, for mail sent without list options, to the
// configuration set. A message is not sent to a recipient unsubscribed from
// its scope: its list and topic, its whole list, or (without list options)
// its set. Kept in the suppression column family under keys that are not
// addresses, so list_suppressions() does not show them.
struct ListScope {
  enum class Kind : uint8_t { kContactList = 'l', kConfigurationSet = 's' };
  Kind kind = Kind::kContactList;
  std::string name;   // contact list or configuration set
  std::string topic;  // contact lists only; empty: the whole list
  bool operator==(const ListScope&) const = default;
};
// The scope of a message's unsubscribe link: its list options, else its set.
ListScope list_scope_of(const Message& m);
void put_unsubscribe(store::Batch& b, const ListScope& scope, const SuppressionEntry& e);
// The unsubscribe that stops `m` from going to `address`, if any.
core::Result<std::optional<SuppressionEntry>> find_unsubscribe(const store::Store& s,
                                                               const Message& m,
                                                               std::string_view address);
// Every unsubscribe, with its scope.
core::Status list_unsubscribes(
    const store::Store& s,
    const std::function<bool(const ListScope&, const SuppressionEntry&)>& fn);

}  // namespace mta::queue
