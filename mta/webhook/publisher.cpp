#include "mta/webhook/publisher.hpp"

#include <curl/curl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_set>

#include "mta/core/id.hpp"
#include "mta/events/outbox.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/store/store.hpp"
#include "mta/webhook/backoff.hpp"
#include "mta/webhook/fanout.hpp"
#include "mta/webhook/signing.hpp"

namespace mta::webhook {
namespace {

using Clock = std::chrono::steady_clock;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One queue entry loaded in a destination's window.
struct Entry {
  explicit Entry(QueueRecord r) : rec(std::move(r)) {}
  QueueRecord rec;
  uint32_t failures = 0;
  int64_t next_ms = 0;  // wall clock ms of the next try
  bool in_flight = false;
  std::string last_error;
};

struct Destination {
  config::EventDestination cfg;
  std::string qprefix, qend;
  std::map<std::string, Entry> window;  // queue key -> entry
  std::string loaded_to;                // last queue key loaded into the window
  bool disk_more = true;                // the queue may hold keys after loaded_to
  bool dirty = true;                    // something changed: look for work
  int64_t next_due_ms = 0;              // earliest retry among waiting entries
  uint32_t in_flight = 0;               // POSTs
  uint32_t failing = 0;                 // consecutive failed POSTs
  std::string last_error;               // of the last failed POST
  bool retired = false;                 // removed by a reload

  metrics::Gauge backlog, dead;
  metrics::Counter failed;
  std::array<metrics::Counter, config::kEventTypeCount> published;
  metrics::Histogram seconds;

  explicit Destination(const config::EventDestination& d)
      : cfg(d),
        qprefix(queue_prefix(d.name)),
        qend(prefix_end(qprefix)),
        backlog(metrics::gauge("mta_events_backlog", "Events queued for a webhook destination",
                               {{"destination", d.name}})),
        dead(metrics::gauge("mta_events_dead", "Dead letters of a webhook destination",
                            {{"destination", d.name}})),
        failed(metrics::counter("mta_events_failed_total",
                                "Failed webhook POSTs (non-2xx, timeout, connection error)",
                                {{"destination", d.name}})),
        seconds(metrics::histogram("mta_event_publish_seconds",
                                   "Time of one successful webhook POST",
                                   metrics::latency_buckets(), {{"destination", d.name}})) {
    for (int i = 0; i < config::kEventTypeCount; ++i)
      published[i] = metrics::counter(
          "mta_events_published_total", "Events delivered to a webhook destination (2xx)",
          {{"destination", d.name},
           {"type", config::to_string(static_cast<config::EventType>(i))}});
  }
};

// One POST.
struct Request {
  std::string destination;
  std::vector<std::string> keys;  // queue keys of the events in the body
  std::string body;
  std::string response;  // the first bytes, for the error text
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  Clock::time_point started;
};

size_t on_response(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Request*>(user);
  size_t len = size * n;
  if (r->response.size() < 200) r->response.append(data, std::min(len, 200 - r->response.size()));
  return len;
}

// Printable, single-line, short: for logs and dead letters.
std::string one_line(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (s.size() > 200) s.resize(200);
  return s;
}

}  // namespace

struct Publisher::Impl {
  store::Store& store;
  PublisherOptions opts;
  std::shared_ptr<const config::Config> cfg;
  Routing routing;
  std::map<std::string, std::unique_ptr<Destination>> dests;
  std::string cursor;  // last outbox key fanned out

  CURLM* multi = nullptr;
  std::unordered_set<CURL*> active;  // easy handles in `multi`
  std::thread thread;
  std::mutex mu;
  std::vector<std::function<void()>> commands;
  bool stopping = false;
  std::mt19937_64 rng{std::random_device{}()};

  int64_t next_fanout_ms = 0;
  int64_t next_trim_ms = 0;
  // Deletions of published events and dead letters, committed together
  // every kAckInterval or kAckOps operations (one store write per POST
  // would cost more than the POST).
  store::Batch acks;
  size_t ack_ops = 0;
  int64_t acks_due_ms = 0;
  static constexpr int64_t kAckInterval = 20;
  static constexpr size_t kAckOps = 512;
  std::vector<CURL*> idle_handles;  // finished easy handles, reused

  Impl(store::Store& s, std::shared_ptr<const config::Config> c, PublisherOptions o)
      : store(s), opts(o), cfg(std::move(c)), routing(*cfg) {}

  // ---- set-up ----------------------------------------------------------

