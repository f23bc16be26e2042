// The SMTP server session: one coroutine per connection reading commands,
// one watchdog enforcing the deadline of whatever the session waits for.
//
// States: kGreeting (no EHLO yet) -> kReady -> kMail (after MAIL) -> kRcpt
// (after an accepted RCPT) -> DATA -> kReady. STARTTLS and RSET go back to
// kGreeting / kReady. Every transition goes through enter(), which
// trace-logs it.
//
// Replies are queued and written when the session is about to wait for
// input, so a pipelining client gets its replies in one write (RFC 2920).
//
// Mail for the feedback addresses (config `feedback`) is taken from any
// client but goes to the feedback handler, not the spool; such a
// transaction has no other recipients (rcpt()).
#include "mta/smtp/session.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <chrono>
#include <optional>

#include "mta/core/base64.hpp"
#include "mta/core/id.hpp"
#include "mta/intake/intake.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/data_reader.hpp"
#include "mta/protocol/reply.hpp"
#include "mta/queue/spool.hpp"
#include "mta/tls/stream.hpp"

namespace mta::smtp {

using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using protocol::Verb;

namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
// Each read zero-fills this much of the buffer first (std::string::resize),
// so it is kept near a typical segment burst rather than 64 KiB.
constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxTextLine = 998;

std::atomic<uint64_t> g_session_ids{0};

// Runs start(done) and completes with the value `done` is called with,
// posted to the caller's executor (spool and feedback handler answer from
// their own threads). `done` may be copied.
template <class T, class Start, class Token>
auto async_from_callback(Start start, Token&& token) {
  return asio::async_initiate<Token, void(T)>(
      [](auto handler, Start start) {
        using H = std::decay_t<decltype(handler)>;
        struct State {
          H handler;
          asio::executor_work_guard<asio::associated_executor_t<H>> work;
        };
        auto ex = asio::get_associated_executor(handler);
        auto st = std::make_shared<State>(State{std::move(handler), asio::make_work_guard(ex)});
        std::move(start)([st](T v) {
          auto ex = st->work.get_executor();
          asio::post(ex, [st, v = std::move(v)]() mutable {
            st->work.reset();
            std::move(st->handler)(std::move(v));
          });
        });
      },
      token, std::move(start));
}

// Completes with "" once the spool has the message on disk, or with the
// storage error.
template <class Token>
auto async_spool(queue::Spool& spool, queue::Message m, std::string body, Token&& token) {
  return async_from_callback<std::string>(
      [&spool, m = std::move(m), body = std::move(body)](auto done) mutable {
        spool.accept(std::move(m), std::move(body),
                     [done](core::Status s) { done(s.ok() ? std::string() : s.error().message); });
      },
      std::forward<Token>(token));
}

// Completes with the feedback handler's reply.
template <class Token>
auto async_feedback(const FeedbackHandler& feedback, std::string report, std::string client_ip,
                    Token&& token) {
  return async_from_callback<FeedbackReply>(
      [&feedback, report = std::move(report), client_ip = std::move(client_ip)](auto done) mutable {
        feedback(std::move(report), std::move(client_ip), done);
      },
      std::forward<Token>(token));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool in_networks(const std::vector<core::Cidr>& nets, const std::string& ip) {
  auto a = core::IpAddress::parse(ip);
  if (!a) return false;
  for (auto& n : nets)
    if (n.contains(*a)) return true;
  return false;
}

}  // namespace

class Session final : public std::enable_shared_from_this<Session> {
 public:
  enum class State { kGreeting, kReady, kMail, kRcpt };

  Session(std::shared_ptr<Server::Impl> server, tcp::socket sock, ListenerInfo listener,
          bool admitted, std::string peer_ip)
      : server_(std::move(server)),
        sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        listener_(std::move(listener)),
        admitted_(admitted),
        peer_ip_(std::move(peer_ip)),
        id_(++g_session_ids),
        cfg_(server_->config()) {}

