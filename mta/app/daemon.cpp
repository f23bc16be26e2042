// `mta serve`: wiring only. Start-up order: config, logging, bounce rules,
// spool, scheduler and delivery engine, then listeners (bound before the io
// threads run, so a port conflict is an error at start), then io threads,
// then READY=1 to systemd.
//
// Shutdown (SIGTERM/SIGINT): STOPPING=1; close the SMTP listeners and let
// sessions finish their transactions; stop scheduling, give queued jobs
// back to the queue and let delivery connections finish their current
// transaction (both bounded by kDrainTimeout); stop the io threads; wait
// for every pending spool write; close the spool.
// SIGHUP reloads the config; a bad new config is logged and ignored.
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "mta/app/commands.hpp"
#include "mta/app/wiring.hpp"
#include "mta/config/config.hpp"
#include "mta/core/clock.hpp"
#include "mta/core/log.hpp"
#include "mta/delivery/engine.hpp"
#include "mta/dns/resolver.hpp"
#include "mta/events/outbox.hpp"
#include "mta/http/metrics_server.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"
#include "mta/smtp/server.hpp"
#include "mta/store/store.hpp"

namespace mta::app {
namespace {

constexpr auto kDrainTimeout = std::chrono::seconds(30);
// Until webhooks publish (and then delete) events, the outbox keeps them
// this long.
constexpr auto kOutboxRetention = std::chrono::hours(24);

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
  core::SystemClock clock;
  auto scheduler =
      std::make_unique<queue::Scheduler>(**store, **spool, clock, scheduler_options(*cfg));
  auto engine =
      std::make_unique<delivery::Engine>(io, **store, *scheduler, *resolver, cfg, *classifier);
  const std::string reporting_mta = cfg->hostname;
  (*spool)->set_batch_hook(
      [](const queue::Message& m, store::Batch& b) { events::add_send(b, m); });
  (*spool)->set_accepted_hook([s = scheduler.get()](auto m) { s->admit(std::move(m)); });
  scheduler->start(
      [e = engine.get()](queue::Job j) { e->dispatch(std::move(j)); },
      [&reporting_mta, acc = accounting.get()](const queue::Decision& d, store::Batch& b) {
        events::add_decision(b, d, reporting_mta);
        if (acc) acc->write(d);
      });

  auto smtp_server = std::make_unique<smtp::Server>(io, **spool, cfg);
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

  Signals sig;
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  wait_signal(signals, sig);

  unsigned n_threads = std::max(2u, std::thread::hardware_concurrency());
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < n_threads; ++i) threads.emplace_back([&io] { io.run(); });

  sd_notify(0, "READY=1\nSTATUS=accepting mail");
  spdlog::info("mta=ready io_threads={}", n_threads);

  auto next_trim = std::chrono::steady_clock::now();
  for (;;) {
    std::unique_lock lock(sig.mu);
    sig.cv.wait_for(lock, std::chrono::minutes(1), [&] { return sig.stop || sig.reload; });
    if (sig.stop) break;
    bool reload = sig.reload;
    sig.reload = false;
    lock.unlock();
    if (std::chrono::steady_clock::now() >= next_trim) {
      next_trim = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      auto cutoff = clock.now_ms() - std::chrono::milliseconds(kOutboxRetention).count();
      auto n = events::trim(**store, cutoff);
      if (n && *n > 0) spdlog::info("events=trimmed count={}", *n);
    }
    if (!reload) continue;
    sd_notify(0, "RELOADING=1");
    auto next = config::load_file(config_path);
    std::string problem;
    if (next.error) problem = next.error->to_string();
    std::shared_ptr<const config::Config> next_cfg;
    std::shared_ptr<const bounce::Classifier> next_classifier;
    if (problem.empty()) {
      next_cfg = std::make_shared<const config::Config>(std::move(*next.config));
      auto c = load_classifier(*next_cfg);
      if (!c)
        problem = c.error().message;
      else
        next_classifier = *c;
    }
    if (!problem.empty()) {
      spdlog::error("mta=reload_failed error=\"{}\" (keeping the running config)", problem);
    } else {
      cfg = next_cfg;
      spdlog::set_level(spdlog::level::from_str(cfg->log_level));
      smtp_server->reload(cfg);
      engine->reload(cfg, next_classifier);
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
  scheduler->stop();
  engine->stop();
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  while ((smtp_server->active_sessions() > 0 || engine->connections() > 0) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (smtp_server->active_sessions() > 0 || engine->connections() > 0)
    spdlog::warn("mta=drain_timeout sessions={} connections={}", smtp_server->active_sessions(),
                 engine->connections());
  if (metrics_server) metrics_server->stop();
  signals.cancel();
  io.stop();
  for (auto& t : threads) t.join();
  // Every write queued so far (outcomes of the last deliveries) completes
  // before the objects its callbacks use go away.
  (void)(*store)->commit_sync(store::Batch{});
  smtp_server.reset();
  engine.reset();
  scheduler.reset();
  resolver.reset();
  spool->reset();
  store->reset();  // closes RocksDB
  spdlog::info("mta=stopped");
  return 0;
}

}  // namespace mta::app
