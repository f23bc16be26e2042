#include "mta/delivery/client.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <charconv>

#include "mta/tls/stream.hpp"

namespace mta::delivery {

using asio::awaitable;
using asio::ip::tcp;

namespace {
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxReplyBytes = 64 * 1024;  // a server talking forever is broken

std::string upper_word(std::string_view line) {
  std::string w(line.substr(0, line.find(' ')));
  for (auto& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return w;
}
}  // namespace

const char* to_string(Stage s) {
  switch (s) {
    case Stage::kConnect:
      return "connect";
    case Stage::kBanner:
      return "banner";
    case Stage::kEhlo:
      return "ehlo";
    case Stage::kStarttls:
      return "starttls";
    case Stage::kMail:
      return "mail";
    case Stage::kRcpt:
      return "rcpt";
    case Stage::kData:
      return "data";
    case Stage::kDataEnd:
      return "data_end";
    case Stage::kQuit:
      return "quit";
  }
  return "?";
}

Client::Client(asio::any_io_executor ex, const config::DeliveryTimeouts& timeouts,
               std::shared_ptr<asio::ssl::context> tls)
    : ex_(ex), timeouts_(timeouts), tls_ctx_(std::move(tls)), sock_(ex), timer_(ex) {}

Client::~Client() {
  close();
}

void Client::close() {
  open_ = false;
  disarm();
  asio::error_code ec;
  sock_.close(ec);
}

// The deadline of the current operation: when it passes, the socket's
// pending operations are cancelled. The generation guards against a timer
// that fired just as the operation completed.
void Client::arm(std::chrono::milliseconds timeout) {
  uint64_t gen = ++generation_;
  timed_out_ = false;
  timer_.expires_after(timeout);
  timer_.async_wait([this, gen](const asio::error_code& ec) {
    if (ec || gen != generation_) return;
    timed_out_ = true;
    asio::error_code ignored;
    sock_.cancel(ignored);
  });
}

void Client::disarm() {
  ++generation_;
  timer_.cancel();
}

protocol::Reply Client::failure(const char* what) const {
  // Synthesized replies for network failures: code 0 marks "no reply".
  return protocol::Reply{0, "",
                         fmt::format("{} {} [{}]: {}", what, hop_.host, hop_.address.to_string(),
                                     timed_out_ ? "timed out" : last_error_)};
}

awaitable<bool> Client::write(const std::string& data, std::chrono::milliseconds timeout) {
  arm(timeout);
  auto ec = co_await tls::write_all(sock_, tls_.get(), asio::buffer(data));
  disarm();
  if (ec) {
    last_error_ = ec.message();
    close();
    co_return false;
  }
  co_return true;
}

awaitable<std::optional<protocol::Reply>> Client::read_reply(std::chrono::milliseconds timeout) {
  protocol::ReplyParser parser;
  size_t seen = 0;
  arm(timeout);
  for (;;) {
    auto nl = in_.find('\n', pos_);
    if (nl != std::string::npos) {
      size_t end = nl;
      if (end > pos_ && in_[end - 1] == '\r') --end;
      std::string_view line(in_.data() + pos_, end - pos_);
      seen += nl + 1 - pos_;
      auto st = parser.feed_line(line);
      pos_ = nl + 1;
      if (st == protocol::ReplyParser::Status::kDone) {
        disarm();
        co_return parser.take();
      }
      if (st == protocol::ReplyParser::Status::kError || seen > kMaxReplyBytes) {
        disarm();
        last_error_ = "malformed reply";
        close();
        co_return std::nullopt;
      }
      continue;
    }
    if (pos_ > 0) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
    if (in_.size() > kMaxReplyBytes) {
      disarm();
      last_error_ = "reply line too long";
      close();
      co_return std::nullopt;
    }
    size_t old = in_.size();
    in_.resize(old + kReadChunk);
    auto buf = asio::buffer(in_.data() + old, kReadChunk);
    auto [ec, n] = co_await tls::read_some(sock_, tls_.get(), buf);
    in_.resize(old + n);
    if (ec) {
      disarm();
      last_error_ = ec == asio::error::eof ? "connection closed by server" : ec.message();
      close();
      co_return std::nullopt;
    }
  }
}

awaitable<protocol::Reply> Client::command(const std::string& line,
                                           std::chrono::milliseconds timeout, bool& ok) {
  ok = false;
  if (!co_await write(line, timeout)) co_return failure("lost connection to");
  auto r = co_await read_reply(timeout);
  if (!r) co_return failure("lost connection to");
  ok = true;
  co_return std::move(*r);
}

awaitable<bool> Client::ehlo(const std::string& name, protocol::Reply& reply) {
  bool ok = false;
  std::string line = "EHLO " + name + "\r\n";
  reply = co_await command(line, timeouts_.ehlo, ok);
  if (!ok) co_return false;
  if (reply.code != 250) {
    // RFC 5321 4.1.4: fall back to HELO for servers without ESMTP.
    std::string helo = "HELO " + name + "\r\n";
    reply = co_await command(helo, timeouts_.ehlo, ok);
    co_return ok&& reply.code == 250;
  }
  ext_pipelining_ = ext_8bitmime_ = ext_starttls_ = false;
  ext_size_ = 0;
  size_t start = 0;
  bool first = true;
  std::string_view text(reply.text);
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view l = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!first) {
      auto w = upper_word(l);
      if (w == "PIPELINING") ext_pipelining_ = true;
      if (w == "8BITMIME") ext_8bitmime_ = true;
      if (w == "STARTTLS") ext_starttls_ = true;
      if (w == "SIZE" && l.size() > 5) {
        auto v = l.substr(5);
        std::from_chars(v.data(), v.data() + v.size(), ext_size_);
      }
    }
    first = false;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  co_return true;
}

awaitable<OpenResult> Client::open(asio::ip::address source, std::string ehlo_name, Hop hop,
                                   config::TlsPolicy policy) {
  OpenResult res;
  hop_ = std::move(hop);
  in_.clear();
  pos_ = 0;
  tls_.reset();
  transactions_ = 0;
  needs_rset_ = false;
  tcp::endpoint remote(hop_.address, hop_.port);
  asio::error_code ec;
  sock_ = tcp::socket(ex_);
  sock_.open(remote.protocol(), ec);
  if (!ec && !source.is_unspecified()) sock_.bind(tcp::endpoint(source, 0), ec);
  if (ec) {
    last_error_ =
        fmt::format("cannot bind source address {}: {}", source.to_string(), ec.message());
    res.reply = failure("cannot connect to");
    close();
    co_return res;
  }
  arm(timeouts_.connect);
  auto [cec] = co_await sock_.async_connect(remote, kNoThrow);
  disarm();
  if (cec) {
    last_error_ = cec.message();
    res.reply = failure("cannot connect to");
    close();
    co_return res;
  }
  asio::error_code nd;
  sock_.set_option(tcp::no_delay(true), nd);
  open_ = true;

  res.stage = Stage::kBanner;
  auto banner = co_await read_reply(timeouts_.banner);
  if (!banner) {
    res.reply = failure("no banner from");
    co_return res;
  }
  if (banner->code != 220) {
    res.reply = std::move(*banner);
    co_await quit();
    co_return res;
  }
  res.stage = Stage::kEhlo;
  protocol::Reply r;
  if (!co_await ehlo(ehlo_name, r)) {
    res.reply = r;
    if (open_) co_await quit();
    co_return res;
  }
  bool want_tls = policy != config::TlsPolicy::kNone && ext_starttls_;
  if (policy == config::TlsPolicy::kRequired && !ext_starttls_) {
    res.stage = Stage::kStarttls;
    res.reply = protocol::Reply{0, "",
                                fmt::format("{} [{}] does not offer STARTTLS (tls: required)",
                                            hop_.host, hop_.address.to_string())};
    co_await quit();
    co_return res;
  }
  if (want_tls) {
    res.stage = Stage::kStarttls;
    bool ok = false;
    std::string cmd = "STARTTLS\r\n";
    auto tr = co_await command(cmd, timeouts_.starttls, ok);
    if (!ok || tr.code != 220) {
      res.reply = tr;
      if (policy == config::TlsPolicy::kRequired || !ok) {
        if (open_) co_await quit();
        co_return res;
      }
      // Opportunistic: a refused STARTTLS leaves us in clear text.
    } else {
      in_.clear();
      pos_ = 0;
      tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, *tls_ctx_);
      // SNI for host names only (RFC 6066 3: not for address literals).
      asio::error_code literal;
      asio::ip::make_address(hop_.host, literal);
      if (!hop_.host.empty() && literal)
        SSL_set_tlsext_host_name(tls_->native_handle(), hop_.host.c_str());
      arm(timeouts_.starttls);
      auto [hec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kNoThrow);
      disarm();
      if (hec) {
        last_error_ = "TLS handshake: " + hec.message();
        res.reply = failure("TLS failed with");
        close();
        co_return res;
      }
      res.stage = Stage::kEhlo;
      if (!co_await ehlo(ehlo_name, r)) {
        res.reply = r;
        if (open_) co_await quit();
        co_return res;
      }
    }
  }
  res.ok = true;
  co_return res;
}

