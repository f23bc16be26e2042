// The c-ares bridge. One ares_channel per Resolver, touched only on the
// Resolver's strand:
//   - sock_state_cb tells us which sockets c-ares wants watched; each gets a
//     stream_descriptor over c-ares' own fd (released, never closed: the fd
//     belongs to c-ares) whose async_wait calls ares_process_fd;
//   - one steady_timer follows ares_timeout() and lets c-ares expire tries;
//   - a query's callback runs inside ares_process_fd: it only stores the
//     answer (and caches it) and cancels the Pending's signal timer, so the
//     waiting coroutines are resumed by a posted handler, never from inside
//     c-ares.
// The public coroutines co_spawn their work onto the strand and await it, so
// they resume on the caller's executor.
#include "mta/dns/resolver.hpp"

#include <ares.h>
#include <arpa/nameser.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mta/core/result.hpp"
#include "mta/dns/cache.hpp"

namespace mta::dns {

using asio::awaitable;

const char* to_string(Status s) {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kNxDomain:
      return "nxdomain";
    case Status::kNoData:
      return "nodata";
    case Status::kTempFail:
      return "tempfail";
  }
  return "?";
}

namespace {

enum class QType : uint8_t { kA, kAaaa, kMx };

const char* to_string(QType t) {
  switch (t) {
    case QType::kA:
      return "A";
    case QType::kAaaa:
      return "AAAA";
    case QType::kMx:
      return "MX";
  }
  return "?";
}

int wire_type(QType t) {
  switch (t) {
    case QType::kA:
      return ns_t_a;
    case QType::kAaaa:
      return ns_t_aaaa;
    case QType::kMx:
      return ns_t_mx;
  }
  MTA_PANIC("unknown query type");
}

// What one query (type, name) produced; also what the cache holds.
struct Answer {
  Status status = Status::kTempFail;
  std::vector<MxRecord> mx;                  // kMx
  std::vector<asio::ip::address> addresses;  // kA, kAaaa
  std::string error;
};

Answer temp_fail(std::string why) {
  Answer a;
  a.status = Status::kTempFail;
  a.error = std::move(why);
  return a;
}

// A lookup in flight, shared by everyone who asked for the same (type,
// name). The signal never expires by itself: cancelling it once the answer
// is set wakes every waiter through a posted completion.
struct Pending {
  explicit Pending(const asio::any_io_executor& ex)
      : signal(ex, std::chrono::steady_clock::time_point::max()) {}
  asio::steady_timer signal;
  std::optional<Answer> answer;
};

// Lowercase, without one trailing dot: the cache key and the query name.
std::string normalize(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// "[192.0.2.1]" or "[ipv6:2001:db8::1]" (already lowercased), RFC 5321 4.1.3.
std::optional<asio::ip::address> parse_address_literal(std::string_view s) {
  if (s.size() < 3 || s.front() != '[' || s.back() != ']') return std::nullopt;
  s = s.substr(1, s.size() - 2);
  bool v6 = s.starts_with("ipv6:");
  if (v6) s.remove_prefix(5);
  std::error_code ec;
  auto a = asio::ip::make_address(std::string(s), ec);
  if (ec || a.is_v6() != v6) return std::nullopt;
  return a;
}

// The smallest TTL among the answer section's records of `type` and of the
// CNAMEs leading to them; nullopt when there is none or the message is
// malformed. c-ares' MX parser drops TTLs, hence this walk.
std::optional<uint32_t> min_answer_ttl(const unsigned char* p, int len, int type) {
  if (p == nullptr || len < 12) return std::nullopt;
  const size_t n = static_cast<size_t>(len);
  auto u16 = [p](size_t o) { return static_cast<unsigned>((p[o] << 8) | p[o + 1]); };
  auto skip_name = [p, n](size_t& o) {
    while (o < n) {
      unsigned l = p[o];
      if (l == 0) {
        o += 1;
        return true;
      }
      if ((l & 0xC0) == 0xC0) {  // compression pointer ends the name
        o += 2;
        return o <= n;
      }
      if ((l & 0xC0) != 0) return false;
      o += 1 + l;
    }
    return false;
  };
  const unsigned qdcount = u16(4), ancount = u16(6);
  size_t o = 12;
  for (unsigned i = 0; i < qdcount; ++i) {
    if (!skip_name(o) || o + 4 > n) return std::nullopt;
    o += 4;
  }
  std::optional<uint32_t> best;
  for (unsigned i = 0; i < ancount; ++i) {
    if (!skip_name(o) || o + 10 > n) break;
    const unsigned rtype = u16(o);
    uint32_t ttl = (static_cast<uint32_t>(u16(o + 4)) << 16) | u16(o + 6);
    if (ttl > 0x7FFFFFFFu) ttl = 0;  // RFC 2181 8: treat as zero
    const size_t rdlen = u16(o + 8);
    o += 10;
    if (o + rdlen > n) break;
    o += rdlen;
    if (static_cast<int>(rtype) == type || rtype == ns_t_cname) {
      best = best ? std::min(*best, ttl) : ttl;
    }
  }
  return best;
}

asio::ip::address to_address(const in_addr& a) {
  asio::ip::address_v4::bytes_type b;
  static_assert(sizeof(b) == sizeof(a));
  std::memcpy(b.data(), &a, b.size());
  return asio::ip::address_v4(b);
}

asio::ip::address to_address(const ares_in6_addr& a) {
  asio::ip::address_v6::bytes_type b;
  static_assert(sizeof(b) == sizeof(a));
  std::memcpy(b.data(), &a, b.size());
  return asio::ip::address_v6(b);
}

struct Parsed {
  Answer answer;
  std::optional<uint32_t> ttl;  // positive answers: seconds, before clamping
};

// Turns a finished query into an Answer. Runs inside the c-ares callback.
Parsed parse_reply(QType type, const std::string& name, int status, const unsigned char* abuf,
                   int alen) {
  Parsed out;
  Answer& a = out.answer;
  auto fail = [&](Status s, const char* why) {
    a.status = s;
    a.error = fmt::format("{} {}: {}", to_string(type), name, why);
  };
  switch (status) {
    case ARES_SUCCESS:
      break;
    case ARES_ENODATA:
      fail(Status::kNoData, "no records of this type");
      return out;
    case ARES_ENOTFOUND:
      fail(Status::kNxDomain, "no such domain (NXDOMAIN)");
      return out;
    case ARES_EBADNAME:
      fail(Status::kNxDomain, "not a valid domain name");
      return out;
    default:  // SERVFAIL, REFUSED (as ECONNREFUSED), timeouts, shutdown...
      fail(Status::kTempFail, ares_strerror(status));
      return out;
  }

  int rc = ARES_SUCCESS;
  if (type == QType::kMx) {
    ares_mx_reply* mx = nullptr;
    rc = ares_parse_mx_reply(abuf, alen, &mx);
    for (auto* m = mx; m != nullptr; m = m->next) {
      a.mx.push_back(MxRecord{normalize(m->host), m->priority});
    }
    if (mx != nullptr) ares_free_data(mx);
    if (rc == ARES_SUCCESS && a.mx.empty()) rc = ARES_ENODATA;
    if (rc == ARES_SUCCESS) out.ttl = min_answer_ttl(abuf, alen, ns_t_mx);
  } else if (type == QType::kA) {
    ares_addrttl ttls[64];
    int n = 64;
    rc = ares_parse_a_reply(abuf, alen, nullptr, ttls, &n);
    for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
      a.addresses.push_back(to_address(ttls[i].ipaddr));
      uint32_t t = ttls[i].ttl < 0 ? 0 : static_cast<uint32_t>(ttls[i].ttl);
      out.ttl = out.ttl ? std::min(*out.ttl, t) : t;
    }
  } else {
    ares_addr6ttl ttls[64];
    int n = 64;
    rc = ares_parse_aaaa_reply(abuf, alen, nullptr, ttls, &n);
    for (int i = 0; rc == ARES_SUCCESS && i < n; ++i) {
      a.addresses.push_back(to_address(ttls[i].ip6addr));
      uint32_t t = ttls[i].ttl < 0 ? 0 : static_cast<uint32_t>(ttls[i].ttl);
      out.ttl = out.ttl ? std::min(*out.ttl, t) : t;
    }
  }
  if (rc == ARES_SUCCESS && type != QType::kMx && a.addresses.empty()) rc = ARES_ENODATA;
  if (rc == ARES_ENODATA) {  // e.g. only a CNAME that leads nowhere
    a.mx.clear();
    a.addresses.clear();
    fail(Status::kNoData, "no records of this type");
  } else if (rc != ARES_SUCCESS) {
    fail(Status::kTempFail, ares_strerror(rc));
  } else {
    a.status = Status::kOk;
  }
  return out;
}

// Preference order; equal preferences shuffled (RFC 5321 5.1).
void sort_and_shuffle(std::vector<MxRecord>& mx, std::mt19937_64& rng) {
  std::stable_sort(mx.begin(), mx.end(), [](const MxRecord& a, const MxRecord& b) {
    return a.preference < b.preference;
  });
  for (auto first = mx.begin(); first != mx.end();) {
    auto last = std::find_if(
        first, mx.end(), [p = first->preference](const MxRecord& m) { return m.preference != p; });
    std::shuffle(first, last, rng);
    first = last;
  }
}

// A and AAAA answers for one host, IPv4 first. Any address makes it kOk.
AddrResult merge(const Answer& a, const Answer& aaaa) {
  AddrResult r;
  r.addresses = a.addresses;
  r.addresses.insert(r.addresses.end(), aaaa.addresses.begin(), aaaa.addresses.end());
  if (!r.addresses.empty()) {
    r.status = Status::kOk;
  } else if (a.status == Status::kTempFail || aaaa.status == Status::kTempFail) {
    r.status = Status::kTempFail;
    r.error = a.status == Status::kTempFail ? a.error : aaaa.error;
  } else if (a.status == Status::kNxDomain || aaaa.status == Status::kNxDomain) {
    r.status = Status::kNxDomain;
    r.error = a.status == Status::kNxDomain ? a.error : aaaa.error;
  } else {
    r.status = Status::kNoData;
    r.error = a.error + "; " + aaaa.error;
  }
  return r;
}

// use_awaitable without the caller's cancellation slot: asio 1.22's co_spawn
// would emit the caller's cancellation on the caller's thread straight into
// the strand-side coroutine, racing the strand.
auto uncancellable() {
  return asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable);
}

}  // namespace