  void configure(const config::Config& c) {
    for (auto& [name, d] : dests) d->retired = true;
    for (const auto& dc : c.event_destinations) {
      auto it = dests.find(dc.name);
      if (it == dests.end()) {
        auto d = std::make_unique<Destination>(dc);
        if (auto n = count_queue(store, dc.name)) d->backlog.set(static_cast<double>(*n));
        if (auto n = count_dead(store, dc.name)) d->dead.set(static_cast<double>(*n));
        dests.emplace(dc.name, std::move(d));
      } else {
        it->second->cfg = dc;
        it->second->retired = false;
        it->second->dirty = true;
      }
    }
    routing = Routing(c);
  }

  // ---- fan-out ---------------------------------------------------------

  struct Fanned {
    std::string destination, key;
    QueueRecord rec;
  };

  // Moves up to fanout_batch outbox events into the destination queues.
  // Returns true when there may be more right away.
  bool fanout() {
    std::string from = cursor;
    if (!from.empty()) from.push_back('\0');  // exclusive
    store::Batch b;
    std::vector<Fanned> fanned;
    size_t n = 0;
    std::string last = cursor;
    int64_t now = wall_ms();
    bool wanted_by_anyone = !routing.empty();
    auto st = store.scan(store::Cf::kEvents, from, {}, [&](std::string_view k, std::string_view v) {
      last = std::string(k);
      ++n;
      if (wanted_by_anyone) {
        auto r = route_event(routing, k, v);
        if (!r) {
          spdlog::warn("webhooks=unreadable_event key={}",
                       core::MessageId::from_key(k) ? core::MessageId::from_key(k)->hex() : "?");
        } else if (!r->destinations.empty()) {
          QueueRecord q{std::string(k), r->type, r->message_id, now, std::move(r->body)};
          for (const auto& d : r->destinations) {
            std::string qk = queue_key(d, k);
            b.put(store::Cf::kWebhooks, qk, encode(q));
            fanned.push_back({d, std::move(qk), q});
          }
          b.del(store::Cf::kEvents, std::string(k));
        }
      }
      return n < opts.fanout_batch;
    });
    if (!st.ok()) {
      spdlog::error("webhooks=outbox_scan_failed error=\"{}\"", st.error().message);
      return false;
    }
    if (last == cursor) return false;
    b.put(store::Cf::kWebhooks, std::string(kCursorKey), last);
    // Not synced: a crash before the OS writes it back loses the fan-out
    // and the outbox deletions together (the batch is atomic), so the
    // events are fanned out again.
    auto c = store.commit_sync(std::move(b), /*sync=*/false);
    if (!c.ok()) {
      spdlog::error("webhooks=fanout_failed error=\"{}\"", c.error().message);
      return false;
    }
    cursor = last;
    for (auto& f : fanned) {
      auto it = dests.find(f.destination);
      if (it == dests.end()) continue;
      Destination& d = *it->second;
      d.backlog.inc();
      if (!d.loaded_to.empty() && f.key <= d.loaded_to) {
        // Below what the window has loaded (keys of a replay done while
        // the daemon was stopped can be newer): a refill would not find it.
        d.window.emplace(f.key, Entry(std::move(f.rec)));
        d.dirty = true;
      } else if (!d.disk_more && d.window.size() < opts.window) {
        d.window.emplace(f.key, Entry(std::move(f.rec)));
        d.loaded_to = f.key;
        d.dirty = true;
      } else {
        d.disk_more = true;
      }
    }
    return n >= opts.fanout_batch;
  }

  void load_cursor() {
    auto c = store.get(store::Cf::kWebhooks, kCursorKey);
    if (c && c->has_value()) cursor = **c;
  }

  // ---- windows ---------------------------------------------------------

  void refill(Destination& d) {
    if (!d.disk_more || d.window.size() > opts.window / 2) return;
    size_t want = opts.window - d.window.size();
    std::string from = d.loaded_to.empty() ? d.qprefix : d.loaded_to + '\0';
    size_t got = 0;
    store::Batch bad;
    auto st =
        store.scan(store::Cf::kWebhooks, from, d.qend, [&](std::string_view k, std::string_view v) {
          d.loaded_to = std::string(k);
          auto rec = decode_queue_record(v);
          if (!rec) {
            spdlog::error("webhooks=bad_queue_record destination={}", d.cfg.name);
            bad.del(store::Cf::kWebhooks, std::string(k));
            return true;
          }
          d.window.emplace(std::string(k), Entry(std::move(*rec)));
          return ++got < want;
        });
    if (!st.ok()) {
      spdlog::error("webhooks=queue_scan_failed destination={} error=\"{}\"", d.cfg.name,
                    st.error().message);
      return;
    }
    if (got < want) d.disk_more = false;
    if (!bad.empty()) store.commit(std::move(bad), nullptr, false);
    if (got > 0) d.dirty = true;
  }