  void start() {
    auto self = shared_from_this();
    server_->add(this, self);
    asio::co_spawn(
        sock_.get_executor(), [self]() { return self->run(); }, asio::detached);
    asio::co_spawn(
        sock_.get_executor(), [self]() { return self->watchdog(); }, asio::detached);
  }

  void drain() {
    asio::dispatch(sock_.get_executor(), [self = shared_from_this()] {
      self->draining_ = true;
      // A session waiting for its next command outside a transaction has
      // nothing to finish: wake it so it says goodbye now.
      if (self->idle_) {
        asio::error_code ec;
        self->sock_.cancel(ec);
      }
    });
  }

 private:
  // ---- lifecycle ---------------------------------------------------------

  awaitable<void> run() {
    server_->connections.inc();
    server_->connections_total.inc();
    spdlog::debug("session={} event=connect client={} admitted={}", id_, peer_ip_, admitted_);
    if (!admitted_) {
      server_->reject("too_many_connections");
      reply(421, "4.7.0", fmt::format("{} Too many connections, try again later", cfg_->hostname));
    } else {
      reply(220, "", fmt::format("{} ESMTP mta", cfg_->hostname));
      co_await loop();
    }
    co_await flush();
    close();
    server_->connections.dec();
    if (admitted_)
      server_->release(peer_ip_, this);
    else
      server_->release("", this);
    spdlog::debug("session={} event=disconnect client={}", id_, peer_ip_);
  }

  // Closes the connection when the current deadline passes: first cancel
  // (the session then answers 421), then, if it is still stuck writing,
  // close outright.
  awaitable<void> watchdog() {
    auto self = shared_from_this();
    while (!closed_) {
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(kNoThrow);
      if (closed_) break;
      if (deadline_ > Clock::now()) continue;
      if (!timed_out_) {
        timed_out_ = true;
        deadline_ = Clock::now() + std::chrono::seconds(10);
        asio::error_code ec;
        sock_.cancel(ec);
      } else {
        asio::error_code ec;
        sock_.close(ec);
        break;
      }
    }
  }

  void close() {
    closed_ = true;
    timer_.cancel();
    asio::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
  }

  void enter(State s) {
    if (s == state_) return;
    spdlog::trace("session={} state {} -> {}", id_, to_string(state_), to_string(s));
    state_ = s;
  }

  static const char* to_string(State s) {
    switch (s) {
      case State::kGreeting:
        return "greeting";
      case State::kReady:
        return "ready";
      case State::kMail:
        return "mail";
      case State::kRcpt:
        return "rcpt";
    }
    return "?";
  }

  // ---- I/O ---------------------------------------------------------------

  void reply(int code, std::string_view enhanced, std::string_view text) {
    protocol::Reply r{code, std::string(enhanced), std::string(text)};
    out_ += r.format();
    if (code >= 500 && counts_as_error_) ++errors_;
  }

  awaitable<bool> flush() {
    if (out_.empty() || closed_) co_return !closed_;
    deadline_ = Clock::now() + cfg_->smtp.command_timeout;
    kick_watchdog();
    std::string buf = std::move(out_);
    out_.clear();
    auto ec = co_await tls::write_all(sock_, tls_.get(), asio::buffer(buf));
    co_return !ec;
  }

  void kick_watchdog() {
    // The watchdog sleeps until the old deadline; moving it later needs no
    // wake-up, moving it earlier does.
    if (deadline_ < timer_.expiry()) timer_.cancel();
  }

  // Reads more input into in_. False on EOF, error or timeout (after
  // queueing the 421 for a timeout).
  awaitable<bool> fill(std::chrono::milliseconds timeout) {
    if (!co_await flush()) co_return false;
    if (pos_ > 0) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
    deadline_ = Clock::now() + timeout;
    kick_watchdog();
    size_t old = in_.size();
    in_.resize(old + kReadChunk);
    auto buf = asio::buffer(in_.data() + old, kReadChunk);
    auto [ec, n] = co_await tls::read_some(sock_, tls_.get(), buf);
    in_.resize(old + n);
    if (!ec) co_return true;
    if (timed_out_) {
      server_->reject("timeout");
      spdlog::info("session={} event=timeout client={}", id_, peer_ip_);
      reply(421, "4.4.2", fmt::format("{} Error: timeout exceeded", cfg_->hostname));
    } else if (draining_ && ec == asio::error::operation_aborted) {
      reply(421, "4.3.2", fmt::format("{} Service shutting down", cfg_->hostname));
    }
    co_return false;
  }

