#include "mta/smtp/server.hpp"

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include "mta/smtp/session.hpp"
#include "mta/tls/tls.hpp"

namespace mta::smtp {

using asio::ip::tcp;

bool Server::Impl::admit(const std::string& ip, const config::Smtp& limits) {
  std::lock_guard lock(mu);
  auto& n = per_ip[ip];
  if (total >= limits.max_connections || n >= limits.max_connections_per_ip) {
    if (n == 0) per_ip.erase(ip);
    return false;
  }
  ++n;
  ++total;
  return true;
}

void Server::Impl::release(const std::string& ip, Session* s) {
  std::lock_guard lock(mu);
  sessions.erase(s);
  auto it = per_ip.find(ip);
  if (it == per_ip.end()) return;  // was never admitted
  if (--it->second == 0) per_ip.erase(it);
  --total;
}

void Server::Impl::add(Session* s, std::weak_ptr<Session> w) {
  std::lock_guard lock(mu);
  sessions.emplace(s, std::move(w));
}

void Server::Impl::reject(std::string_view reason) {
  metrics::counter("mta_smtp_rejections_total", "SMTP commands or messages refused, by reason",
                   {{"reason", std::string(reason)}})
      .inc();
}

namespace {

asio::awaitable<void> accept_loop(std::shared_ptr<Server::Impl> server,
                                  std::shared_ptr<tcp::acceptor> acceptor, ListenerInfo info) {
  auto token = asio::experimental::as_tuple(asio::use_awaitable);
  for (;;) {
    // Each connection gets its own strand; any_io_executor keeps the socket type tcp::socket.
    asio::any_io_executor strand = asio::make_strand(server->io);
    auto [ec, sock] = co_await acceptor->async_accept(strand, token);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      // Out of file descriptors and the like: back off instead of spinning.
      spdlog::warn("smtp=accept error=\"{}\"", ec.message());
      asio::steady_timer t(acceptor->get_executor(), std::chrono::milliseconds(100));
      co_await t.async_wait(token);
      continue;
    }
    asio::error_code pe;
    auto peer = sock.remote_endpoint(pe);
    if (pe) continue;  // the client is already gone
    std::string ip = peer.address().to_string();
    auto cfg = server->config();
    bool ok;
    {
      std::lock_guard lock(server->mu);
      ok = !server->stopping;
    }
    bool admitted = ok && server->admit(ip, cfg->smtp);
    start_session(server, std::move(sock), info, admitted, std::move(ip));
  }
}

}  // namespace

Server::Server(asio::io_context& io, queue::Spool& spool, std::shared_ptr<const config::Config> cfg)
    : impl_(std::make_shared<Impl>(io, spool, std::move(cfg))) {}

Server::~Server() = default;

core::Status Server::start() {
  auto cfg = impl_->config();
  for (size_t i = 0; i < cfg->smtp.listeners.size(); ++i) {
    const auto& l = cfg->smtp.listeners[i];
    ListenerInfo info;
    info.index = i;
    info.require_auth = l.require_auth;
    if (l.starttls) {
      auto ctx = tls::make_server_context(l.starttls->cert, l.starttls->key);
      if (!ctx) return ctx.error();
      info.tls = *ctx;
    }
    asio::error_code ec;
    auto addr = asio::ip::make_address(l.listen.host, ec);
    if (ec) return core::make_error("bad listen address " + l.listen.to_string());
    tcp::endpoint ep(addr, l.listen.port);
    auto acc = std::make_shared<tcp::acceptor>(asio::make_strand(impl_->io));
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return core::make_error("cannot listen on " + l.listen.to_string() + ": " + ec.message());
    impl_->acceptors.push_back(acc);
    asio::co_spawn(acc->get_executor(), accept_loop(impl_, acc, info), asio::detached);
    spdlog::info("smtp=listening address={} starttls={} require_auth={}", l.listen.to_string(),
                 info.tls != nullptr, l.require_auth);
  }
  return core::Ok{};
}

void Server::set_feedback_handler(FeedbackHandler handler) {
  impl_->feedback = std::move(handler);
}

void Server::reload(std::shared_ptr<const config::Config> cfg) {
  std::lock_guard lock(impl_->mu);
  impl_->cfg = std::move(cfg);
}

void Server::stop() {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    for (auto& [_, w] : impl_->sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& acc : impl_->acceptors)
    asio::post(acc->get_executor(), [acc] {
      asio::error_code ec;
      acc->close(ec);
    });
  for (auto& s : live) drain_session(s);
}

size_t Server::active_sessions() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace mta::smtp