struct Resolver::Impl : std::enable_shared_from_this<Resolver::Impl> {
  // One c-ares socket under watch. `closed` is set when c-ares gives the fd
  // up; handlers still queued for it then do nothing (the fd number may
  // already belong to a new socket with a new Watch).
  struct Watch {
    explicit Watch(const asio::any_io_executor& ex) : sd(ex) {}
    asio::posix::stream_descriptor sd;
    bool want_read = false, want_write = false;
    bool reading = false, writing = false;  // an async_wait is outstanding
    bool closed = false;
  };

  // The c-ares callback's argument for one query.
  struct Query {
    Impl* impl;
    QType type;
    std::string name;
    std::string key;
  };

  Impl(asio::any_io_executor ex, ResolverOptions o)
      : strand(asio::make_strand(std::move(ex))),
        opts(std::move(o)),
        clock(opts.clock != nullptr ? opts.clock : &system_clock),
        timer(strand),
        cache(opts.cache_entries),
        rng(std::random_device{}()) {}

  ~Impl() {
    // Only reached when no handler or coroutine holds us any more, e.g. when
    // the io_context is destroyed with the shutdown still queued.
    destroying = true;
    close_channel();
  }

  void init() {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });

    ares_options o{};
    o.timeout = static_cast<int>(std::max<int64_t>(1, opts.timeout.count()));
    o.tries = std::max(1, opts.tries);
    o.sock_state_cb = &Impl::on_sock_state;
    o.sock_state_cb_data = this;
    int rc = ares_init_options(&channel, &o,
                               ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
      channel = nullptr;
      throw std::runtime_error(fmt::format("dns: c-ares init failed: {}", ares_strerror(rc)));
    }
    if (opts.servers.empty()) return;

    std::vector<ares_addr_port_node> nodes(opts.servers.size());
    for (size_t i = 0; i < opts.servers.size(); ++i) {
      const auto& s = opts.servers[i];
      std::error_code ec;
      auto addr = asio::ip::make_address(s.host, ec);
      if (ec) {
        close_channel();
        throw std::runtime_error(fmt::format("dns: bad name server address {}", s.to_string()));
      }
      auto& n = nodes[i];
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      n.udp_port = n.tcp_port = s.port;
      if (addr.is_v4()) {
        n.family = AF_INET;
        auto b = addr.to_v4().to_bytes();
        std::memcpy(&n.addr.addr4, b.data(), b.size());
      } else {
        n.family = AF_INET6;
        auto b = addr.to_v6().to_bytes();
        std::memcpy(&n.addr.addr6, b.data(), b.size());
      }
    }
    rc = ares_set_servers_ports(channel, nodes.data());
    if (rc != ARES_SUCCESS) {
      close_channel();
      throw std::runtime_error(fmt::format("dns: setting name servers: {}", ares_strerror(rc)));
    }
  }

  // ares_destroy fails every query with ARES_EDESTRUCTION (waking its
  // waiters unless we are being destroyed) and reports each socket closed.
  void close_channel() {
    timer.cancel();
    if (channel != nullptr) {
      ares_channel c = channel;
      ares_destroy(c);
      channel = nullptr;
    }
    for (auto& [fd, w] : watches) {
      w->closed = true;
      w->sd.release();
    }
    watches.clear();
  }

  // Runs on the strand once the Resolver is gone.
  void shutdown() {
    closed = true;
    close_channel();
    cache.clear();
  }

  // --- sockets and the timer ------------------------------------------------

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    static_cast<Impl*>(data)->watch(fd, readable != 0, writable != 0);
  }

  void watch(ares_socket_t fd, bool read, bool write) {
    auto it = watches.find(fd);
    if (!read && !write) {  // c-ares is about to close fd
      if (it != watches.end()) {
        it->second->closed = true;
        it->second->sd.release();
        watches.erase(it);
      }
      return;
    }
    if (destroying) return;
    if (it == watches.end()) {
      auto w = std::make_shared<Watch>(strand);
      std::error_code ec;
      w->sd.assign(fd, ec);
      if (ec) {  // the query will time out through the timer
        spdlog::error("dns: cannot watch c-ares socket fd={} error={}", fd, ec.message());
        return;
      }
      it = watches.emplace(fd, std::move(w)).first;
    }
    it->second->want_read = read;
    it->second->want_write = write;
    arm(it->second);
  }

  void arm(const std::shared_ptr<Watch>& w) {
    using asio::posix::descriptor_base;
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->sd.async_wait(descriptor_base::wait_read,
                       [self = shared_from_this(), w](const std::error_code& ec) {
                         self->on_ready(w, ec, true);
                       });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->sd.async_wait(descriptor_base::wait_write,
                       [self = shared_from_this(), w](const std::error_code& ec) {
                         self->on_ready(w, ec, false);
                       });
    }
  }

  void on_ready(const std::shared_ptr<Watch>& w, const std::error_code& ec, bool read) {
    (read ? w->reading : w->writing) = false;
    if (w->closed || channel == nullptr || ec == asio::error::operation_aborted) return;
    if (!(read ? w->want_read : w->want_write)) return;
    const ares_socket_t fd = w->sd.native_handle();
    if (ec) spdlog::warn("dns: waiting on c-ares socket fd={} failed: {}", fd, ec.message());
    // On an error c-ares' read fails too and it gives the socket up; not
    // re-arming avoids spinning if it does not.
    ares_process_fd(channel, read ? fd : ARES_SOCKET_BAD, read ? ARES_SOCKET_BAD : fd);
    if (!ec && !w->closed) arm(w);
    arm_timer();
  }

  // Keeps the timer at c-ares' next deadline (a try timing out).
  void arm_timer() {
    if (channel == nullptr) return;
    timeval tv{};
    if (ares_timeout(channel, nullptr, &tv) == nullptr) {  // nothing in flight
      if (timer_armed) timer.cancel();
      timer_armed = false;
      return;
    }
    auto when = std::chrono::steady_clock::now() + std::chrono::seconds(tv.tv_sec) +
                std::chrono::microseconds(tv.tv_usec);
    if (timer_armed && timer.expiry() <= when) return;
    timer.expires_at(when);
    timer_armed = true;
    timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      self->timer_armed = false;
      if (self->channel == nullptr) return;
      ares_process_fd(self->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      self->arm_timer();
    });
  }

  // --- queries ----------------------------------------------------------------

  static std::string cache_key(QType t, const std::string& name) {
    std::string k(1, static_cast<char>('0' + static_cast<int>(t)));
    return k + name;
  }

  // The cached answer, the query already in flight, or a new query.
  std::shared_ptr<Pending> start(QType type, const std::string& name) {
    auto p = std::make_shared<Pending>(strand);
    if (closed || channel == nullptr) {
      p->answer = temp_fail("resolver is shut down");
      return p;
    }
    std::string key = cache_key(type, name);
    if (const Answer* hit = cache.find(key, clock->now())) {
      p->answer = *hit;
      return p;
    }
    if (auto it = inflight.find(key); it != inflight.end()) return it->second;
    inflight.emplace(key, p);
    auto* q = new Query{this, type, name, std::move(key)};
    // May call on_answer at once (e.g. a malformed name).
    ares_query(channel, name.c_str(), ns_c_in, wire_type(type), &Impl::on_answer, q);
    arm_timer();
    return p;
  }

  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen) {
    std::unique_ptr<Query> q(static_cast<Query*>(arg));
    Impl* self = q->impl;
    if (self->destroying) return;
    Parsed r = parse_reply(q->type, q->name, status, abuf, alen);
    std::chrono::seconds ttl{0};
    if (r.answer.status == Status::kOk) {
      ttl = std::max(self->opts.min_ttl,
                     std::min(std::chrono::seconds(r.ttl.value_or(0)), self->opts.max_ttl));
    } else if (r.answer.status != Status::kTempFail) {
      ttl = self->opts.negative_ttl;
    }
    spdlog::debug("dns query type={} name={} status={} timeouts={} cache_ttl={} error={}",
                  to_string(q->type), q->name, to_string(r.answer.status), timeouts, ttl.count(),
                  r.answer.error);
    if (ttl.count() > 0 && !self->closed) {
      self->cache.put(q->key, r.answer, self->clock->now() + ttl);
    }
    auto it = self->inflight.find(q->key);
    if (it == self->inflight.end()) return;
    auto p = std::move(it->second);
    self->inflight.erase(it);
    p->answer = std::move(r.answer);
    p->signal.cancel();
  }

  // Waits on the strand for a Pending's answer.
  static awaitable<Answer> wait(std::shared_ptr<Pending> p) {
    if (!p->answer) {
      auto token = asio::experimental::as_tuple(asio::use_awaitable);
      auto [ec] = co_await p->signal.async_wait(token);
      (void)ec;  // the wake-up is a cancellation
    }
    if (!p->answer) co_return temp_fail("lookup interrupted");
    co_return *p->answer;
  }

  MxResult to_mx_result(const Answer& a) {
    MxResult r;
    r.status = a.status;
    r.error = a.error;
    if (a.status != Status::kOk) return r;
    bool dot = false;
    for (const auto& m : a.mx) {
      if (m.host.empty()) {
        dot = true;  // "MX 0 ." (RFC 7505); ignored next to real MX records
      } else {
        r.records.push_back(m);
      }
    }
    if (dot && r.records.empty()) {
      r.null_mx = true;
      return r;
    }
    sort_and_shuffle(r.records, rng);
    return r;
  }

  // --- the strand-side halves of the public calls -----------------------------

  static awaitable<MxResult> do_mx(std::shared_ptr<Impl> self, std::string domain) {
    std::string name = normalize(domain);
    if (name.empty()) {
      MxResult r;
      r.status = Status::kNxDomain;
      r.error = "empty domain";
      co_return r;
    }
    auto p = self->start(QType::kMx, name);
    Answer a = co_await wait(std::move(p));
    co_return self->to_mx_result(a);
  }

  static awaitable<AddrResult> do_addresses(std::shared_ptr<Impl> self, std::string host) {
    std::string name = normalize(host);
    AddrResult r;
    auto literal = parse_address_literal(name);
    if (!literal) {  // also "192.0.2.1", "::1" and "[::1]"
      std::string_view bare = name;
      if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') {
        bare = bare.substr(1, bare.size() - 2);
      }
      std::error_code ec;
      auto a = asio::ip::make_address(std::string(bare), ec);
      if (!ec) literal = a;
    }
    if (literal) {
      r.status = Status::kOk;
      r.addresses.push_back(*literal);
      co_return r;
    }
    if (name.empty()) {
      r.status = Status::kNxDomain;
      r.error = "empty host name";
      co_return r;
    }
    auto pa = self->start(QType::kA, name);
    auto paaaa = self->start(QType::kAaaa, name);
    Answer a = co_await wait(std::move(pa));
    Answer aaaa = co_await wait(std::move(paaaa));
    co_return merge(a, aaaa);
  }

  static awaitable<NextHops> do_next_hops(std::shared_ptr<Impl> self, std::string domain) {
    std::string name = normalize(domain);
    NextHops out;
    if (!name.empty() && name.front() == '[') {
      auto addr = parse_address_literal(name);
      if (!addr) {
        out.status = Status::kNxDomain;
        out.error = fmt::format("{}: not a valid address literal", domain);
        co_return out;
      }
      out.status = Status::kOk;
      out.hops.push_back(NextHop{addr->to_string(), 0, {*addr}});
      co_return out;
    }
    if (name.empty()) {
      out.status = Status::kNxDomain;
      out.error = "empty domain";
      co_return out;
    }

    auto pmx = self->start(QType::kMx, name);
    Answer mx_answer = co_await wait(std::move(pmx));
    MxResult mx = self->to_mx_result(mx_answer);
    std::vector<MxRecord> hosts;
    switch (mx.status) {
      case Status::kOk:
        if (mx.null_mx) {
          out.status = Status::kOk;
          out.null_mx = true;
          out.error = fmt::format("{} publishes a null MX: it accepts no mail", name);
          co_return out;
        }
        hosts = std::move(mx.records);
        break;
      case Status::kNoData:  // implicit MX, RFC 5321 5.1
        hosts.push_back(MxRecord{name, 0});
        break;
      case Status::kNxDomain:
      case Status::kTempFail:
        out.status = mx.status;
        out.error = std::move(mx.error);
        co_return out;
    }

    // Start every address lookup before waiting for any.
    struct HostLookup {
      MxRecord mx;
      std::shared_ptr<Pending> a, aaaa;
    };
    std::unordered_set<std::string> seen;
    std::vector<HostLookup> lookups;
    for (auto& h : hosts) {
      if (!seen.insert(h.host).second) continue;  // listed twice: keep the best preference
      auto pa = self->start(QType::kA, h.host);
      auto paaaa = self->start(QType::kAaaa, h.host);
      lookups.push_back(HostLookup{std::move(h), std::move(pa), std::move(paaaa)});
    }
    bool any_temp = false;
    std::string temp_error;
    std::vector<std::string> unresolved;
    for (size_t i = 0; i < lookups.size(); ++i) {
      HostLookup& l = lookups[i];
      Answer a = co_await wait(std::move(l.a));
      Answer aaaa = co_await wait(std::move(l.aaaa));
      AddrResult r = merge(a, aaaa);
      if (r.status == Status::kOk) {
        out.hops.push_back(NextHop{l.mx.host, l.mx.preference, std::move(r.addresses)});
        continue;
      }
      unresolved.push_back(l.mx.host);
      if (r.status == Status::kTempFail && !any_temp) {
        any_temp = true;
        temp_error = std::move(r.error);
      }
    }
    if (!out.hops.empty()) {
      out.status = Status::kOk;
    } else if (any_temp) {
      out.status = Status::kTempFail;
      out.error = fmt::format("{}: no MX host resolved yet: {}", name, temp_error);
    } else if (mx.status == Status::kNoData) {
      out.status = Status::kNxDomain;
      out.error = fmt::format("{}: no MX and no A/AAAA records", name);
    } else {
      out.status = Status::kNxDomain;
      out.error = fmt::format("{}: none of its MX hosts has an address ({})", name,
                              fmt::join(unresolved, ", "));
    }
    co_return out;
  }

  asio::strand<asio::any_io_executor> strand;
  ResolverOptions opts;
  core::SystemClock system_clock;
  const core::Clock* clock;
  ares_channel channel = nullptr;
  asio::steady_timer timer;  // c-ares' next deadline
  bool timer_armed = false;
  std::unordered_map<ares_socket_t, std::shared_ptr<Watch>> watches;
  std::unordered_map<std::string, std::shared_ptr<Pending>> inflight;  // by cache key
  TtlCache<Answer> cache;
  std::mt19937_64 rng;
  bool closed = false;      // shut down: no new queries
  bool destroying = false;  // in ~Impl: callbacks touch nothing
};