  // ---- POSTs -----------------------------------------------------------

  void dead_letter(Destination& d, const std::string& key, Entry& e, int64_t now) {
    // An event that never got its turn (an earlier event of its message
    // was failing) carries the destination's error.
    DeadRecord dr{e.rec, now, e.failures, e.last_error.empty() ? d.last_error : e.last_error};
    acks.put(store::Cf::kWebhooks, dead_key(d.cfg.name, e.rec.event_id), encode(dr));
    acks.del(store::Cf::kWebhooks, key);
    ack_ops += 2;
    d.backlog.dec();
    d.dead.inc();
    spdlog::debug(
        "webhooks=dead_letter destination={} event={} type={} message={} attempts={} "
        "error=\"{}\"",
        d.cfg.name, core::MessageId::from_key(e.rec.event_id)->hex(),
        config::ses_event_name(e.rec.type), e.rec.message_id, e.failures, dr.last_error);
  }

  void dispatch(Destination& d, int64_t now) {
    if (d.retired) return;
    if (!d.dirty && now < d.next_due_ms) return;
    d.dirty = false;
    d.next_due_ms = INT64_MAX;
    const auto window_ms = d.cfg.webhook.retry_window.count();
    std::unordered_set<std::string_view> blocked;  // messages with an earlier event pending
    std::vector<std::string> dead, batch;
    for (auto& [key, e] : d.window) {
      if (d.in_flight >= d.cfg.webhook.max_in_flight) break;
      const std::string& msg = e.rec.message_id;
      if (e.in_flight || blocked.count(msg)) {
        blocked.insert(msg);
        continue;
      }
      if (now - e.rec.queued_ms > window_ms && (e.failures > 0 || d.failing > 0)) {
        dead.push_back(key);
        continue;
      }
      blocked.insert(msg);
      if (e.next_ms > now) {
        d.next_due_ms = std::min(d.next_due_ms, e.next_ms);
        continue;
      }
      batch.push_back(key);
      if (batch.size() >= d.cfg.webhook.batch) {
        post(d, std::move(batch));
        batch.clear();
      }
    }
    if (!batch.empty()) post(d, std::move(batch));
    for (const auto& key : dead) {
      auto it = d.window.find(key);
      dead_letter(d, key, it->second, now);
      d.window.erase(it);
      d.dirty = true;
    }
    if (!dead.empty())
      spdlog::warn("webhooks=dead_lettered destination={} count={} last_error=\"{}\"", d.cfg.name,
                   dead.size(), d.last_error);
  }