  enum class LineStatus { kLine, kTooLong, kClosed };

  // Next command line without its line end. Lines over max_command_line are
  // discarded up to their end and reported as kTooLong.
  awaitable<LineStatus> read_line(std::string& line) {
    const size_t max = cfg_->smtp.max_command_line;
    bool too_long = false;
    for (;;) {
      auto nl = in_.find('\n', pos_);
      if (nl != std::string::npos) {
        size_t len = nl + 1 - pos_;
        if (too_long || len > max) {
          pos_ = nl + 1;
          co_return LineStatus::kTooLong;
        }
        size_t end = nl;
        if (end > pos_ && in_[end - 1] == '\r') --end;
        line.assign(in_, pos_, end - pos_);
        pos_ = nl + 1;
        co_return LineStatus::kLine;
      }
      if (in_.size() - pos_ > max) {
        too_long = true;  // drop what we have, keep reading to the line end
        in_.clear();
        pos_ = 0;
      }
      if (!co_await fill(cfg_->smtp.command_timeout)) co_return LineStatus::kClosed;
    }
  }

  // ---- the command loop --------------------------------------------------

  awaitable<void> loop() {
    std::string line;
    for (;;) {
      if (errors_ >= cfg_->smtp.max_errors) {
        server_->reject("too_many_errors");
        reply(421, "4.7.0", fmt::format("{} Too many errors, closing connection", cfg_->hostname));
        co_return;
      }
      bool in_transaction = state_ == State::kMail || state_ == State::kRcpt;
      if (draining_ && !in_transaction) {
        reply(421, "4.3.2", fmt::format("{} Service shutting down", cfg_->hostname));
        co_return;
      }
      idle_ = !in_transaction;
      auto status = co_await read_line(line);
      idle_ = false;
      if (status == LineStatus::kClosed) co_return;
      if (status == LineStatus::kTooLong) {
        server_->reject("line_too_long");
        reply(500, "5.5.2", "Line too long");
        continue;
      }
      if (line.find('\0') != std::string::npos) {
        server_->reject("syntax");
        reply(500, "5.5.2", "NUL characters are not allowed in commands");
        continue;
      }
      if (!co_await command(line)) co_return;
    }
  }

