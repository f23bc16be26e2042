// Delivery engine: takes jobs from the queue's scheduler, finds next hops
// (routes, else MX), runs SMTP client connections, classifies every reply
// and reports each recipient's outcome back to the queue.
//
// Destinations: jobs wait in a bounded ready queue per (source IP,
// destination domain); a destination has at most shaping.max_connections
// connections, each reused for up to max_messages_per_connection messages
// and kept idle for idle_timeout. A connection is never shared between
// source IPs. When every next hop of a destination fails to connect, the
// destination is marked dead for a short while and its queued jobs are
// deferred without connecting (Postfix's dead-destination rule), so a
// down server costs one connection attempt, not one per message.
//
// Threads: dispatch() and reload() may be called from any thread; the
// connections run as coroutines on the io_context.
#pragma once

#include <memory>

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

namespace mta::delivery {

class Engine final {
 public:
  Engine(asio::io_context& io, store::Store& store, queue::Scheduler& scheduler,
         dns::Resolver& resolver, std::shared_ptr<const config::Config> cfg,
         std::shared_ptr<const bounce::Classifier> classifier);
  ~Engine();

  void dispatch(queue::Job job);
  void reload(std::shared_ptr<const config::Config> cfg,
              std::shared_ptr<const bounce::Classifier> classifier);
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
