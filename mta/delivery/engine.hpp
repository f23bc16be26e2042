// Delivery engine: takes jobs from the queue's scheduler, finds next hops
// (routes, else MX), runs SMTP client connections, classifies every reply
// and reports each recipient's outcome back to the queue.
//
// Routing (per job): the configuration set names a pool (a set removed by
// a reload falls back to the default set, logged once). The destination's
// next hops are looked up (routes, else MX) and their first host name gives
// the provider (shaping.providers, by MX suffix). The warm-up router then
// picks the pool's IP with room for that provider (warmup::Router: smooth
// weighted round-robin over what each IP may still send this hour, scaled
// by its backoff multiplier) and takes one unit of its allowance. When no
// IP has room, the pool's overflow decides: "pool:NAME" tries that pool,
// "defer" postpones the job until the earliest IP has room (a warm-up
// wait: not an attempt, not counted toward max_age, see queue::Outcome).
//
// Destinations: jobs wait in a bounded ready queue per (source IP, site),
// where the site is the provider for listed providers (their domains share
// servers, like PowerMTA's mx-rollup) and the domain otherwise. A site has
// at most max_connections connections (the provider's shaping, scaled down
// by the backoff multiplier of that (IP, provider)), each reused for up to
// max_messages_per_connection messages and kept idle for idle_timeout. A
// connection is never shared between source IPs. Jobs of high-priority
// configuration sets are taken before normal ones, normal before bulk.
// When every next hop fails to connect, the destination is marked dead
// for a short while and its queued jobs are deferred without connecting
// (Postfix's dead-destination rule).
//
// Rendering (render.hpp): every job's bytes are rendered (tracking, the
// List-Unsubscribe fields, DKIM signatures) just before its transaction.
// Sets with tracking or one-click unsubscribe get a different body per
// recipient: the daemon has the scheduler make one job per recipient for
// them (delivery::per_recipient, queue::Scheduler::set_per_recipient); a
// job of several recipients gets no per-recipient links.
//
// Units: a job takes one unit of its IP's allowance when routed; the unit
// is given back when no SMTP transaction was started (dead destination,
// connection failure, shutdown). Every reply of a transaction reports its
// throttle verdict to the limiter (adaptive backoff).
//
// Threads: dispatch() and reload() may be called from any thread; the
// connections run as coroutines on the io_context.
#pragma once

#include <memory>

#include "mta/core/result.hpp"
#include "mta/queue/scheduler.hpp"

namespace asio {
class io_context;
}
namespace mta::config {
struct Config;
}
namespace mta::dns {
class Resolver;
}
namespace mta::store {
class Store;
}
namespace mta::bounce {
class Classifier;
}
namespace mta::core {
class Clock;
}
namespace mta::warmup {
class Limiter;
}
namespace mta::dkim {
class Signer;
}

namespace mta::delivery {

class Engine final {
 public:
  Engine(asio::io_context& io, store::Store& store, queue::Scheduler& scheduler,
         dns::Resolver& resolver, warmup::Limiter& limiter, const core::Clock& clock,
         std::shared_ptr<const config::Config> cfg,
         std::shared_ptr<const bounce::Classifier> classifier,
         std::shared_ptr<const dkim::Signer> signer = nullptr);
  ~Engine();

  void dispatch(queue::Job job);

  // Operator pauses (admin API, `mta ctl suspend|resume`): no sending from
  // a pool or an IP, or to a destination domain, until resumed. Paused mail
  // stays queued (postponed, not an attempt). Kept in the spool, so a
  // restart keeps them. Errors: an unknown pool or IP.
  enum class Pause { kPool, kIp, kDomain };
  core::Status set_paused(Pause kind, const std::string& name, bool paused);
  // Bounces every queued recipient at `domain` that is not being delivered
  // right now (the operator's bounce-all); returns how many. Error: not a
  // domain.
  core::Result<size_t> bounce_all(const std::string& domain);
  // The provider (shaping.providers name, or "other") the engine last
  // routed `domain` to; "" when it has not routed it yet.
  std::string provider_of(const std::string& domain) const;
  void reload(std::shared_ptr<const config::Config> cfg,
              std::shared_ptr<const bounce::Classifier> classifier,
              std::shared_ptr<const dkim::Signer> signer);
  // Stops taking jobs: queued ones are given back (postponed), connections
  // finish their current transaction and close. Returns at once;
  // connections() reaching zero means done.
  void stop();
  size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::delivery
