// `mta serve`: wiring only. Start-up order: config, logging, bounce rules,
// spool, scheduler and delivery engine, the webhook publisher (its own
// thread), then listeners (bound before the io threads run, so a port
// conflict is an error at start), then io threads, then READY=1 to systemd.
//
// Shutdown (SIGTERM/SIGINT): STOPPING=1; close the SMTP listeners and let
// sessions finish their transactions; stop scheduling, give queued jobs
// back to the queue and let delivery connections finish their current
// transaction (both bounded by kDrainTimeout), stop the webhook publisher
// (abandoning POSTs in flight: retried at the next start); stop the io
// threads; wait
// for every pending spool write; close the spool.
// SIGHUP reloads the config; a bad new config is logged and ignored.
//
// Warm-up counters (warmup::Limiter) are loaded from the spool at start,
// flushed every second and at shutdown. MTA_CLOCK_OFFSET (seconds, tests
// only) moves the daemon's clock for warm-up days and retry times.
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "mta/api/queue_summary.hpp"
#include "mta/api/server.hpp"
#include "mta/app/commands.hpp"
#include "mta/app/wiring.hpp"
#include "mta/config/config.hpp"
#include "mta/core/clock.hpp"
#include "mta/core/log.hpp"
#include "mta/delivery/engine.hpp"
#include "mta/delivery/render.hpp"
#include "mta/dns/resolver.hpp"
#include "mta/events/outbox.hpp"
#include "mta/feedback/processor.hpp"
#include "mta/feedback/record.hpp"
#include "mta/http/metrics_server.hpp"
#include "mta/http/tracking_server.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"
#include "mta/smtp/server.hpp"
#include "mta/store/store.hpp"
#include "mta/warmup/limiter.hpp"
#include "mta/webhook/publisher.hpp"