awaitable<TxResult> Client::send(const std::string& mail_from,
                                 const std::vector<std::string>& rcpts, const std::string& payload,
                                 bool eight_bit, uint64_t size) {
  TxResult tx;
  tx.rcpt.resize(rcpts.size());
  if (needs_rset_) {
    bool ok = false;
    std::string rset = "RSET\r\n";
    auto r = co_await command(rset, timeouts_.mail, ok);
    if (!ok || r.code != 250) {
      tx.broken = true;
      tx.mail = r;
      close();
      co_return tx;
    }
    needs_rset_ = false;
  }
  ++transactions_;
  needs_rset_ = true;  // until the transaction completes
  std::string mail = "MAIL FROM:<" + mail_from + ">";
  if (ext_8bitmime_) mail += eight_bit ? " BODY=8BITMIME" : " BODY=7BIT";
  if (ext_size_ > 0 || size > 0) mail += " SIZE=" + std::to_string(size);
  mail += "\r\n";

  auto lost = [&](Stage s) {
    tx.broken = true;
    tx.stage = s;
    return failure("lost connection to");
  };

  size_t accepted = 0;
  if (ext_pipelining_) {
    // RFC 2920: the whole envelope and DATA in one write, replies in order.
    std::string batch = mail;
    for (auto& r : rcpts) batch += "RCPT TO:<" + r + ">\r\n";
    batch += "DATA\r\n";
    if (!co_await write(batch, timeouts_.mail)) {
      tx.mail = lost(Stage::kMail);
      co_return tx;
    }
    tx.stage = Stage::kMail;
    auto m = co_await read_reply(timeouts_.mail);
    if (!m) {
      tx.mail = lost(Stage::kMail);
      co_return tx;
    }
    tx.mail = std::move(*m);
    tx.stage = Stage::kRcpt;
    for (size_t i = 0; i < rcpts.size(); ++i) {
      auto r = co_await read_reply(timeouts_.rcpt);
      if (!r) {
        tx.mail = tx.mail.code ? tx.mail : lost(Stage::kRcpt);
        tx.broken = true;
        co_return tx;
      }
      if (tx.mail.positive() && r->positive()) ++accepted;
      tx.rcpt[i] = std::move(*r);
    }
    tx.stage = Stage::kData;
    auto d = co_await read_reply(timeouts_.data);
    if (!d) {
      tx.broken = true;
      tx.data = failure("lost connection to");
      co_return tx;
    }
    tx.data = std::move(*d);
  } else {
    bool ok = false;
    tx.stage = Stage::kMail;
    tx.mail = co_await command(mail, timeouts_.mail, ok);
    if (!ok) {
      tx.broken = true;
      co_return tx;
    }
    if (!tx.mail.positive()) {
      tx.completed = true;
      co_return tx;
    }
    tx.stage = Stage::kRcpt;
    for (size_t i = 0; i < rcpts.size(); ++i) {
      std::string line = "RCPT TO:<" + rcpts[i] + ">\r\n";
      auto r = co_await command(line, timeouts_.rcpt, ok);
      if (!ok) {
        tx.broken = true;
        co_return tx;
      }
      if (r.positive()) ++accepted;
      tx.rcpt[i] = std::move(r);
    }
    if (accepted == 0) {
      tx.completed = true;
      co_return tx;
    }
    tx.stage = Stage::kData;
    std::string data = "DATA\r\n";
    tx.data = co_await command(data, timeouts_.data, ok);
    if (!ok) {
      tx.broken = true;
      co_return tx;
    }
  }
  if (tx.data.code != 354) {
    tx.completed = true;
    co_return tx;
  }
  tx.stage = Stage::kDataEnd;
  // A server that said 354 although no recipient was accepted gets an empty
  // message (RFC 2920 3.1) so the session stays in step.
  static const std::string kEmpty = ".\r\n";
  const std::string& body = accepted == 0 ? kEmpty : payload;
  if (!co_await write(body, timeouts_.data_end)) {
    tx.broken = true;
    tx.final = failure("lost connection to");
    co_return tx;
  }
  auto f = co_await read_reply(timeouts_.data_end);
  if (!f) {
    tx.broken = true;
    tx.final = failure("lost connection to");
    co_return tx;
  }
  tx.final = std::move(*f);
  tx.completed = true;
  needs_rset_ = false;
  co_return tx;
}

awaitable<void> Client::quit() {
  if (!open_) co_return;
  std::string q = "QUIT\r\n";
  if (co_await write(q, std::chrono::seconds(5))) co_await read_reply(std::chrono::seconds(5));
  close();
}

}  // namespace mta::delivery
