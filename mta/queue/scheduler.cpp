#include "mta/queue/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "mta/core/text.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/protocol/command.hpp"
#include "mta/queue/codec.hpp"
#include "mta/store/store.hpp"

namespace mta::queue {
namespace {

constexpr size_t kScheduleKeySize = 1 + 8 + 16 + 4;

double jitter_factor(double jitter) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> d(1.0 - jitter, 1.0 + jitter);
  return d(rng);
}

metrics::Gauge& active_gauge() {
  static metrics::Gauge g =
      metrics::gauge("mta_queue_active", "Envelopes handed to delivery and not yet finished");
  return g;
}

}  // namespace

const char* to_string(Fate f) {
  switch (f) {
    case Fate::kDelivered:
      return "delivered";
    case Fate::kDeferred:
      return "deferred";
    case Fate::kBounced:
      return "bounced";
    case Fate::kPostponed:
      return "postponed";
  }
  return "?";
}

struct Scheduler::Impl : std::enable_shared_from_this<Scheduler::Impl> {
  Impl(store::Store& store, Spool& spool, const core::Clock& clock, SchedulerOptions opts)
      : store(store), spool(spool), clock(clock), opts(std::move(opts)) {}

  store::Store& store;
  Spool& spool;
  const core::Clock& clock;

  mutable std::mutex mu;
  std::condition_variable cv;
  SchedulerOptions opts;
  std::function<void(Job)> dispatch;
  std::function<bool(const Message&)> per_recipient;  // set before start()

  // The jobs of one message: per domain, or per recipient when its bodies
  // differ per recipient (tracking, unsubscribe links).
  std::vector<Job> make_jobs(std::map<std::string, Job> by_domain, const Message& m) {
    std::vector<Job> out;
    bool split = per_recipient && per_recipient(m);
    for (auto& [_, job] : by_domain) {
      if (!split || job.rcpts.size() == 1) {
        out.push_back(std::move(job));
        continue;
      }
      for (auto& r : job.rcpts) {
        Job one;
        one.message = job.message;
        one.domain = job.domain;
        one.rcpts.push_back(std::move(r));
        out.push_back(std::move(one));
      }
    }
    return out;
  }
  EventHook hook;

  // Everything below is guarded by mu.
  std::unordered_set<std::string> in_flight;  // schedule keys
  // Outcomes committed so far. A scan's iterator reads a snapshot taken when
  // it starts: a key it shows may have been deleted (and released from
  // in_flight) since, so when this moved during the scan, each key is
  // re-checked before it is taken.
  uint64_t completions = 0;
  struct Live {
    std::shared_ptr<const Message> message;
    int nonfinal = 0;       // envelopes not yet delivered, bounced or expired
    int refs = 0;           // jobs of this message not yet committed
    bool poisoned = false;  // a commit failed: never conclude the message is done
  };
  std::unordered_map<std::string, Live> live;  // by id key
  size_t active = 0;
  bool backlog = true;  // due entries may wait in the index: scan before admitting
  // The earliest due time of a retry entry (class 'r'): the index is only
  // scanned for retries once it has passed, so an empty or future-only
  // index costs no reads.
  int64_t next_retry_ms = 0;
  // Fresh messages admit() left in the index for the scan. A scan that
  // started before one of them was committed may not see it, so the backlog
  // is only cleared by a scan during which this did not move.
  uint64_t left_to_scan = 0;
  bool stopping = false;
  bool woken = true;  // scan at once on start: recovery, and mail waiting since
  int turn = 0;
  std::thread thread;

  // Marks a schedule key in flight; false if it already is.
  bool claim(const std::string& key) { return in_flight.insert(key).second; }

  // Global suppressions first, then an unsubscribe from the message's list
  // (or set) scope.
  void fill_suppression(Job::Rcpt& r, const Message& m) {
    auto s = find_suppression(store, r.address);
    if (s && s->has_value()) {
      r.suppressed = true;
      r.suppression_reason = (*s)->reason;
      return;
    }
    auto u = find_unsubscribe(store, m, r.address);
    if (u && u->has_value()) {
      r.suppressed = true;
      r.suppression_reason = (*u)->reason;
    }
  }

  // ---- admission of fresh mail ---------------------------------------------