  // Handles one command; false ends the session.
  awaitable<bool> command(const std::string& line) {
    auto cmd = protocol::parse_command(line);
    switch (cmd.verb) {
      case Verb::kEhlo:
      case Verb::kHelo:
        hello(cmd);
        break;
      case Verb::kMail:
        mail(cmd);
        break;
      case Verb::kRcpt:
        rcpt(cmd);
        break;
      case Verb::kData:
        co_return co_await data(cmd);
      case Verb::kRset:
        reset_transaction();
        if (state_ != State::kGreeting) enter(State::kReady);
        reply(250, "2.0.0", "Ok");
        break;
      case Verb::kNoop:
        reply(250, "2.0.0", "Ok");
        break;
      case Verb::kQuit:
        reply(221, "2.0.0", "Bye");
        co_return false;
      case Verb::kVrfy:
        reply(252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
        break;
      case Verb::kExpn:
        reply(502, "5.5.1", "EXPN not available");
        break;
      case Verb::kHelp:
        reply(214, "2.0.0", "See RFC 5321");
        break;
      case Verb::kStarttls:
        co_return co_await starttls(cmd);
      case Verb::kAuth:
        co_return co_await auth(cmd);
      case Verb::kBdat:
        bad_sequence("CHUNKING not offered");
        break;
      case Verb::kUnknown:
        server_->reject("syntax");
        reply(500, "5.5.2", "Command not recognized");
        break;
    }
    co_return true;
  }

  void bad_sequence(std::string_view text) {
    server_->reject("bad_sequence");
    reply(503, "5.5.1", text);
  }

  void syntax_error(const protocol::ParseError& e) {
    server_->reject("syntax");
    reply(e.code, e.enhanced, e.text);
  }

  void reset_transaction() {
    mail_from_.reset();
    rcpts_.clear();
    feedback_only_ = false;
    feedback_tx_ = false;
  }

  bool feedback_enabled() const { return server_->feedback && !cfg_->feedback.addresses.empty(); }

  bool auth_offered() const {
    if (cfg_->smtp.users.empty() || !auth_user_.empty()) return false;
    return tls_ != nullptr || in_networks(cfg_->smtp.plaintext_auth_networks, peer_ip_);
  }

  void hello(const protocol::Command& cmd) {
    if (cmd.arg.empty()) {
      server_->reject("syntax");
      reply(501, "5.5.4", "Syntax: EHLO hostname");
      return;
    }
    helo_ = std::string(cmd.arg.substr(0, cmd.arg.find(' ')));
    reset_transaction();
    enter(State::kReady);
    if (cmd.verb == Verb::kHelo) {
      reply(250, "", cfg_->hostname);
      return;
    }
    std::string text = fmt::format(
        "{} Hello {} [{}]\nPIPELINING\nSIZE {}\n8BITMIME\n"
        "ENHANCEDSTATUSCODES",
        cfg_->hostname, helo_, peer_ip_, cfg_->smtp.max_message_bytes);
    if (listener_.tls && !tls_) text += "\nSTARTTLS";
    if (auth_offered()) text += "\nAUTH PLAIN LOGIN";
    reply(250, "", text);
  }

  void mail(const protocol::Command& cmd) {
    if (state_ == State::kGreeting) return bad_sequence("Send HELO/EHLO first");
    if (state_ != State::kReady) return bad_sequence("Nested MAIL command");
    bool must_auth = listener_.require_auth || !in_networks(cfg_->smtp.relay_networks, peer_ip_);
    // Providers send feedback reports from anywhere, without AUTH: such a
    // client may go on, but only to the feedback addresses (rcpt()).
    bool feedback_only = must_auth && auth_user_.empty();
    if (feedback_only && !feedback_enabled()) {
      server_->reject("relay_denied");
      reply(530, "5.7.0", "Authentication required");
      return;
    }
    auto parsed = protocol::parse_mail_from(cmd.arg);
    if (parsed.error) return syntax_error(*parsed.error);
    if (parsed.value->size && *parsed.value->size > cfg_->smtp.max_message_bytes) {
      server_->reject("message_too_big");
      reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
      return;
    }
    mail_from_ = std::move(*parsed.value);
    feedback_only_ = feedback_only;
    enter(State::kMail);
    reply(250, "2.1.0", "Ok");
  }

  void rcpt(const protocol::Command& cmd) {
    if (state_ != State::kMail && state_ != State::kRcpt) return bad_sequence("Need MAIL command");
    auto parsed = protocol::parse_rcpt_to(cmd.arg);
    if (parsed.error) return syntax_error(*parsed.error);
    if (rcpts_.size() >= cfg_->smtp.max_recipients) {
      server_->reject("too_many_recipients");
      reply(452, "4.5.3", "Too many recipients");
      return;
    }
    std::string address = std::move(parsed.value->address);
    // RFC 5321 4.5.1: a bare "postmaster" is this server's postmaster.
    if (address.find('@') == std::string::npos) address += "@" + cfg_->hostname;
    // A feedback report goes to the feedback processor, never to the
    // spool: its transaction has the feedback addresses only.
    bool feedback = feedback_enabled() && cfg_->feedback.is_feedback_address(address);
    if (feedback_only_ && !feedback) {
      server_->reject("relay_denied");
      reply(530, "5.7.0", "Authentication required");
      return;
    }
    if (!rcpts_.empty() && feedback != feedback_tx_) {
      server_->reject("feedback_mixed");
      reply(452, "4.5.3",
            feedback ? "A feedback address takes no other recipients: send it in a new transaction"
                     : "This transaction is for a feedback address only: send other recipients "
                       "in a new transaction");
      return;
    }
    feedback_tx_ = feedback;
    rcpts_.push_back(std::move(address));
    enter(State::kRcpt);
    reply(250, "2.1.5", "Ok");
  }

  awaitable<bool> data(const protocol::Command& cmd) {
    if (state_ == State::kMail) {
      bad_sequence("Need RCPT command");
      co_return true;
    }
    if (state_ != State::kRcpt) {
      bad_sequence("Need MAIL command");
      co_return true;
    }
    if (!cmd.arg.empty()) {
      server_->reject("syntax");
      reply(501, "5.5.4", "Syntax: DATA");
      co_return true;
    }
    reply(354, "", "End data with <CR><LF>.<CR><LF>");
    auto start = Clock::now();
    protocol::DataReader reader(cfg_->smtp.max_message_bytes, kMaxTextLine);
    // data_timeout bounds the whole DATA phase (a client trickling a byte
    // a second must not hold a slot forever); command_timeout still bounds
    // each silence within it.
    const auto data_deadline = start + cfg_->smtp.data_timeout;
    for (;;) {
      pos_ += reader.feed(std::string_view(in_).substr(pos_));
      if (reader.done()) break;
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(data_deadline - Clock::now());
      auto wait = std::max(std::chrono::milliseconds(1),
                           std::min<std::chrono::milliseconds>(left, cfg_->smtp.command_timeout));
      if (!co_await fill(wait)) co_return false;  // lost, or out of time, mid-message
    }
    enter(State::kReady);
    auto mail_from = std::move(*mail_from_);
    auto rcpts = std::move(rcpts_);
    bool feedback = feedback_tx_;
    reset_transaction();

    // The whole message has been read: the session is in sync with the
    // client whatever we answer now.
    counts_as_error_ = false;
    struct Restore {
      bool& b;
      ~Restore() { b = true; }
    } restore{counts_as_error_};
    if (reader.too_big()) {
      server_->reject("message_too_big");
      reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
      co_return true;
    }
    if (reader.has_nul()) {
      server_->reject("bad_data");
      reply(554, "5.6.0", "Message contains NUL characters");
      co_return true;
    }
    if (reader.long_line()) {
      server_->reject("bad_data");
      reply(554, "5.6.0", "Message contains a line longer than 998 characters");
      co_return true;
    }
    if (feedback) {
      std::string report = std::move(reader.body());
      bool more = co_await feedback_report(std::move(report));
      co_return more;
    }

    intake::Submission sub;
    sub.mail_from = std::move(mail_from.address);
    sub.recipients = std::move(rcpts);
    sub.body = std::move(reader.body());
    sub.client_ip = peer_ip_;
    sub.helo = helo_;
    sub.auth_user = auth_user_;
    sub.protocol = "smtp";
    sub.tls = tls_ != nullptr;
    sub.eight_bit = reader.eight_bit();
    auto id = core::next_message_id();
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    auto prepared = intake::prepare(*cfg_, std::move(sub), id, now_ms);
    if (auto* rej = std::get_if<intake::Rejected>(&prepared)) {
      server_->reject(rej->reason);
      reply(rej->reply.code, rej->reply.enhanced, rej->reply.text);
      co_return true;
    }
    auto& p = std::get<intake::Prepared>(prepared);
    std::string set = p.message.configuration_set;
    size_t nrcpt = p.message.recipients.size();
    size_t size = p.body.size();
    std::string from = p.message.mail_from;
    std::string err = co_await async_spool(server_->spool, std::move(p.message), std::move(p.body),
                                           asio::use_awaitable);
    if (!err.empty()) {
      server_->reject("storage_error");
      spdlog::error("session={} event=spool_failed client={} error=\"{}\"", id_, peer_ip_, err);
      reply(451, "4.3.0", "Temporary storage failure, try again later");
      co_return true;
    }
    received_metric(set).inc();
    latency_metric().observe(std::chrono::duration<double>(Clock::now() - start).count());
    spdlog::info("session={} id={} event=accepted from=<{}> nrcpt={} size={} set={} client={}", id_,
                 id.hex(), from, nrcpt, size, set, peer_ip_);
    reply(250, "2.0.0", "Ok " + id.hex());
    co_return true;
  }

  // A feedback report: handed to the feedback handler, never spooled.
  awaitable<bool> feedback_report(std::string report) {
    std::string client_ip = peer_ip_;
    FeedbackReply r = co_await async_feedback(server_->feedback, std::move(report),
                                              std::move(client_ip), asio::use_awaitable);
    if (r.code >= 400) server_->reject("storage_error");
    spdlog::info("session={} event=feedback_report client={} reply={}", id_, peer_ip_, r.code);
    reply(r.code, r.enhanced, r.text);
    co_return true;
  }

  awaitable<bool> starttls(const protocol::Command& cmd) {
    if (!listener_.tls) {
      server_->reject("syntax");
      reply(502, "5.5.1", "STARTTLS not available");
      co_return true;
    }
    if (tls_) {
      bad_sequence("Already in TLS");
      co_return true;
    }
    if (!cmd.arg.empty()) {
      server_->reject("syntax");
      reply(501, "5.5.4", "Syntax: STARTTLS");
      co_return true;
    }
    reply(220, "2.0.0", "Ready to start TLS");
    if (!co_await flush()) co_return false;
    // Anything the client pipelined after STARTTLS was sent in clear text
    // and must not be taken as if it came over TLS (CVE-2011-0411).
    in_.clear();
    pos_ = 0;
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, *listener_.tls);
    deadline_ = Clock::now() + cfg_->smtp.command_timeout;
    kick_watchdog();
    auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server, kNoThrow);
    if (ec) {
      spdlog::info("session={} event=tls_failed client={} error=\"{}\"", id_, peer_ip_,
                   ec.message());
      tls_.reset();
      co_return false;
    }
    // RFC 3207: forget everything learnt before the handshake.
    reset_transaction();
    helo_.clear();
    enter(State::kGreeting);
    co_return true;
  }

