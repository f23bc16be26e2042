// The HTTP API on http.listen: SES-compatible sending (v2 JSON
// POST /v2/email/outbound-emails, v1 query API POST / with SendEmail and
// SendRawEmail), authenticated with SigV4 or a Bearer secret
// (auth.hpp), and the admin API (admin keys only): the suppression list in
// SES v2 shapes, dedicated IPs, queue summary, suspend/resume, bounce-all,
// dead letters; GET /healthz and /readyz without auth.
//
// Served by RESTinio on the daemon's io_context (keep-alive, pipelining).
// Acceptance is the SMTP path's: compose (ses.hpp) → intake::prepare() →
// queue::Spool::accept(), and the reply is sent from the accept callback,
// after the synced group commit. Blocking work (idempotency look-ups,
// RocksDB scans, admin hooks) runs on two worker threads of its own.
#pragma once

#include <memory>

#include "mta/api/admin.hpp"
#include "mta/core/result.hpp"

namespace asio {
class io_context;
}
namespace mta::config {
struct Config;
}
namespace mta::queue {
class Spool;
}
namespace mta::store {
class Store;
}

namespace mta::api {

class Server final {
 public:
  Server(asio::io_context& io, store::Store& store, queue::Spool& spool,
         std::shared_ptr<const config::Config> cfg, AdminHooks hooks);
  ~Server();
  // Binds http.listen. Call before the io_context runs.
  core::Status start();
  // Closes the listener; blocks until done. Call while the io_context runs.
  void stop();
  // New API keys, limits and configuration sets for new requests (the
  // listen address applies at restart).
  void reload(std::shared_ptr<const config::Config> cfg);
  // What GET /readyz answers: 200 when ready, 503 otherwise.
  void set_ready(bool ready);
  // Deletes idempotency records older than 24 h. Blocking.
  void trim_idempotency();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::api
