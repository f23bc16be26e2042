// The SMTP client: one outbound connection, as a coroutine-driven state
// machine. Private to the delivery module.
//
// open() binds the chosen source address, connects, reads the banner, says
// EHLO with the source's name, and upgrades with STARTTLS per the policy.
// send() runs one mail transaction, pipelined when the server offers
// PIPELINING (MAIL, every RCPT and DATA in one write), and returns every
// reply. Each phase has its own deadline; a missed deadline closes the
// connection and is reported as a timeout of that phase.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/protocol/reply.hpp"

namespace mta::delivery {

enum class Stage { kConnect, kBanner, kEhlo, kStarttls, kMail, kRcpt, kData, kDataEnd, kQuit };
const char* to_string(Stage s);

struct Hop {
  std::string host;  // name, for logs and SNI
  asio::ip::address address;
  uint16_t port = 25;
};

// What went wrong opening a connection: the reply, or a synthesized one for
// network failures (code 0 with a description).
struct OpenResult {
  bool ok = false;
  Stage stage = Stage::kConnect;
  protocol::Reply reply;
};

struct TxResult {
  bool completed = false;  // the transaction reached its end (whatever the replies said)
  bool broken = false;     // the connection failed mid-way: replies past `stage` are missing
  Stage stage = Stage::kMail;
  protocol::Reply mail;
  std::vector<std::optional<protocol::Reply>> rcpt;  // one per recipient given
  protocol::Reply data;                              // the reply to DATA (354 expected)
  protocol::Reply final;                             // the reply to the final dot
};

class Client final {
 public:
  Client(asio::any_io_executor ex, const config::DeliveryTimeouts& timeouts,
         std::shared_ptr<asio::ssl::context> tls);
  ~Client();

  asio::awaitable<OpenResult> open(asio::ip::address source, std::string ehlo_name, Hop hop,
                                   config::TlsPolicy policy);
  // `payload` is dot-stuffed and terminated (protocol::dot_stuff).
  asio::awaitable<TxResult> send(const std::string& mail_from,
                                 const std::vector<std::string>& rcpts, const std::string& payload,
                                 bool eight_bit, uint64_t size);
  asio::awaitable<void> quit();
  void close();

  bool is_open() const { return open_; }
  bool needs_rset() const { return needs_rset_; }
  bool supports_8bitmime() const { return ext_8bitmime_; }
  uint64_t max_size() const { return ext_size_; }  // 0: no limit announced
  bool tls_active() const { return tls_ != nullptr; }
  const Hop& hop() const { return hop_; }
  uint32_t transactions() const { return transactions_; }

 private:
  asio::awaitable<bool> write(const std::string& data, std::chrono::milliseconds timeout);
  asio::awaitable<std::optional<protocol::Reply>> read_reply(std::chrono::milliseconds timeout);
  asio::awaitable<protocol::Reply> command(const std::string& line,
                                           std::chrono::milliseconds timeout, bool& ok);
  asio::awaitable<bool> ehlo(const std::string& name, protocol::Reply& reply);
  void arm(std::chrono::milliseconds timeout);
  void disarm();
  protocol::Reply failure(const char* what) const;

  asio::any_io_executor ex_;
  config::DeliveryTimeouts timeouts_;
  std::shared_ptr<asio::ssl::context> tls_ctx_;
  asio::ip::tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer timer_;
  uint64_t generation_ = 0;
  bool timed_out_ = false;
  std::string in_;
  size_t pos_ = 0;
  Hop hop_;
  bool open_ = false;
  bool needs_rset_ = false;
  bool ext_pipelining_ = false;
  bool ext_8bitmime_ = false;
  bool ext_starttls_ = false;
  uint64_t ext_size_ = 0;
  uint32_t transactions_ = 0;
  std::string last_error_;
};

}  // namespace mta::delivery