  awaitable<bool> auth(const protocol::Command& cmd) {
    if (state_ == State::kGreeting) {
      bad_sequence("Send EHLO first");
      co_return true;
    }
    if (state_ != State::kReady) {
      bad_sequence("AUTH not allowed during a mail transaction");
      co_return true;
    }
    if (!auth_user_.empty()) {
      bad_sequence("Already authenticated");
      co_return true;
    }
    if (cfg_->smtp.users.empty()) {
      reply(502, "5.5.1", "AUTH not available");
      co_return true;
    }
    if (!tls_ && !in_networks(cfg_->smtp.plaintext_auth_networks, peer_ip_)) {
      server_->reject("tls_required");
      reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
      co_return true;
    }
    std::string_view arg = cmd.arg;
    std::string mech(arg.substr(0, arg.find(' ')));
    for (auto& c : mech) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string initial;
    if (auto sp = arg.find(' '); sp != std::string_view::npos) initial = arg.substr(sp + 1);

    std::string user, pass;
    if (mech == "PLAIN") {
      if (initial.empty()) {
        reply(334, "", "");
        auto r = co_await read_auth_line(initial);
        if (r != AuthRead::kOk) co_return r != AuthRead::kClosed;
      }
      auto decoded = initial == "=" ? std::optional<std::string>("") : core::base64_decode(initial);
      // authzid \0 authcid \0 password
      size_t a = decoded ? decoded->find('\0') : std::string::npos;
      size_t b = a != std::string::npos ? decoded->find('\0', a + 1) : std::string::npos;
      if (b == std::string::npos) {
        server_->reject("syntax");
        reply(501, "5.5.2", "Invalid AUTH PLAIN response");
        co_return true;
      }
      user = decoded->substr(a + 1, b - a - 1);
      pass = decoded->substr(b + 1);
    } else if (mech == "LOGIN") {
      std::string u64 = initial;
      if (u64.empty()) {
        reply(334, "", "VXNlcm5hbWU6");  // "Username:"
        auto r = co_await read_auth_line(u64);
        if (r != AuthRead::kOk) co_return r != AuthRead::kClosed;
      }
      reply(334, "", "UGFzc3dvcmQ6");  // "Password:"
      std::string p64;
      auto r = co_await read_auth_line(p64);
      if (r != AuthRead::kOk) co_return r != AuthRead::kClosed;
      auto u = core::base64_decode(u64);
      auto p = core::base64_decode(p64);
      if (!u || !p) {
        server_->reject("syntax");
        reply(501, "5.5.2", "Invalid base64 in AUTH LOGIN");
        co_return true;
      }
      user = std::move(*u);
      pass = std::move(*p);
    } else {
      server_->reject("syntax");
      reply(504, "5.5.4", "Unrecognized authentication type");
      co_return true;
    }
    const config::SmtpUser* found = cfg_->find_user(user);
    // Compare even for unknown users so timing does not reveal user names.
    bool ok =
        constant_time_equal(found ? found->password : std::string(pass.size() + 1, '\0'), pass) &&
        found != nullptr;
    if (!ok) {
      server_->reject("auth_failed");
      spdlog::info("session={} event=auth_failed client={} user=\"{}\"", id_, peer_ip_, user);
      reply(535, "5.7.8", "Authentication credentials invalid");
      co_return true;
    }
    auth_user_ = user;
    spdlog::debug("session={} event=auth user=\"{}\"", id_, user);
    reply(235, "2.7.0", "Authentication successful");
    co_return true;
  }