  void post(Destination& d, std::vector<std::string> keys) {
    auto* r = new Request;
    r->destination = d.cfg.name;
    std::string ids;
    if (keys.size() == 1 && d.cfg.webhook.batch == 1) {
      r->body = d.window.at(keys[0]).rec.body;
    } else {
      r->body = "[";
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i) r->body += ',';
        r->body += d.window.at(keys[i]).rec.body;
      }
      r->body += ']';
    }
    for (const auto& k : keys) {
      auto& e = d.window.at(k);
      e.in_flight = true;
      if (!ids.empty()) ids += ',';
      ids += core::MessageId::from_key(e.rec.event_id)->hex();
    }
    r->keys = std::move(keys);
    int64_t ts = wall_ms() / 1000;
    r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
    r->headers = curl_slist_append(r->headers, ("X-MTA-Event-Id: " + ids).c_str());
    r->headers = curl_slist_append(r->headers, ("X-MTA-Timestamp: " + std::to_string(ts)).c_str());
    r->headers = curl_slist_append(
        r->headers, ("X-MTA-Signature: " + signature(d.cfg.webhook.secret, ts, r->body)).c_str());
    r->headers = curl_slist_append(r->headers, "Expect:");  // no 100-continue round trip
    r->headers = curl_slist_append(r->headers, "User-Agent: mta-webhook/0.1");
    CURL* h = nullptr;
    if (!idle_handles.empty()) {
      h = idle_handles.back();
      idle_handles.pop_back();
      curl_easy_reset(h);  // options back to defaults; the connection cache is the multi's
    } else {
      h = curl_easy_init();
      if (!h) MTA_PANIC("curl_easy_init failed");
    }
    curl_easy_setopt(h, CURLOPT_URL, d.cfg.webhook.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r->body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(d.cfg.webhook.timeout.count()));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_response);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(h, CURLOPT_PRIVATE, r);
    // Certificates and host names are verified (libcurl's defaults, kept).
    r->started = Clock::now();
    ++d.in_flight;
    active.insert(h);
    curl_multi_add_handle(multi, h);
  }

  void finished(CURL* h, CURLcode code) {
    Request* r = nullptr;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, &r);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(multi, h);
    active.erase(h);
    if (idle_handles.size() < 64)
      idle_handles.push_back(h);
    else
      curl_easy_cleanup(h);
    std::unique_ptr<Request> owned(r);
    curl_slist_free_all(r->headers);
    auto it = dests.find(r->destination);
    if (it == dests.end()) return;
    Destination& d = *it->second;
    --d.in_flight;
    d.dirty = true;
    int64_t now = wall_ms();
    if (code == CURLE_OK && status >= 200 && status < 300) {
      d.seconds.observe(std::chrono::duration<double>(Clock::now() - r->started).count());
      d.failing = 0;
      for (const auto& k : r->keys) {
        auto e = d.window.find(k);
        if (e == d.window.end()) continue;
        d.published[static_cast<int>(e->second.rec.type)].inc();
        d.backlog.dec();
        acks.del(store::Cf::kWebhooks, k);
        ++ack_ops;
        d.window.erase(e);
      }
      return;
    }
    std::string error =
        code != CURLE_OK
            ? std::string(r->error[0] ? r->error : curl_easy_strerror(code))
            : "HTTP " + std::to_string(status) + (r->response.empty() ? "" : " " + r->response);
    error = one_line(std::move(error));
    d.last_error = error;
    d.failed.inc();
    if (d.failing++ == 0)
      spdlog::warn("webhooks=failing destination={} error=\"{}\"", d.cfg.name, error);
    else
      spdlog::debug("webhooks=post_failed destination={} error=\"{}\"", d.cfg.name, error);
    std::uniform_real_distribution<double> u(0, 1);
    for (const auto& k : r->keys) {
      auto e = d.window.find(k);
      if (e == d.window.end()) continue;
      e->second.in_flight = false;
      e->second.failures++;
      e->second.last_error = error;
      e->second.next_ms = now + backoff(e->second.failures, u(rng), opts.max_retry).count();
    }
  }

  void commit_acks(int64_t now, bool force = false) {
    if (acks.empty()) return;
    if (!force && ack_ops < kAckOps && now < acks_due_ms) return;
    // Not synced: losing a deletion only publishes that event again.
    store.commit(
        std::move(acks),
        [](core::Status s) {
          if (!s.ok()) spdlog::error("webhooks=ack_commit_failed error=\"{}\"", s.error().message);
        },
        false);
    acks = store::Batch{};
    ack_ops = 0;
    acks_due_ms = now + kAckInterval;
  }

  // ---- the thread ------------------------------------------------------

  void run() {
    for (;;) {
      std::vector<std::function<void()>> todo;
      {
        std::lock_guard lock(mu);
        if (stopping) break;
        todo.swap(commands);
      }
      for (auto& f : todo) f();
      int64_t now = wall_ms();
      bool more = false;
      if (now >= next_fanout_ms) {
        more = fanout();
        next_fanout_ms = more ? now : now + opts.poll_interval.count();
      }
      for (auto& [name, d] : dests) {
        refill(*d);
        dispatch(*d, now);
      }
      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left))
        if (m->msg == CURLMSG_DONE) finished(m->easy_handle, m->data.result);
      commit_acks(wall_ms());
      for (auto it = dests.begin(); it != dests.end();) {
        if (it->second->retired && it->second->in_flight == 0)
          it = dests.erase(it);
        else
          ++it;
      }
      if (now >= next_trim_ms) {
        next_trim_ms = now + 60'000;
        trim(now);
      }
      // Sleep until a socket is ready, the next retry, the next outbox
      // poll, or a wakeup (command, stop).
      int64_t wait = more ? 0 : next_fanout_ms - now;
      for (auto& [name, d] : dests)
        if (d->dirty)
          wait = 0;
        else if (d->next_due_ms != INT64_MAX)
          wait = std::min(wait, d->next_due_ms - now);
      if (!acks.empty()) wait = std::min(wait, acks_due_ms - now);
      long curl_wait = 0;
      curl_multi_timeout(multi, &curl_wait);
      if (curl_wait >= 0) wait = std::min<int64_t>(wait, curl_wait);
      wait = std::clamp<int64_t>(wait, 0, opts.poll_interval.count());
      if (wait > 0) curl_multi_poll(multi, nullptr, 0, static_cast<int>(wait), nullptr);
    }
    // Commands that came with the stop (a replay) still run.
    std::vector<std::function<void()>> todo;
    {
      std::lock_guard lock(mu);
      todo.swap(commands);
    }
    for (auto& f : todo) f();
    // Abandon what is in flight: the events stay queued.
    for (auto& [name, d] : dests) d->in_flight = 0;
    for (CURL* h : active) {
      Request* r = nullptr;
      curl_easy_getinfo(h, CURLINFO_PRIVATE, &r);
      curl_multi_remove_handle(multi, h);
      curl_easy_cleanup(h);
      if (r) {
        curl_slist_free_all(r->headers);
        delete r;
      }
    }
    active.clear();
    for (CURL* h : idle_handles) curl_easy_cleanup(h);
    idle_handles.clear();
    commit_acks(wall_ms(), /*force=*/true);
  }

  void trim(int64_t now) {
    if (cursor.empty()) return;
    auto n = events::trim(store, now - opts.outbox_retention.count(), cursor);
    if (n && *n > 0) spdlog::info("events=trimmed count={}", *n);
  }
};

