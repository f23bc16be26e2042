// Webhook publisher: takes every event out of the outbox and POSTs it,
// signed, to the webhooks of its message's configuration set, at least
// once.
//
// One thread, driving a libcurl multi handle; it never runs on, or waits
// for, the io_context, intake or delivery. Each round it
//   1. fans new outbox events out to per-destination durable queues (one
//      store batch: the queue entries, the outbox deletions and the cursor;
//      events no destination wants stay in the outbox for the retention
//      period, for `mta events tail`, and are trimmed after it);
//   2. tops up each destination's in-memory window (a bounded slice of its
//      queue, loaded in key order: the backlog lives on disk);
//   3. starts POSTs, at most max_in_flight per destination, never two
//      events of one message at once and never a later one before an
//      earlier one (per destination);
//   4. removes an event from its queue only after a 2xx. Anything else
//      (status, timeout, connection error) is retried after
//      backoff(failures); past the destination's retry_window the event
//      moves to the destination's dead-letter list.
// Crash safety: queue entries are deleted after the 2xx, so a kill -9 only
// causes the events in flight to be sent again (same X-MTA-Event-Id).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/core/result.hpp"
#include "mta/webhook/queue.hpp"

namespace mta::store {
class Store;
}

namespace mta::webhook {

struct PublisherOptions {
  // Outbox events no destination wants are kept this long.
  std::chrono::milliseconds outbox_retention{std::chrono::hours(24)};
  std::chrono::milliseconds poll_interval{50};  // how often the outbox is checked when idle
  size_t window = 512;                          // queue entries in memory per destination
  size_t fanout_batch = 1000;                   // outbox events per fan-out batch
  std::chrono::milliseconds max_retry{std::chrono::minutes(5)};  // backoff cap
};

class Publisher final {
 public:
  Publisher(store::Store& store, std::shared_ptr<const config::Config> cfg,
            PublisherOptions opts = {});
  ~Publisher();  // stop()
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Counts the backlog and dead letters of each destination (metrics) and
  // starts the thread.
  core::Status start();
  // Stops the thread; POSTs in flight are abandoned (their events stay
  // queued and are sent again at the next start). Idempotent.
  void stop();
  // New destinations and sets (SIGHUP). A destination kept by name keeps
  // its queue and window; a removed one stops being published (its queue
  // stays on disk until it is configured again).
  void reload(std::shared_ptr<const config::Config> cfg);
  // Re-queues dead letters of `destination` (empty: of every configured
  // destination), those in `ids` (hex event ids; empty: all), on the
  // publisher thread; `done` runs there too. For the admin API; listing is
  // webhook::list_dead() on the store.
  //
  // Replayed events go to the end of their queue with a new retry window,
  // so they may arrive after later events of the same message.
  void replay(std::string destination, std::vector<std::string> ids,
              std::function<void(core::Result<ReplayResult>)> done);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta::webhook