  enum class AuthRead { kOk, kCancelled, kClosed };

  awaitable<AuthRead> read_auth_line(std::string& out) {
    auto status = co_await read_line(out);
    if (status == LineStatus::kClosed) co_return AuthRead::kClosed;
    if (status == LineStatus::kTooLong) {
      server_->reject("line_too_long");
      reply(500, "5.5.2", "Line too long");
      co_return AuthRead::kCancelled;
    }
    if (out == "*") {
      reply(501, "5.7.0", "Authentication cancelled");
      co_return AuthRead::kCancelled;
    }
    co_return AuthRead::kOk;
  }

  static metrics::Histogram& latency_metric() {
    static metrics::Histogram h = metrics::histogram(
        "mta_smtp_data_seconds", "From DATA to the final reply of an accepted message",
        metrics::latency_buckets());
    return h;
  }

  metrics::Counter received_metric(const std::string& set) {
    return metrics::counter("mta_messages_received_total", "Messages accepted into the spool",
                            {{"configuration_set", set}, {"protocol", "smtp"}});
  }

  std::shared_ptr<Server::Impl> server_;
  tcp::socket sock_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::now() + std::chrono::minutes(5);
  ListenerInfo listener_;
  bool admitted_;
  std::string peer_ip_;
  uint64_t id_;
  std::shared_ptr<const config::Config> cfg_;

  State state_ = State::kGreeting;
  std::string in_;
  size_t pos_ = 0;
  std::string out_;
  std::string helo_;
  std::string auth_user_;
  std::optional<protocol::MailFrom> mail_from_;
  std::vector<std::string> rcpts_;
  bool feedback_only_ = false;  // unauthenticated: only feedback addresses
  bool feedback_tx_ = false;    // the recipients are feedback addresses
  uint32_t errors_ = 0;
  bool counts_as_error_ = true;
  bool closed_ = false;
  bool timed_out_ = false;
  bool draining_ = false;
  bool idle_ = false;
};

void start_session(std::shared_ptr<Server::Impl> server, tcp::socket sock, ListenerInfo listener,
                   bool admitted, std::string peer_ip) {
  auto s = std::make_shared<Session>(std::move(server), std::move(sock), std::move(listener),
                                     admitted, std::move(peer_ip));
  s->start();
}

void drain_session(const std::shared_ptr<Session>& s) {
  s->drain();
}

}  // namespace mta::smtp
