// `mta serve`: wiring only. Start-up order: config, logging, spool, then
// listeners (bound before the io threads run, so a port conflict is an
// error at start), then io threads, then READY=1 to systemd.
//
// Shutdown (SIGTERM/SIGINT): STOPPING=1, close listeners, let sessions
// finish their transactions (bounded by kDrainTimeout), stop the io threads,
// then close the spool (which drains pending commits and closes RocksDB).
// SIGHUP reloads the config; a bad new config is logged and ignored.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "mta/app/commands.hpp"
#include "mta/config/config.hpp"
#include "mta/core/log.hpp"
#include "mta/http/metrics_server.hpp"
#include "mta/queue/spool.hpp"
#include "mta/smtp/server.hpp"
#include "mta/store/store.hpp"

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

}  // namespace

int serve(const std::string& config_path) {
  auto loaded = config::load_file(config_path);
  if (loaded.error) {
    std::cerr << loaded.error->to_string() << "\n";
    return 2;
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*loaded.config));
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

  asio::io_context io;
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

  for (;;) {
    std::unique_lock lock(sig.mu);
    sig.cv.wait(lock, [&] { return sig.stop || sig.reload; });
    if (sig.stop) break;
    sig.reload = false;
    lock.unlock();
    sd_notify(0, "RELOADING=1");
    auto next = config::load_file(config_path);
    if (next.error) {
      spdlog::error("mta=reload_failed error=\"{}\" (keeping the running config)",
                    next.error->to_string());
    } else {
      cfg = std::make_shared<const config::Config>(std::move(*next.config));
      spdlog::set_level(spdlog::level::from_str(cfg->log_level));
      smtp_server->reload(cfg);
      spdlog::info("mta=reloaded config={} (listeners and spool_dir apply at restart)",
                   config_path);
    }
    sd_notify(0, "READY=1");
  }

  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  spdlog::info("mta=stopping sessions={}", smtp_server->active_sessions());
  smtp_server->stop();
  auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  while (smtp_server->active_sessions() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (smtp_server->active_sessions() > 0)
    spdlog::warn("mta=drain_timeout sessions={}", smtp_server->active_sessions());
  if (metrics_server) metrics_server->stop();
  signals.cancel();
  io.stop();
  for (auto& t : threads) t.join();
  smtp_server.reset();
  spool->reset();
  store->reset();  // drains pending commits, closes RocksDB
  spdlog::info("mta=stopped");
  return 0;
}

}  // namespace mta::app