  void admit(std::shared_ptr<const Message> msg, bool urgent) {
    std::map<std::string, Job> by_domain;
    for (uint32_t i = 0; i < msg->recipients.size(); ++i) {
      Job::Rcpt r;
      r.index = i;
      r.address = msg->recipients[i];
      r.schedule_key = schedule_key(kClassNew, msg->received_ms, msg->id, i);
      fill_suppression(r, *msg);
      auto domain = protocol::domain_of(r.address);
      auto& job = by_domain[domain];
      job.domain = domain;
      job.message = msg;
      job.rcpts.push_back(std::move(r));
    }
    std::vector<Job> jobs = make_jobs(std::move(by_domain), *msg);
    {
      std::lock_guard lock(mu);
      size_t n = msg->recipients.size();
      size_t bound = opts.max_active + (urgent ? opts.max_active / 4 : 0);
      if (stopping || (backlog && !urgent) || active + n > bound) {
        backlog = true;  // the scan will find it in the index, in its turn
        ++left_to_scan;
        return;
      }
      // A scan that started after the commit may have taken some of them
      // already: then it owns the whole message's due entries.
      for (auto& job : jobs)
        for (auto& r : job.rcpts)
          if (in_flight.count(r.schedule_key)) return;
      for (auto& job : jobs)
        for (auto& r : job.rcpts) claim(r.schedule_key);
      auto& l = live[std::string(msg->id.key())];
      l.message = msg;
      l.nonfinal = static_cast<int>(n);
      l.refs += static_cast<int>(jobs.size());
      active += n;
      active_gauge().set(static_cast<double>(active));
    }
    for (auto& job : jobs) dispatch(std::move(job));
  }

  // ---- the scan ------------------------------------------------------------

  // Loads what a job needs about its message, registering one more job ref.
  // nullptr when the message is gone (an orphaned schedule entry).
  std::shared_ptr<const Message> attach(const core::MessageId& id, int jobs) {
    std::string key(id.key());
    {
      std::lock_guard lock(mu);
      auto it = live.find(key);
      if (it != live.end()) {
        it->second.refs += jobs;
        return it->second.message;
      }
    }
    auto found = Spool::find(store, id);
    if (!found || !found->has_value()) return nullptr;
    int nonfinal = 0;
    auto st = Spool::envelopes(store, id, [&](uint32_t, const Envelope& e) {
      if (e.state == EnvelopeState::kQueued) ++nonfinal;
    });
    if (!st.ok()) return nullptr;
    auto msg = std::make_shared<const Message>(std::move(**found));
    std::lock_guard lock(mu);
    auto& l = live[key];
    if (!l.message) {
      l.message = msg;
      l.nonfinal = nonfinal;
    }
    l.refs += jobs;
    return l.message;
  }

  uint64_t completions_now() {
    std::lock_guard lock(mu);
    return completions;
  }

  // Claims a schedule key a scan found, counting it active. A scan's
  // iterator reads the snapshot of when it began (`completions_at_start`):
  // false when the key is in flight, or was finished since then.
  bool take(const std::string& key, uint64_t completions_at_start) {
    bool recheck;
    {
      std::lock_guard lock(mu);
      if (!claim(key)) return false;
      ++active;
      recheck = completions != completions_at_start;
    }
    if (recheck) {
      auto still = store.get(store::Cf::kSchedule, key);
      if (!still || !still->has_value()) {
        std::lock_guard lock(mu);
        in_flight.erase(key);
        --active;
        return false;
      }
    }
    return true;
  }

  // The recipient of a due entry (key k, value e) taken by a scan.
  static Job::Rcpt rcpt_of(std::string_view k, ScheduleEntry& e, std::string key) {
    Job::Rcpt r;
    r.index = store::get_u32(k.substr(25, 4));
    r.address = std::move(e.recipient);
    r.attempts = e.attempts;
    r.waited_ms = e.waited_ms;
    r.schedule_key = std::move(key);
    return r;
  }