Publisher::Publisher(store::Store& store, std::shared_ptr<const config::Config> cfg,
                     PublisherOptions opts)
    : impl_(std::make_unique<Impl>(store, std::move(cfg), opts)) {}

Publisher::~Publisher() {
  stop();
  if (impl_->multi) curl_multi_cleanup(impl_->multi);
}

core::Status Publisher::start() {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->multi = curl_multi_init();
  if (!impl_->multi) return core::make_error("webhooks: curl_multi_init failed");
  impl_->load_cursor();
  impl_->configure(*impl_->cfg);
  for (auto& [name, d] : impl_->dests)
    spdlog::info("webhooks=destination name={} url={} backlog={} dead={}", name, d->cfg.webhook.url,
                 d->backlog.value(), d->dead.value());
  Impl* p = impl_.get();
  impl_->thread = std::thread([p] {
    pthread_setname_np(pthread_self(), "mta-webhooks");  // for top -H and perf
    p->run();
  });
  return core::Ok{};
}

void Publisher::stop() {
  if (!impl_->thread.joinable()) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  curl_multi_wakeup(impl_->multi);
  impl_->thread.join();
}

void Publisher::reload(std::shared_ptr<const config::Config> cfg) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->commands.push_back([p = impl_.get(), cfg] {
      p->cfg = cfg;
      p->configure(*cfg);
    });
  }
  if (impl_->multi) curl_multi_wakeup(impl_->multi);
}

void Publisher::replay(std::string destination, std::vector<std::string> ids,
                       std::function<void(core::Result<ReplayResult>)> done) {
  {
    std::unique_lock lock(impl_->mu);
    if (impl_->stopping || !impl_->thread.joinable()) {
      lock.unlock();
      if (done) done(core::make_error("the webhook publisher is not running"));
      return;
    }
    impl_->commands.push_back([p = impl_.get(), destination = std::move(destination),
                               ids = std::move(ids), done = std::move(done)] {
      std::vector<std::string> names;
      if (!destination.empty())
        names.push_back(destination);
      else
        for (auto& [name, d] : p->dests)
          if (!d->retired) names.push_back(name);
      ReplayResult total;
      std::set<std::string> replayed;
      for (const auto& name : names) {
        auto r = replay_dead(p->store, name, ids, wall_ms());
        if (!r) {
          if (done) done(r.error());
          return;
        }
        if (auto it = p->dests.find(name); it != p->dests.end()) {
          auto& d = *it->second;
          d.disk_more = true;
          d.dirty = true;
          d.backlog.inc(static_cast<double>(r->replayed.size()));
          d.dead.dec(static_cast<double>(r->replayed.size()));
        }
        if (!r->replayed.empty())
          spdlog::info("webhooks=replayed destination={} count={}", name, r->replayed.size());
        replayed.insert(r->replayed.begin(), r->replayed.end());
        total.replayed.insert(total.replayed.end(), r->replayed.begin(), r->replayed.end());
      }
      for (const auto& id : ids) {
        std::string low = id;
        for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!replayed.count(low)) total.not_found.push_back(id);
      }
      if (done) done(std::move(total));
    });
  }
  if (impl_->multi) curl_multi_wakeup(impl_->multi);
}

}  // namespace mta::webhook