Resolver::Resolver(asio::any_io_executor ex, ResolverOptions opts)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(opts))) {
  impl_->init();
}

Resolver::~Resolver() {
  auto strand = impl_->strand;
  asio::post(strand, [impl = std::move(impl_)] { impl->shutdown(); });
}

// Each call runs its strand-side half with co_spawn and awaits it: the work
// happens on the strand, the caller resumes on its own executor. The
// awaitables are named locals (GCC 12 miscompiles temporaries inside
// co_await, build-spike #5).
awaitable<MxResult> Resolver::mx(std::string domain) {
  auto strand = impl_->strand;
  auto token = uncancellable();
  auto op = Impl::do_mx(impl_, std::move(domain));
  MxResult r = co_await asio::co_spawn(strand, std::move(op), token);
  co_return r;
}

awaitable<AddrResult> Resolver::addresses(std::string host) {
  auto strand = impl_->strand;
  auto token = uncancellable();
  auto op = Impl::do_addresses(impl_, std::move(host));
  AddrResult r = co_await asio::co_spawn(strand, std::move(op), token);
  co_return r;
}

awaitable<NextHops> Resolver::next_hops(std::string domain) {
  auto strand = impl_->strand;
  auto token = uncancellable();
  auto op = Impl::do_next_hops(impl_, std::move(domain));
  NextHops r = co_await asio::co_spawn(strand, std::move(op), token);
  co_return r;
}

}  // namespace mta::dns