  // Takes up to `limit` due envelopes of one class; sets `exhausted` when
  // the class had no more due entries.
  std::vector<Job> scan_class(char cls, size_t limit, int64_t now, bool& exhausted) {
    std::vector<Job> out;
    std::string from(1, cls);
    std::string to(1, cls);
    store::put_u64(to, static_cast<uint64_t>(now + 1));
    size_t taken = 0;
    exhausted = true;
    const uint64_t completions_at_start = completions_now();

    core::MessageId cur{};
    bool have_cur = false;
    std::map<std::string, Job> group;
    std::vector<std::string> orphans;

    auto flush = [&] {
      if (!have_cur || group.empty()) return;
      auto msg = attach(cur, static_cast<int>(group.size()));
      if (!msg) {
        std::lock_guard lock(mu);
        for (auto& [_, job] : group)
          for (auto& r : job.rcpts) {
            in_flight.erase(r.schedule_key);
            orphans.push_back(r.schedule_key);
            --active;
          }
      } else {
        for (auto& [_, job] : group) {
          job.message = msg;
          for (auto& r : job.rcpts) fill_suppression(r, *msg);
        }
        // Split per recipient once the message is known: one more ref per
        // extra job (the domain jobs' refs keep the entry alive meanwhile;
        // nothing is dispatched before the scan returns).
        size_t domains = group.size();
        auto jobs = make_jobs(std::move(group), *msg);
        if (jobs.size() > domains) {
          std::lock_guard lock(mu);
          live[std::string(cur.key())].refs += static_cast<int>(jobs.size() - domains);
        }
        for (auto& job : jobs) out.push_back(std::move(job));
      }
      group.clear();
    };

    auto st =
        store.scan(store::Cf::kSchedule, from, to, [&](std::string_view k, std::string_view v) {
          if (taken >= limit) {
            exhausted = false;
            return false;
          }
          if (k.size() != kScheduleKeySize) {
            orphans.emplace_back(k);
            return true;
          }
          std::string key(k);
          auto entry = decode_schedule_entry(v);
          auto id = core::MessageId::from_key(k.substr(9, 16));
          if (!entry || !id) {
            orphans.push_back(key);
            return true;
          }
          if (!take(key, completions_at_start)) return true;  // in flight or finished
          if (!have_cur || !(cur == *id)) {
            flush();
            cur = *id;
            have_cur = true;
          }
          Job::Rcpt r = rcpt_of(k, *entry, std::move(key));
          auto domain = protocol::domain_of(r.address);
          auto& job = group[domain];
          job.domain = domain;
          job.rcpts.push_back(std::move(r));
          ++taken;
          return true;
        });
    flush();
    if (!st.ok())
      spdlog::error("queue=scheduler event=scan_failed error=\"{}\"", st.error().message);
    if (!orphans.empty()) {
      spdlog::warn("queue=scheduler event=orphans_removed count={}", orphans.size());
      store::Batch b;
      for (auto& k : orphans) b.del(store::Cf::kSchedule, k);
      store.commit(std::move(b), nullptr, false);
    }
    return out;
  }

  size_t finish_domain(const std::string& domain, const Outcome& o) {
    const uint64_t completions_at_start = completions_now();
    std::map<std::string, std::pair<core::MessageId, Job>> by_msg;
    auto st = store.scan(store::Cf::kSchedule, {}, {}, [&](std::string_view k, std::string_view v) {
      if (k.size() != kScheduleKeySize) return true;
      auto entry = decode_schedule_entry(v);
      auto id = core::MessageId::from_key(k.substr(9, 16));
      if (!entry || !id || protocol::domain_of(entry->recipient) != domain) return true;
      std::string key(k);
      if (!take(key, completions_at_start)) return true;  // being delivered, or finished
      auto& [mid, job] = by_msg.try_emplace(std::string(id->key()), *id, Job{}).first->second;
      job.domain = domain;
      job.rcpts.push_back(rcpt_of(k, *entry, std::move(key)));
      return true;
    });
    if (!st.ok())
      spdlog::error("queue=scheduler event=finish_domain_scan_failed error=\"{}\"",
                    st.error().message);
    size_t n = 0;
    for (auto& [_, entry] : by_msg) {
      auto& [id, job] = entry;
      auto msg = attach(id, 1);
      if (!msg) {
        std::lock_guard lock(mu);
        for (auto& r : job.rcpts) in_flight.erase(r.schedule_key);
        active -= job.rcpts.size();
        continue;
      }
      job.message = msg;
      n += job.rcpts.size();
      std::vector<Outcome> outcomes(job.rcpts.size(), o);
      complete(std::move(job), std::move(outcomes), {});
    }
    return n;
  }

