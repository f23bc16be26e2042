// SMTP submission server (RFC 5321, RFC 6409): the listeners, connection
// limits and the session registry. The session state machine is in
// session.cpp.
//
// Threading: the io_context may be run by several threads; each session
// runs on its own strand. Shared state here (connection counts, the config
// snapshot, the session registry) is guarded by one mutex that is never
// held across I/O.
//
// Lifecycle: start() binds every listener or fails; reload() swaps the
// config that new transactions see (listeners stay as they are); stop()
// closes the listeners, closes idle sessions with 421 and lets sessions in
// the middle of a transaction finish it. active_sessions() reaching zero
// means it is safe to close the spool.
#pragma once

#include <memory>
#include <string>

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

namespace mta::smtp {

class Server final {
 public:
  Server(asio::io_context& io, queue::Spool& spool, std::shared_ptr<const config::Config> cfg);
  ~Server();

  core::Status start();
  void reload(std::shared_ptr<const config::Config> cfg);
  void stop();
  size_t active_sessions() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::smtp
