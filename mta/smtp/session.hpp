// Private to the smtp module: the state shared by the server and its
// sessions, and the session itself.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/core/net.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/smtp/server.hpp"

namespace mta::queue {
class Spool;
}

namespace mta::smtp {

class Session;

struct ListenerInfo {
  size_t index = 0;
  bool require_auth = false;
  std::shared_ptr<asio::ssl::context> tls;  // null: no STARTTLS
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(asio::io_context& io, queue::Spool& spool, std::shared_ptr<const config::Config> cfg)
      : io(io), spool(spool), cfg(std::move(cfg)) {}

  asio::io_context& io;
  queue::Spool& spool;
  FeedbackHandler feedback;  // set before start(), then only read

  mutable std::mutex mu;
  std::shared_ptr<const config::Config> cfg;
  bool stopping = false;
  uint32_t total = 0;
  std::map<std::string, uint32_t> per_ip;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  std::vector<std::shared_ptr<asio::ip::tcp::acceptor>> acceptors;

  std::shared_ptr<const config::Config> config() const {
    std::lock_guard lock(mu);
    return cfg;
  }

  // Admission: false when a limit is reached (the caller answers 421).
  bool admit(const std::string& ip, const config::Smtp& limits);
  void release(const std::string& ip, Session* s);
  void add(Session* s, std::weak_ptr<Session> w);

  void reject(std::string_view reason);

  metrics::Gauge connections =
      metrics::gauge("mta_smtp_connections", "Open SMTP client connections");
  metrics::Counter connections_total =
      metrics::counter("mta_smtp_connections_total", "SMTP client connections accepted");
};

// Spawns a session on the socket's strand.
void start_session(std::shared_ptr<Server::Impl> server, asio::ip::tcp::socket sock,
                   ListenerInfo listener, bool admitted, std::string peer_ip);

// Asks a session (from any thread) to finish its transaction and close.
void drain_session(const std::shared_ptr<Session>& s);

}  // namespace mta::smtp