  void expedite(std::chrono::milliseconds window) {
    const int64_t now = clock.now_ms();
    std::string from(1, kClassRetry), to(1, kClassRetry);
    store::put_u64(from, static_cast<uint64_t>(now + 1));
    store::put_u64(to, static_cast<uint64_t>(now + window.count() + 1));
    std::vector<std::pair<std::string, std::string>> moved;  // old key, value
    auto st =
        store.scan(store::Cf::kSchedule, from, to, [&](std::string_view k, std::string_view v) {
          if (k.size() != kScheduleKeySize) return true;
          std::lock_guard lock(mu);
          if (claim(std::string(k))) moved.emplace_back(std::string(k), std::string(v));
          return true;
        });
    if (!st.ok() || moved.empty()) {
      std::lock_guard lock(mu);
      for (auto& [k, _] : moved) in_flight.erase(k);
      return;
    }
    store::Batch b;
    for (auto& [k, v] : moved) {
      std::string nk(1, kClassRetry);
      store::put_u64(nk, static_cast<uint64_t>(now));
      nk.append(k.substr(9));
      b.del(store::Cf::kSchedule, k);
      b.put(store::Cf::kSchedule, nk, v);
    }
    auto s = store.commit_sync(std::move(b), false);
    {
      std::lock_guard lock(mu);
      for (auto& [k, _] : moved) in_flight.erase(k);
      if (s.ok()) next_retry_ms = std::min(next_retry_ms, now);
      woken = true;
    }
    cv.notify_one();
    spdlog::info("queue=scheduler event=expedited entries={}", moved.size());
  }

  // Due time of the first entry of a class due after `now`; max when none.
  int64_t first_due(char cls, int64_t now) {
    std::string from(1, cls), to(1, static_cast<char>(cls + 1));
    store::put_u64(from, static_cast<uint64_t>(now + 1));
    int64_t due = std::numeric_limits<int64_t>::max();
    auto st = store.scan(store::Cf::kSchedule, from, to, [&](std::string_view k, std::string_view) {
      if (k.size() == kScheduleKeySize) due = static_cast<int64_t>(store::get_u64(k.substr(1, 8)));
      return false;
    });
    if (!st.ok()) return now + 1000;  // cannot tell: look again in a second
    return due;
  }

