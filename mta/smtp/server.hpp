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

#include <functional>
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

// Feedback reports: mail for config.feedback.addresses is not spooled but
// handed to this handler with the client's address; `done` (callable from
// any thread) gets the reply to the final dot.
struct FeedbackReply {
  int code = 250;
  std::string enhanced;
  std::string text;
};
using FeedbackHandler = std::function<void(std::string report, std::string client_ip,
                                           std::function<void(FeedbackReply)> done)>;

class Server final {
 public:
  Server(asio::io_context& io, queue::Spool& spool, std::shared_ptr<const config::Config> cfg);
  ~Server();

  // Before start(). Without a handler the feedback addresses are ordinary
  // recipients.
  void set_feedback_handler(FeedbackHandler handler);

  core::Status start();
  void reload(std::shared_ptr<const config::Config> cfg);
  void stop();
  size_t active_sessions() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::smtp
