// `mta sink`: a development SMTP sink. Accepts every message, prints one
// line per message (who sent it, from which address, to whom, how big) and
// optionally writes it to a directory, so the whole loop of a local set-up
// is visible without a real mail server. Not for production.
#include <fmt/format.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "mta/app/commands.hpp"
#include "mta/core/net.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/data_reader.hpp"

namespace mta::app {
namespace {

using asio::awaitable;
using asio::ip::tcp;
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
std::atomic<uint64_t> g_messages{0};

awaitable<void> sink_session(tcp::socket sock, std::string dump_dir) {
  std::string peer;
  {
    asio::error_code ec;
    auto ep = sock.remote_endpoint(ec);
    if (!ec) peer = ep.address().to_string();
  }
  std::string in, helo, from;
  std::vector<std::string> rcpts;
  size_t pos = 0;
  auto send = [&](std::string text) -> awaitable<bool> {
    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(text), kNoThrow);
    co_return !ec;
  };
  auto fill = [&]() -> awaitable<bool> {
    if (pos > 0) {
      in.erase(0, pos);
      pos = 0;
    }
    size_t old = in.size();
    in.resize(old + 65536);
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(in.data() + old, 65536), kNoThrow);
    in.resize(old + n);
    co_return !ec && in.size() < (1u << 20);
  };
  if (!co_await send("220 sink.localhost ESMTP mta sink\r\n")) co_return;
  std::string out;
  for (;;) {
    auto nl = in.find('\n', pos);
    if (nl == std::string::npos) {
      if (!out.empty() && !co_await send(std::exchange(out, {}))) co_return;
      if (!co_await fill()) co_return;
      continue;
    }
    std::string line = in.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto cmd = protocol::parse_command(line);
    switch (cmd.verb) {
      case protocol::Verb::kEhlo:
        helo = std::string(cmd.arg);
        out +=
            "250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 104857600\r\n"
            "250 ENHANCEDSTATUSCODES\r\n";
        break;
      case protocol::Verb::kHelo:
        helo = std::string(cmd.arg);
        out += "250 sink.localhost\r\n";
        break;
      case protocol::Verb::kMail: {
        auto m = protocol::parse_mail_from(cmd.arg);
        from = m.value ? m.value->address : std::string(cmd.arg);
        rcpts.clear();
        out += "250 2.1.0 Ok\r\n";
        break;
      }
      case protocol::Verb::kRcpt: {
        auto r = protocol::parse_rcpt_to(cmd.arg);
        rcpts.push_back(r.value ? r.value->address : std::string(cmd.arg));
        out += "250 2.1.5 Ok\r\n";
        break;
      }
      case protocol::Verb::kData: {
        out += "354 End data with <CR><LF>.<CR><LF>\r\n";
        if (!co_await send(std::exchange(out, {}))) co_return;
        protocol::DataReader reader(100u << 20);
        for (;;) {
          pos += reader.feed(std::string_view(in).substr(pos));
          if (reader.done()) break;
          if (!co_await fill()) co_return;
        }
        uint64_t n = ++g_messages;
        std::string rc;
        for (auto& r : rcpts) rc += (rc.empty() ? "" : ",") + r;
        std::printf("sink: message=%llu peer=%s helo=%s from=<%s> to=%s size=%zu\n",
                    static_cast<unsigned long long>(n), peer.c_str(), helo.c_str(), from.c_str(),
                    rc.c_str(), reader.body().size());
        std::fflush(stdout);
        if (!dump_dir.empty()) {
          std::ofstream f(fmt::format("{}/{:08d}.eml", dump_dir, n), std::ios::binary);
          f.write(reader.body().data(), static_cast<std::streamsize>(reader.body().size()));
        }
        out += fmt::format("250 2.0.0 Ok: queued as sink-{}\r\n", n);
        break;
      }
      case protocol::Verb::kQuit:
        out += "221 2.0.0 Bye\r\n";
        co_await send(std::exchange(out, {}));
        co_return;
      case protocol::Verb::kRset:
      case protocol::Verb::kNoop:
        out += "250 2.0.0 Ok\r\n";
        break;
      default:
        out += "502 5.5.1 Not implemented\r\n";
        break;
    }
  }
}

awaitable<void> sink_accept(tcp::acceptor& acc, std::string dump_dir) {
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(kNoThrow);
    if (ec) co_return;
    asio::co_spawn(acc.get_executor(), sink_session(std::move(sock), dump_dir), asio::detached);
  }
}

}  // namespace

int sink(const std::string& listen, const std::string& dump_dir) {
  auto hp = core::HostPort::parse(listen);
  if (!hp) {
    std::cerr << "mta: --listen must be IP:port, got " << listen << "\n";
    return 2;
  }
  if (!dump_dir.empty()) std::filesystem::create_directories(dump_dir);
  asio::io_context io;
  asio::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(hp->host, ec), hp->port);
  tcp::acceptor acc(io);
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "mta: cannot listen on " << listen << ": " << ec.message() << "\n";
    return 1;
  }
  std::printf("sink: listening on %s%s\n", listen.c_str(),
              dump_dir.empty() ? "" : (" writing messages to " + dump_dir).c_str());
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) { io.stop(); });
  asio::co_spawn(io, sink_accept(acc, dump_dir), asio::detached);
  io.run();
  return 0;
}

}  // namespace mta::app