  void run() {
    for (;;) {
      size_t budget;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping || woken; });
        woken = false;
        if (stopping) return;
        budget = opts.max_active > active ? opts.max_active - active : 0;
        // Refill in chunks: scanning for a handful of free slots costs more
        // than it brings.
        if (budget < std::min<size_t>(256, std::max<size_t>(1, opts.max_active / 4))) continue;
      }
      int64_t now = clock.now_ms();
      // Scan only what can hold due work: first attempts only while there
      // is a backlog (otherwise fresh mail is admitted directly), retries
      // only once the earliest one is due. Scanning on every completion
      // made RocksDB walk the tombstones of everything already delivered.
      bool want_new, want_retry;
      uint64_t left_at_start;
      {
        std::lock_guard lock(mu);
        want_new = backlog;
        left_at_start = left_to_scan;
        want_retry = next_retry_ms <= now;
        if (want_retry) next_retry_ms = std::numeric_limits<int64_t>::max();
      }
      if (!want_new && !want_retry) continue;
      char first = turn ? kClassRetry : kClassNew;
      turn ^= 1;
      if (!want_new) first = kClassRetry;
      if (!want_retry) first = kClassNew;
      char second = first == kClassNew ? kClassRetry : kClassNew;
      bool want_second = first == kClassNew ? want_retry : want_new;
      bool ex1 = true, ex2 = true, ex3 = true;
      auto jobs = scan_class(first, want_second ? (budget + 1) / 2 : budget, now, ex1);
      size_t got = 0;
      for (auto& j : jobs) got += j.rcpts.size();
      if (want_second) {
        auto more = scan_class(second, budget - got, now, ex2);
        for (auto& j : more) got += j.rcpts.size();
        std::move(more.begin(), more.end(), std::back_inserter(jobs));
        if (got < budget && !ex1) {
          auto rest = scan_class(first, budget - got, now, ex3);
          std::move(rest.begin(), rest.end(), std::back_inserter(jobs));
        }
      }
      bool new_exhausted = !want_new || (first == kClassNew ? (ex1 && ex3) : ex2);
      bool retry_exhausted = !want_retry || (first == kClassRetry ? (ex1 && ex3) : ex2);
      // All due retries taken: sleep until the next one is due. Budget ran
      // out: look again as soon as there is room.
      int64_t next_due = retry_exhausted ? first_due(kClassRetry, now) : now;
      {
        std::lock_guard lock(mu);
        if (new_exhausted && left_to_scan == left_at_start) backlog = false;
        if (want_retry) next_retry_ms = std::min(next_retry_ms, next_due);
        active_gauge().set(static_cast<double>(active));
      }
      if (!jobs.empty())
        spdlog::debug("queue=scheduler event=scan jobs={} budget={}", jobs.size(), budget);
      for (auto& j : jobs) dispatch(std::move(j));
    }
  }

  // ---- outcomes ------------------------------------------------------------

  void complete(Job job, std::vector<Outcome> outcomes, std::function<void()> done) {
    MTA_ASSERT(outcomes.size() == job.rcpts.size());
    const int64_t now = clock.now_ms();
    const Message& msg = *job.message;
    std::string id_key(msg.id.key());
    store::Batch b;
    std::vector<std::string> keys;
    bool finished = false;
    RetryPolicy retry;
    {
      std::lock_guard lock(mu);
      retry = opts.retry;
    }
    // One jitter per job, so recipients deferred together come due together
    // and are retried in one transaction again.
    const double jitter = jitter_factor(retry.jitter);
    int64_t earliest = std::numeric_limits<int64_t>::max();
    std::unique_lock lock(mu);
    auto it = live.find(id_key);
    if (it == live.end()) MTA_PANIC("complete() for a message that is not active");
    Live& l = it->second;
    for (size_t i = 0; i < job.rcpts.size(); ++i) {
      const auto& r = job.rcpts[i];
      const auto& o = outcomes[i];
      b.del(store::Cf::kSchedule, r.schedule_key);
      keys.push_back(r.schedule_key);
      Envelope e;
      e.recipient = r.address;
      e.attempts = r.attempts;
      e.last_reply = o.reply;
      e.waited_ms = r.waited_ms;
      int64_t next = 0;
      switch (o.fate) {
        case Fate::kDelivered:
          e.state = EnvelopeState::kDelivered;
          ++e.attempts;
          --l.nonfinal;
          break;
        case Fate::kBounced:
          e.state = EnvelopeState::kBounced;
          if (!r.suppressed) ++e.attempts;
          --l.nonfinal;
          if (o.suppress && !r.suppressed)
            put_suppression(b,
                            {core::ascii_lower(r.address), "BOUNCE", now, msg.id.hex(), o.reply});
          break;
        case Fate::kDeferred: {
          ++e.attempts;
          auto wait = interval(retry, e.attempts);
          next = now + static_cast<int64_t>(static_cast<double>(wait.count()) * jitter);
          if (now - msg.received_ms - e.waited_ms >= retry.max_age.count()) {
            e.state = EnvelopeState::kExpired;
            --l.nonfinal;
            next = 0;
          } else {
            e.state = EnvelopeState::kQueued;
            b.put(store::Cf::kSchedule, schedule_key(kClassRetry, next, msg.id, r.index),
                  encode(ScheduleEntry{r.address, e.attempts, e.waited_ms}));
          }
          break;
        }
        case Fate::kPostponed: {
          if (o.warmup_wait) e.waited_ms += o.delay.count();
          if (o.warmup_wait && e.waited_ms > retry.max_age.count()) {
            // Waited for warm-up room longer than max_age in all.
            e.state = EnvelopeState::kExpired;
            --l.nonfinal;
            break;
          }
          e.state = EnvelopeState::kQueued;
          next = now + o.delay.count();
          b.put(store::Cf::kSchedule, schedule_key(kClassRetry, next, msg.id, r.index),
                encode(ScheduleEntry{r.address, r.attempts, e.waited_ms}));
          break;
        }
      }
      e.next_attempt_ms = next;
      if (e.state == EnvelopeState::kQueued) earliest = std::min(earliest, next);
      b.put(store::Cf::kEnvelopes, envelope_key(msg.id, r.index), encode(e));
      if (hook) hook(Decision{job, r, o, e.state, e.attempts, next, now, retry.max_age.count()}, b);
    }
    if (l.nonfinal <= 0 && !l.poisoned) {
      finished = true;
      b.del(store::Cf::kMessages, id_key);
      b.del(store::Cf::kBodies, id_key);
      for (uint32_t i = 0; i < msg.recipients.size(); ++i)
        b.del(store::Cf::kEnvelopes, envelope_key(msg.id, i));
    }
    lock.unlock();

    size_t n = job.rcpts.size();
    auto self = shared_from_this();
    store.commit(
        std::move(b),
        [self, keys = std::move(keys), id_key, n, finished, earliest,
         done = std::move(done)](core::Status s) {
          {
            std::lock_guard lock(self->mu);
            ++self->completions;
            // Only now is the new due entry visible to a scan.
            if (s.ok()) self->next_retry_ms = std::min(self->next_retry_ms, earliest);
            for (auto& k : keys) self->in_flight.erase(k);
            self->active -= n;
            active_gauge().set(static_cast<double>(self->active));
            auto it = self->live.find(id_key);
            if (it != self->live.end()) {
              if (!s.ok()) it->second.poisoned = true;
              if (--it->second.refs <= 0) self->live.erase(it);
            }
            self->woken = true;
          }
          self->cv.notify_one();
          if (!s.ok())
            spdlog::error("queue=scheduler event=outcome_not_recorded error=\"{}\" (will retry)",
                          s.error().message);
          else if (finished)
            self->spool.message_removed();
          if (done) done();
        },
        /*sync=*/false);
  }
};

