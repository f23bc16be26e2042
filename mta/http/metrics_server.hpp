// The Prometheus scrape endpoint: GET /metrics on metrics.listen, served by
// RESTinio on the daemon's io_context (prometheus-cpp's own Exposer would
// bring civetweb threads and a 2 s stall at shutdown).
#pragma once

#include <memory>

#include "mta/core/net.hpp"
#include "mta/core/result.hpp"

namespace asio {
class io_context;
}

namespace mta::http {

class MetricsServer final {
 public:
  MetricsServer(asio::io_context& io, core::HostPort listen);
  ~MetricsServer();
  // Binds the listener. Call before the io_context runs.
  core::Status start();
  // Closes the listener; blocks until done. Call while the io_context runs.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta::http