namespace mta::app {
namespace {

constexpr auto kDrainTimeout = std::chrono::seconds(30);

struct Signals {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool reload = false;
};

void wait_signal(asio::signal_set& set, Signals& sig) {
  set.async_wait([&set, &sig](const asio::error_code& ec, int signo) {
    if (ec) return;
    {
      std::lock_guard lock(sig.mu);
      if (signo == SIGHUP)
        sig.reload = true;
      else
        sig.stop = true;
    }
    sig.cv.notify_all();
    wait_signal(set, sig);
  });
}

// PowerMTA-style accounting: one JSON line per final outcome.
class Accounting {
 public:
  explicit Accounting(const std::string& path) : f_(std::fopen(path.c_str(), "a")) {
    if (!f_) spdlog::error("accounting=open_failed path={}", path);
  }
  ~Accounting() {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  void write(const queue::Decision& d) {
    if (d.state == queue::EnvelopeState::kQueued) return;
    const auto& m = *d.job.message;
    nlohmann::json j;
    j["type"] = d.state == queue::EnvelopeState::kDelivered ? "d"
                : d.state == queue::EnvelopeState::kExpired ? "e"
                                                            : "b";
    j["time"] = d.now_ms;
    j["queued"] = m.received_ms;
    j["id"] = m.id.hex();
    j["from"] = m.mail_from;
    j["rcpt"] = d.rcpt.address;
    j["configuration_set"] = m.configuration_set;
    j["attempts"] = d.attempts;
    j["reply"] = d.outcome.reply;
    if (!d.outcome.category.empty()) j["category"] = d.outcome.category;
    if (!d.outcome.bounce_type.empty()) j["bounce_type"] = d.outcome.bounce_type;
    if (d.rcpt.suppressed) j["bounce_subtype"] = "Suppressed";
    j["pool"] = d.outcome.pool;
    j["ip"] = d.outcome.source_ip;
    j["remote_ip"] = d.outcome.remote_ip;
    std::string line = j.dump() + "\n";
    std::lock_guard lock(mu_);
    std::fwrite(line.data(), 1, line.size(), f_);
    std::fflush(f_);
  }

 private:
  std::mutex mu_;
  std::FILE* f_;
};

queue::SchedulerOptions scheduler_options(const config::Config& c) {
  queue::SchedulerOptions o;
  o.max_active = c.delivery.max_active;
  o.retry.intervals.assign(c.retry.intervals.begin(), c.retry.intervals.end());
  o.retry.max_age = c.retry.max_age;
  return o;
}

// The config as the commit thread's accepted hook sees it across reloads.
class CurrentConfig {
 public:
  explicit CurrentConfig(std::shared_ptr<const config::Config> c) : c_(std::move(c)) {}
  std::shared_ptr<const config::Config> get() const {
    std::lock_guard lock(mu_);
    return c_;
  }
  void set(std::shared_ptr<const config::Config> c) {
    std::lock_guard lock(mu_);
    c_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const config::Config> c_;
};

bool urgent(const config::Config& c, const queue::Message& m) {
  const config::ConfigurationSet* s = c.find_set(m.configuration_set);
  return s && s->priority == config::Priority::kHigh;
}

// Per-IP warm-up gauges, refreshed every second from the limiter.
void export_warmup(const warmup::Limiter& limiter, core::SysTime now) {
  for (const auto& s : limiter.status(now)) {
    double limit = s.daily_limit == warmup::kUnlimited ? std::numeric_limits<double>::infinity()
                                                       : static_cast<double>(s.daily_limit);
    metrics::gauge("mta_warmup_daily_limit",
                   "Messages the IP may send today under its warm-up schedule (+Inf: warm)",
                   {{"ip", s.ip}})
        .set(limit);
    metrics::gauge("mta_warmup_sent_today", "Messages the IP sent today (its local day)",
                   {{"ip", s.ip}})
        .set(static_cast<double>(s.sent_today));
    metrics::gauge("mta_warmup_day", "Effective warm-up day of the IP (0: no warm-up)",
                   {{"ip", s.ip}})
        .set(s.day);
    metrics::gauge("mta_warmup_held", "1 while throttling holds the IP's warm-up day",
                   {{"ip", s.ip}})
        .set(s.held ? 1 : 0);
    for (const auto& p : s.providers)
      metrics::gauge("mta_backoff_multiplier",
                     "Adaptive backoff rate multiplier of a (source IP, provider); 1 = full rate",
                     {{"ip", s.ip}, {"provider", p.provider.empty() ? "all" : p.provider}})
          .set(p.multiplier);
  }
}

dns::ResolverOptions resolver_options(const config::Config& c) {
  dns::ResolverOptions o;
  o.servers = c.dns.servers;
  o.timeout = c.dns.timeout;
  o.tries = static_cast<int>(c.dns.attempts);
  return o;
}

}  // namespace

int serve(const std::string& config_path) {
  auto loaded = config::load_file(config_path);
  if (loaded.error) {
    std::cerr << loaded.error->to_string() << "\n";
    return 2;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
  auto classifier = load_classifier(*cfg);
  if (!classifier) {
    std::cerr << classifier.error().message << "\n";
    return 2;
  }
  auto signer = load_signer(*cfg);
  if (!signer) {
    std::cerr << config_path << ": " << signer.error().message << "\n";
    return 2;
  }
  core::init_logging(cfg->log_level);
  spdlog::info("mta=starting config={} spool={} hostname={}", config_path, cfg->spool_dir,
               cfg->hostname);

  auto store = store::Store::open(cfg->spool_dir, store::Mode::kReadWrite);
  if (!store) {
    spdlog::critical("mta=fatal error=\"{}\"", store.error().message);
    return 1;
  }
  auto spool = queue::Spool::open(**store);
  if (!spool) {
    spdlog::critical("mta=fatal error=\"{}\"", spool.error().message);
    return 1;
  }
  spdlog::info("mta=spool_open messages={}", (*spool)->message_count());

  std::unique_ptr<Accounting> accounting;
  if (!cfg->accounting.path.empty()) {
    accounting = std::make_unique<Accounting>(cfg->accounting.path);
    if (!accounting->ok()) return 1;
  }

  asio::io_context io;
  std::unique_ptr<dns::Resolver> resolver;
  try {
    resolver = std::make_unique<dns::Resolver>(io.get_executor(), resolver_options(*cfg));
  } catch (const std::exception& e) {
    spdlog::critical("mta=fatal error=\"dns: {}\"", e.what());
    return 1;
  }
  core::OffsetClock clock;
  if (auto off = clock_offset(); off.count() != 0) {
    clock.advance(off);
    spdlog::warn("mta=clock_offset seconds={} (MTA_CLOCK_OFFSET: for tests only)",
                 off.count() / 1000);
  }
  warmup::Limiter limiter(limiter_options(*cfg));
  if (auto s = limiter.configure(limiter_ips(*cfg), limiter_options(*cfg)); !s.ok()) {
    std::cerr << config_path << ": " << s.error().message << "\n";
    return 2;
  }
  if (auto s = limiter.load(**store); !s.ok())
    spdlog::error("warmup=load_failed error=\"{}\" (counters start from zero)", s.error().message);
  auto scheduler =
      std::make_unique<queue::Scheduler>(**store, **spool, clock, scheduler_options(*cfg));
  auto engine = std::make_unique<delivery::Engine>(io, **store, *scheduler, *resolver, limiter,
                                                   clock, cfg, *classifier, *signer);
  CurrentConfig current(cfg);
  const std::string reporting_mta = cfg->hostname;
  // The acceptance batch also holds the Send event and, while feedback
  // addresses or tracking are configured, the record a later complaint,
  // open, click or unsubscribe is matched with (SES's mail object).
  (*spool)->set_batch_hook([&current](const queue::Message& m, store::Batch& b) {
    events::add_send(b, m);
    auto c = current.get();
    if (!c->feedback.addresses.empty() || c->tracking.configured()) feedback::add_record(b, m);
  });
  (*spool)->set_accepted_hook([s = scheduler.get(), &current](auto m) {
    bool u = urgent(*current.get(), *m);
    s->admit(std::move(m), u);
  });
  // Tracked mail has a body per recipient: one job (transaction) each.
  scheduler->set_per_recipient([&current](const queue::Message& m) {
    auto c = current.get();
    const config::ConfigurationSet* set = c->find_set(m.configuration_set);
    if (!set) set = c->find_set(c->default_configuration_set);
    return set && delivery::per_recipient(*c, *set, m);
  });
  scheduler->start(
      [e = engine.get()](queue::Job j) { e->dispatch(std::move(j)); },
      [&reporting_mta, acc = accounting.get()](const queue::Decision& d, store::Batch& b) {
        events::add_decision(b, d, reporting_mta);
        if (acc) acc->write(d);
      });
  // Webhooks, on their own thread: publishes the outbox, including what
  // it held at start-up (events of before a restart or crash).
  auto publisher = std::make_unique<webhook::Publisher>(**store, cfg);
  if (auto s = publisher->start(); !s.ok()) {
    spdlog::critical("mta=fatal error=\"{}\"", s.error().message);
    return 1;
  }

  auto smtp_server = std::make_unique<smtp::Server>(io, **spool, cfg);
  auto feedback_processor = std::make_unique<feedback::Processor>(**store);
  smtp_server->set_feedback_handler([p = feedback_processor.get()](
                                        std::string report, std::string client_ip,
                                        std::function<void(smtp::FeedbackReply)> done) {
    p->submit(std::move(report), std::move(client_ip), [done = std::move(done)](feedback::Reply r) {
      done({r.code, std::move(r.enhanced), std::move(r.text)});
    });
  });
  if (auto s = smtp_server->start(); !s.ok()) {
    spdlog::critical("mta=fatal error=\"{}\"", s.error().message);
    return 1;
  }
  std::unique_ptr<http::MetricsServer> metrics_server;
  if (cfg->metrics.listen) {
    metrics_server = std::make_unique<http::MetricsServer>(io, *cfg->metrics.listen);
    if (auto s = metrics_server->start(); !s.ok()) {
      spdlog::critical("mta=fatal error=\"{}\"", s.error().message);
      return 1;
    }
  }
  // Click redirects, the open pixel and one-click unsubscribe.
  std::unique_ptr<http::TrackingServer> tracking_server;
  if (cfg->tracking.listen) {
    auto rules = load_machine_rules(*cfg);
    if (!rules) {
      std::cerr << rules.error().message << "\n";
      return 2;
    }
    tracking_server =
        std::make_unique<http::TrackingServer>(io, **store, clock, tracking_options(*cfg, *rules));
    if (auto s = tracking_server->start(); !s.ok()) {
      spdlog::critical("mta=fatal error=\"{}\"", s.error().message);
      return 1;
    }
  }

  // The HTTP API. Admin hooks for data other modules own are connected
  // here as those modules provide them; unset ones answer 501.
  std::unique_ptr<api::Server> api_server;
  if (cfg->http.listen) {
    api::AdminHooks hooks;
    hooks.dead_letters =
        [st = store->get()](size_t limit) -> api::AdminResult<std::vector<api::DeadLetter>> {
      std::vector<api::DeadLetter> out;
      auto s = webhook::list_dead(*st, "", [&](const webhook::DeadLetter& d) {
        out.push_back({d.event_id, d.destination, d.event_type, d.message_id, d.dead_ms, d.attempts,
                       d.last_error});
        return limit == 0 || out.size() < limit;
      });
      if (!s.ok()) return api::AdminError{500, "InternalFailure", s.error().message};
      return out;
    };
    hooks.replay_dead_letters =
        [pub = publisher.get()](const std::vector<std::string>& ids) -> api::AdminResult<uint64_t> {
      std::promise<core::Result<webhook::ReplayResult>> done;
      auto f = done.get_future();
      pub->replay({}, ids,
                  [&done](core::Result<webhook::ReplayResult> r) { done.set_value(std::move(r)); });
      auto r = f.get();
      if (!r) return api::AdminError{500, "InternalFailure", r.error().message};
      if (!ids.empty() && r->replayed.empty())
        return api::AdminError{404, "NotFoundException", "no such dead letter"};
      return static_cast<uint64_t>(r->replayed.size());
    };
    // GET /v2/email/dedicated-ips: the pools of the running config with
    // the warm-up limiter's view of each IP.
    // Suspend/resume of a pool, an IP or a destination domain, and
    // bounce-all for a domain: the delivery engine and the scheduler.
    hooks.suspend = [e = engine.get()](api::SuspendKind kind, const std::string& name,
                                       bool on) -> api::AdminResult<bool> {
      auto k = kind == api::SuspendKind::kPool ? delivery::Engine::Pause::kPool
               : kind == api::SuspendKind::kIp ? delivery::Engine::Pause::kIp
                                               : delivery::Engine::Pause::kDomain;
      auto s = e->set_paused(k, name, on);
      if (!s.ok()) {
        bool unknown = s.error().message.rfind("no ", 0) == 0;
        return api::AdminError{unknown ? 404 : 400,
                               unknown ? "NotFoundException" : "BadRequestException",
                               s.error().message};
      }
      return on;
    };
    hooks.bounce_all = [e = engine.get()](const std::string& name) -> api::AdminResult<uint64_t> {
      auto n = e->bounce_all(name);
      if (!n) return api::AdminError{400, "BadRequestException", n.error().message};
      return static_cast<uint64_t>(*n);
    };
    hooks.queue_summary = [st = store->get(), &current,
                           e = engine.get()]() -> api::AdminResult<api::QueueSummary> {
      return api::spool_summary(*st, *current.get(), 50,
                                [e](const std::string& d) { return e->provider_of(d); });
    };
    hooks.dedicated_ips =
        [&limiter, &current,
         &clock](const std::string& pool) -> api::AdminResult<std::vector<api::DedicatedIp>> {
      auto c = current.get();
      if (!pool.empty() && !c->find_pool(pool))
        return api::AdminError{404, "NotFoundException", "Pool " + pool + " does not exist"};
      std::map<std::string, warmup::IpStatus> by_ip;
      for (auto& st : limiter.status(clock.now())) by_ip.emplace(st.ip, std::move(st));
      std::vector<api::DedicatedIp> out;
      for (const auto& p : c->ip_pools) {
        if (!pool.empty() && p.name != pool) continue;
        for (const auto& ip : p.ips) {
          api::DedicatedIp d;
          d.ip = ip.address.to_string();
          d.pool = p.name;
          auto it = by_ip.find(d.ip);
          if (it != by_ip.end()) {
            const auto& st = it->second;
            d.sent_today = st.sent_today;
            bool warming = st.state == warmup::WarmupState::kInProgress ||
                           st.state == warmup::WarmupState::kNotStarted;
            d.warmup_status = warming ? "IN_PROGRESS" : "DONE";
            d.warmup_percentage = warming ? st.percent : 100;
            d.warmup_day = warming ? static_cast<uint32_t>(std::max(0, st.day)) : 0;
            d.limit_today = st.daily_limit == warmup::kUnlimited ? 0 : st.daily_limit;
          }
          out.push_back(std::move(d));
        }
      }
      return out;
    };
    api_server = std::make_unique<api::Server>(io, **store, **spool, cfg, std::move(hooks));
    if (auto s = api_server->start(); !s.ok()) {
      spdlog::critical("mta=fatal error=\"{}\"", s.error().message);
      return 1;
    }
  }

  Signals sig;
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  wait_signal(signals, sig);

  unsigned n_threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n_threads; ++i) threads.emplace_back([&io] { io.run(); });

  sd_notify(0, "READY=1\nSTATUS=accepting mail");
  if (api_server) api_server->set_ready(true);
  spdlog::info("mta=ready io_threads={}", n_threads);

  auto next_trim = std::chrono::steady_clock::now();
  for (;;) {
    std::unique_lock lock(sig.mu);
    sig.cv.wait_for(lock, std::chrono::seconds(1), [&] { return sig.stop || sig.reload; });
    if (sig.stop) break;
    bool reload = sig.reload;
    sig.reload = false;
    lock.unlock();
    if (auto s = limiter.flush(**store); !s.ok())
      spdlog::warn("warmup=flush_failed error=\"{}\" (kept for the next flush)", s.error().message);
    export_warmup(limiter, clock.now());
    if (std::chrono::steady_clock::now() >= next_trim) {
      next_trim = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      // (The event outbox is trimmed by the webhook publisher.)
      // Feedback records are keyed by real time (message ids), whatever
      // the clock offset of tests.
      auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
      auto fb = feedback::trim(**store, now_ms - cfg->feedback.retention.count());
      if (!fb) spdlog::warn("feedback=trim_failed error=\"{}\"", fb.error().message);
      if (fb && *fb > 0) spdlog::info("feedback=trimmed records={}", *fb);
      if (api_server) api_server->trim_idempotency();
    }
    if (!reload) continue;
    sd_notify(0, "RELOADING=1");
    auto next = config::load_file(config_path);
    std::string problem;
    if (next.error) problem = next.error->to_string();
    std::shared_ptr<const config::Config> next_cfg;
    std::shared_ptr<const bounce::Classifier> next_classifier;
    std::shared_ptr<const dkim::Signer> next_signer;
    std::shared_ptr<const tracking::MachineRules> next_machine_rules;
    if (problem.empty()) {
      next_cfg = std::make_shared<const config::Config>(std::move(*next.config));
      auto c = load_classifier(*next_cfg);
      if (!c)
        problem = c.error().message;
      else
        next_classifier = *c;
    }
    if (problem.empty()) {
      // Keys are read again: a rotated key file takes effect on SIGHUP.
      auto sg = load_signer(*next_cfg);
      if (!sg)
        problem = config_path + ": " + sg.error().message;
      else
        next_signer = *sg;
    }
    if (problem.empty() && tracking_server) {
      auto mr = load_machine_rules(*next_cfg);
      if (!mr)
        problem = mr.error().message;
      else
        next_machine_rules = *mr;
    }
    if (problem.empty()) {
      auto s = limiter.configure(limiter_ips(*next_cfg), limiter_options(*next_cfg));
      if (!s.ok()) problem = config_path + ": " + s.error().message;
    }
    if (!problem.empty()) {
      spdlog::error("mta=reload_failed error=\"{}\" (keeping the running config)", problem);
    } else {
      cfg = next_cfg;
      current.set(cfg);
      spdlog::set_level(spdlog::level::from_str(cfg->log_level));
      smtp_server->reload(cfg);
      if (api_server) api_server->reload(cfg);
      engine->reload(cfg, next_classifier, next_signer);
      publisher->reload(cfg);
      if (tracking_server) tracking_server->reconfigure(tracking_options(*cfg, next_machine_rules));
      scheduler->set_retry(scheduler_options(*cfg).retry);
      spdlog::info(
          "mta=reloaded config={} (listeners, spool_dir, dns and accounting apply at restart)",
          config_path);
    }
    sd_notify(0, "READY=1");
  }

  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  spdlog::info("mta=stopping sessions={} connections={}", smtp_server->active_sessions(),
               engine->connections());
  smtp_server->stop();
  if (api_server) api_server->stop();
  scheduler->stop();
  engine->stop();
  // POSTs in flight are abandoned: their events stay queued and go out
  // again at the next start (same X-MTA-Event-Id).
  publisher->stop();
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  while ((smtp_server->active_sessions() > 0 || engine->connections() > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (smtp_server->active_sessions() > 0 || engine->connections() > 0)
    spdlog::warn("mta=drain_timeout sessions={} connections={}", smtp_server->active_sessions(),
                 engine->connections());
  if (metrics_server) metrics_server->stop();
  if (tracking_server) tracking_server->stop();
  if (auto s = limiter.flush(**store); !s.ok())
    spdlog::error("warmup=flush_failed error=\"{}\"", s.error().message);
  signals.cancel();
  io.stop();
  for (auto& t : threads) t.join();
  feedback_processor.reset();  // after the sessions: handles what they handed it
  // Every write queued so far (outcomes of the last deliveries) completes
  // before the objects its callbacks use go away.
  (void)(*store)->commit_sync(store::Batch{});
  smtp_server.reset();
  api_server.reset();
  engine.reset();
  scheduler.reset();
  resolver.reset();
  spool->reset();
  publisher.reset();
  store->reset();  // closes RocksDB
  spdlog::info("mta=stopped");
  return 0;
}

}  // namespace mta::app