Scheduler::Scheduler(store::Store& store, Spool& spool, const core::Clock& clock,
                     SchedulerOptions opts)
    : impl_(std::make_shared<Impl>(store, spool, clock, std::move(opts))) {}

Scheduler::~Scheduler() {
  stop();
}

void Scheduler::set_per_recipient(std::function<bool(const Message&)> fn) {
  impl_->per_recipient = std::move(fn);
}

void Scheduler::start(std::function<void(Job)> dispatch, EventHook hook) {
  impl_->dispatch = std::move(dispatch);
  impl_->hook = std::move(hook);
  auto* p = impl_.get();
  impl_->thread = std::thread([p] { p->run(); });
}

void Scheduler::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Scheduler::admit(std::shared_ptr<const Message> message, bool urgent) {
  if (!impl_->dispatch) return;
  impl_->admit(std::move(message), urgent);
}

void Scheduler::complete(Job job, std::vector<Outcome> outcomes, std::function<void()> done) {
  impl_->complete(std::move(job), std::move(outcomes), std::move(done));
}

size_t Scheduler::finish_domain(const std::string& domain, const Outcome& o) {
  return impl_->finish_domain(domain, o);
}

void Scheduler::expedite(std::chrono::milliseconds window) {
  impl_->expedite(window);
}

void Scheduler::set_retry(RetryPolicy retry) {
  std::lock_guard lock(impl_->mu);
  impl_->opts.retry = std::move(retry);
}

size_t Scheduler::active() const {
  std::lock_guard lock(impl_->mu);
  return impl_->active;
}

std::chrono::milliseconds Scheduler::interval(const RetryPolicy& p, uint32_t attempts) {
  if (p.intervals.empty()) return std::chrono::minutes(5);
  size_t i = attempts == 0 ? 0 : std::min<size_t>(attempts - 1, p.intervals.size() - 1);
  return p.intervals[i];
}

// ---- suppression list --------------------------------------------------------

namespace {

// Unsubscribe keys: '\x01' kind name '\0' topic '\0' address. Addresses
// never start with a control character.
constexpr char kUnsubscribePrefix = '\x01';

std::string unsubscribe_key(const ListScope& scope, std::string_view address) {
  std::string k;
  k += kUnsubscribePrefix;
  k += static_cast<char>(scope.kind);
  k += scope.name;
  k += '\0';
  k += scope.topic;
  k += '\0';
  k += core::ascii_lower(address);
  return k;
}

}  // namespace

std::string encode(const SuppressionEntry& e) {
  Writer w;
  w.u8(1);
  w.str(e.reason);
  w.svarint(e.created_ms);
  w.str(e.message_id);
  w.str(e.detail);
  return w.take();
}

std::optional<SuppressionEntry> decode_suppression(std::string_view key, std::string_view bytes) {
  Reader r(bytes);
  if (r.u8() != 1) return std::nullopt;
  SuppressionEntry e;
  e.address = std::string(key);
  e.reason = r.str();
  e.created_ms = r.svarint();
  e.message_id = r.str();
  e.detail = r.str();
  if (!r.ok()) return std::nullopt;
  return e;
}

void put_suppression(store::Batch& b, const SuppressionEntry& e) {
  b.put(store::Cf::kSuppression, core::ascii_lower(e.address), encode(e));
}

void delete_suppression(store::Batch& b, std::string_view address) {
  b.del(store::Cf::kSuppression, core::ascii_lower(address));
}

core::Result<std::optional<SuppressionEntry>> find_suppression(const store::Store& s,
                                                               std::string_view address) {
  std::string key = core::ascii_lower(address);
  auto v = s.get(store::Cf::kSuppression, key);
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<SuppressionEntry>();
  auto e = decode_suppression(key, **v);
  if (!e) return core::make_error("undecodable suppression entry for " + key);
  return e;
}

core::Status list_suppressions(const store::Store& s,
                               const std::function<bool(const SuppressionEntry&)>& fn) {
  return s.scan(store::Cf::kSuppression, {}, {}, [&](std::string_view k, std::string_view v) {
    if (!k.empty() && k[0] == kUnsubscribePrefix) return true;
    auto e = decode_suppression(k, v);
    if (!e) return true;
    return fn(*e);
  });
}

ListScope list_scope_of(const Message& m) {
  if (!m.list_name.empty()) return {ListScope::Kind::kContactList, m.list_name, m.list_topic};
  return {ListScope::Kind::kConfigurationSet, m.configuration_set, {}};
}

void put_unsubscribe(store::Batch& b, const ListScope& scope, const SuppressionEntry& e) {
  b.put(store::Cf::kSuppression, unsubscribe_key(scope, e.address), encode(e));
}

core::Result<std::optional<SuppressionEntry>> find_unsubscribe(const store::Store& s,
                                                               const Message& m,
                                                               std::string_view address) {
  ListScope scope = list_scope_of(m);
  std::vector<ListScope> tried{scope};
  if (!scope.topic.empty()) tried.push_back({scope.kind, scope.name, {}});
  for (const auto& sc : tried) {
    std::string key = unsubscribe_key(sc, address);
    auto v = s.get(store::Cf::kSuppression, key);
    if (!v) return v.error();
    if (!v->has_value()) continue;
    auto e = decode_suppression(core::ascii_lower(address), **v);
    if (!e)
      return core::make_error("undecodable unsubscribe entry for " + core::ascii_lower(address));
    return e;
  }
  return std::optional<SuppressionEntry>();
}

core::Status list_unsubscribes(
    const store::Store& s,
    const std::function<bool(const ListScope&, const SuppressionEntry&)>& fn) {
  std::string from(1, kUnsubscribePrefix), to(1, static_cast<char>(kUnsubscribePrefix + 1));
  return s.scan(store::Cf::kSuppression, from, to, [&](std::string_view k, std::string_view v) {
    // kind name \0 topic \0 address
    if (k.size() < 2) return true;
    size_t a = k.find('\0', 2);
    size_t b = a == std::string_view::npos ? a : k.find('\0', a + 1);
    if (b == std::string_view::npos) return true;
    ListScope scope{static_cast<ListScope::Kind>(k[1]), std::string(k.substr(2, a - 2)),
                    std::string(k.substr(a + 1, b - a - 1))};
    auto e = decode_suppression(k.substr(b + 1), v);
    if (!e) return true;
    return fn(scope, *e);
  });
}

}  // namespace mta::queue
