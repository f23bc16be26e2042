// The resolver against a real dnsmasq on a free loopback port, started and
// stopped (by PID) by each test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mta/dns/resolver.hpp"

extern char** environ;

using namespace mta;
using namespace mta::dns;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

// A loopback UDP socket bound to a kernel-chosen port; kept open it is a
// name server that never answers.
class UdpPort {
 public:
  UdpPort() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      throw std::runtime_error("bind 127.0.0.1:0 failed");
    }
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
  }
  ~UdpPort() { close(); }
  UdpPort(const UdpPort&) = delete;
  UdpPort& operator=(const UdpPort&) = delete;
  uint16_t port() const { return port_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A port on which nothing listens (at the moment of asking).
uint16_t free_port() {
  UdpPort p;
  return p.port();
}

// Sends one A query for ready.test and waits 20 ms for any reply.
bool dns_answers(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const unsigned char query[] = {0x12, 0x34, 0x01, 0x00, 0,   1,   0, 0,   0,   0,   0,   0,  //
                                 5,    'r',  'e',  'a',  'd', 'y', 4, 't', 'e', 's', 't', 0,
                                 0,    1,    0,    1};
  bool ok = false;
  if (::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) > 0) {
    pollfd p{fd, POLLIN, 0};
    unsigned char reply[512];
    if (::poll(&p, 1, 20) == 1) {
      ssize_t n = ::recv(fd, reply, sizeof reply, 0);
      ok = n >= 12 && reply[0] == 0x12 && reply[1] == 0x34;
    }
  }
  ::close(fd);
  return ok;
}

// dnsmasq serving `records` under test/ (everything else there is NXDOMAIN;
// names outside it are REFUSED), logging every query to a file. Stopped by
// PID with SIGTERM + waitpid.
class Dnsmasq {
 public:
  explicit Dnsmasq(std::vector<std::string> records) : records_(std::move(records)) {
    char path[] = "/tmp/mta-dns-test-XXXXXX";
    int fd = ::mkstemp(path);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    log_ = path;
    // Another test run may take the port between our probe and dnsmasq's
    // bind: then pick another.
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (start(free_port())) return;
    }
    throw std::runtime_error("dnsmasq did not start: " + log());
  }
  ~Dnsmasq() {
    stop();
    ::unlink(log_.c_str());
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  core::HostPort server() const { return core::HostPort{"127.0.0.1", port_}; }

  // How many queries dnsmasq logged for `what`, e.g. "query[MX] order.test ".
  int count(const std::string& what) const {
    std::string text = log();
    int n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

 private:
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  bool start(uint16_t port) {
    std::vector<std::string> args = {"/usr/sbin/dnsmasq",
                                     "--no-daemon",
                                     "--conf-file=/dev/null",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--listen-address=127.0.0.1",
                                     "--bind-interfaces",
                                     "--port=" + std::to_string(port),
                                     "--local=/test/",
                                     "--log-queries"};
    args.insert(args.end(), records_.begin(), records_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_TRUNC, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn dnsmasq failed");

    const auto deadline = Steady::now() + 5s;
    while (Steady::now() < deadline) {
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {  // it exited
        if (log().find("Address already in use") != std::string::npos) return false;
        throw std::runtime_error("dnsmasq exited: " + log());
      }
      if (dns_answers(port)) {
        pid_ = pid;
        port_ = port;
        return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw std::runtime_error("dnsmasq did not answer within 5 s: " + log());
  }

  std::vector<std::string> records_;
  std::string log_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// The test zone. servfail.test is forwarded to a port where nothing listens,
// so its names never get an answer.
std::vector<std::string> zone() {
  return {
      "--mx-host=order.test,mx30.order.test,30",
      "--mx-host=order.test,mx10.order.test,10",
      "--mx-host=order.test,mx20.order.test,20",
      "--host-record=mx10.order.test,127.0.0.10",
      "--host-record=mx20.order.test,127.0.0.20",
      "--host-record=mx30.order.test,127.0.0.30",
      "--mx-host=shuffle.test,a.shuffle.test,10",
      "--mx-host=shuffle.test,b.shuffle.test,10",
      "--mx-host=shuffle.test,c.shuffle.test,20",
      "--host-record=a.shuffle.test,127.0.1.1",
      "--host-record=b.shuffle.test,127.0.1.2",
      "--host-record=c.shuffle.test,127.0.1.3",
      "--host-record=implicit.test,127.0.2.1",
      "--dns-rr=nullmx.test,15,000000",  // MX 0 "." (RFC 7505)
      "--mx-host=dropped.test,noaddr.dropped.test,5",
      "--mx-host=dropped.test,mx.dropped.test,10",
      "--host-record=mx.dropped.test,127.0.3.1",
      "--mx-host=allgone.test,gone1.allgone.test,10",
      "--mx-host=allgone.test,gone2.allgone.test,20",
      "--host-record=v6.test,::1",
      "--host-record=dual.test,127.0.4.1,::2",
      "--host-record=ttl100.test,127.0.5.1,100",
      "--host-record=ttl0.test,127.0.5.2",  // dnsmasq's local TTL is 0
      "--mx-host=tempmx.test,mx.servfail.test,10",
      "--mx-host=tempmix.test,mx.servfail.test,10",
      "--mx-host=tempmix.test,mx.dropped.test,20",
      "--server=/servfail.test/127.0.0.1#" + std::to_string(free_port()),
  };
}

ResolverOptions options(core::HostPort server) {
  ResolverOptions o;
  o.servers = {server};
  o.timeout = 500ms;
  o.tries = 1;
  return o;
}

// Runs one awaitable on io to completion.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> op) {
  std::optional<T> out;
  std::exception_ptr err;
  asio::co_spawn(io, std::move(op), [&](std::exception_ptr e, T v) {
    err = e;
    out = std::move(v);
    io.stop();
  });
  io.restart();
  io.run_for(10s);
  if (err) std::rethrow_exception(err);
  REQUIRE(out.has_value());
  return std::move(*out);
}

std::vector<std::string> hosts_of(const std::vector<MxRecord>& rs) {
  std::vector<std::string> out;
  for (auto& r : rs) out.push_back(r.host + "/" + std::to_string(r.preference));
  return out;
}

std::vector<std::string> hosts_of(const std::vector<NextHop>& hs) {
  std::vector<std::string> out;
  for (auto& h : hs) out.push_back(h.host);
  return out;
}

std::vector<std::string> strings(const std::vector<asio::ip::address>& as) {
  std::vector<std::string> out;
  for (auto& a : as) out.push_back(a.to_string());
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_SUITE("dns") {
  TEST_CASE("MX records come back in preference order with their addresses") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));

    auto mx = run(io, r.mx("order.test"));
    CHECK(mx.status == Status::kOk);
    CHECK_FALSE(mx.null_mx);
    CHECK(hosts_of(mx.records) ==
          V{"mx10.order.test/10", "mx20.order.test/20", "mx30.order.test/30"});

    auto hops = run(io, r.next_hops("order.test"));
    REQUIRE(hops.status == Status::kOk);
    CHECK(hosts_of(hops.hops) == V{"mx10.order.test", "mx20.order.test", "mx30.order.test"});
    REQUIRE(hops.hops.size() == 3);
    CHECK(hops.hops[0].preference == 10);
    CHECK(strings(hops.hops[0].addresses) == V{"127.0.0.10"});
    CHECK(strings(hops.hops[2].addresses) == V{"127.0.0.30"});
  }

  TEST_CASE("names are case-insensitive and may end with a dot") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto hops = run(io, r.next_hops("ORDER.Test."));
    REQUIRE(hops.status == Status::kOk);
    CHECK(hosts_of(hops.hops).front() == "mx10.order.test");
  }

  TEST_CASE("equal preferences are shuffled on every call, even from the cache") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    std::set<V> orders;
    for (int i = 0; i < 64; ++i) {
      auto hops = run(io, r.next_hops("shuffle.test"));
      REQUIRE(hops.status == Status::kOk);
      auto got = hosts_of(hops.hops);
      REQUIRE(got.size() == 3);
      CHECK(got[2] == "c.shuffle.test");  // preference 20 always comes last
      orders.insert(got);
    }
    CHECK(orders == std::set<V>{{"a.shuffle.test", "b.shuffle.test", "c.shuffle.test"},
                                {"b.shuffle.test", "a.shuffle.test", "c.shuffle.test"}});
  }

  TEST_CASE("a domain without MX records is its own MX at preference 0") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto mx = run(io, r.mx("implicit.test"));
    CHECK(mx.status == Status::kNoData);
    CHECK(mx.records.empty());
    auto hops = run(io, r.next_hops("implicit.test"));
    REQUIRE(hops.status == Status::kOk);
    REQUIRE(hops.hops.size() == 1);
    CHECK(hops.hops[0].host == "implicit.test");
    CHECK(hops.hops[0].preference == 0);
    CHECK(strings(hops.hops[0].addresses) == V{"127.0.2.1"});
  }

  TEST_CASE("a null MX means the domain accepts no mail") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto mx = run(io, r.mx("nullmx.test"));
    CHECK(mx.status == Status::kOk);
    CHECK(mx.null_mx);
    CHECK(mx.records.empty());
    auto hops = run(io, r.next_hops("nullmx.test"));
    CHECK(hops.status == Status::kOk);
    CHECK(hops.null_mx);
    CHECK(hops.hops.empty());
  }

  TEST_CASE("a domain that does not exist is a permanent failure") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto mx = run(io, r.mx("nothing.test"));
    CHECK(mx.status == Status::kNxDomain);
    CHECK(mx.error.find("nothing.test") != std::string::npos);
    auto hops = run(io, r.next_hops("nothing.test"));
    CHECK(hops.status == Status::kNxDomain);
    CHECK(hops.hops.empty());
    auto addrs = run(io, r.addresses("nothing.test"));
    CHECK(addrs.status == Status::kNxDomain);
  }

  TEST_CASE("an MX host without an address is dropped and the next one is used") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto hops = run(io, r.next_hops("dropped.test"));
    REQUIRE(hops.status == Status::kOk);
    CHECK(hosts_of(hops.hops) == V{"mx.dropped.test"});
  }

  TEST_CASE("when no MX host has an address the failure is permanent") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto hops = run(io, r.next_hops("allgone.test"));
    CHECK(hops.status == Status::kNxDomain);
    CHECK(hops.hops.empty());
    INFO("error: ", hops.error);
    CHECK(hops.error.find("gone1.allgone.test") != std::string::npos);
  }

  TEST_CASE("AAAA addresses come after A addresses") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    struct Case {
      const char* host;
      Status status;
      V want;
    } cases[] = {
        {"v6.test", Status::kOk, {"::1"}},
        {"dual.test", Status::kOk, {"127.0.4.1", "::2"}},
        {"implicit.test", Status::kOk, {"127.0.2.1"}},
        {"order.test", Status::kNoData, {}},  // MX only
        {"192.0.2.7", Status::kOk, {"192.0.2.7"}},
        {"[2001:db8::1]", Status::kOk, {"2001:db8::1"}},
    };
    for (auto& c : cases) {
      auto got = run(io, r.addresses(c.host));
      INFO(std::string(c.host), ": got ", std::string(to_string(got.status)), " want ",
           std::string(to_string(c.status)), " error ", got.error);
      CHECK(got.status == c.status);
      CHECK(strings(got.addresses) == c.want);
    }
    auto hops = run(io, r.next_hops("v6.test"));
    REQUIRE(hops.status == Status::kOk);
    REQUIRE(hops.hops.size() == 1);
    CHECK(strings(hops.hops[0].addresses) == V{"::1"});
  }

  TEST_CASE("address literal domains need no lookup") {
    UdpPort silent;  // a lookup would time out
    asio::io_context io;
    Resolver r(io.get_executor(), options({"127.0.0.1", silent.port()}));
    struct Case {
      const char* domain;
      Status status;
      V want;
    } cases[] = {
        {"[192.0.2.1]", Status::kOk, {"192.0.2.1"}},
        {"[IPv6:2001:db8::25]", Status::kOk, {"2001:db8::25"}},
        {"[2001:db8::25]", Status::kNxDomain, {}},  // IPv6 needs its tag
        {"[IPv6:192.0.2.1]", Status::kNxDomain, {}},
        {"[mail.example]", Status::kNxDomain, {}},
        {"[]", Status::kNxDomain, {}},
    };
    auto start = Steady::now();
    for (auto& c : cases) {
      auto got = run(io, r.next_hops(c.domain));
      INFO(std::string(c.domain), ": got ", std::string(to_string(got.status)), " want ",
           std::string(to_string(c.status)), " error ", got.error);
      CHECK(got.status == c.status);
      V addrs;
      for (auto& h : got.hops) {
        CHECK(h.preference == 0);
        for (auto& a : strings(h.addresses)) addrs.push_back(a);
      }
      CHECK(addrs == c.want);
    }
    CHECK(Steady::now() - start < 250ms);
  }

  TEST_CASE("a silent name server is a temporary failure within the timeout") {
    UdpPort silent;
    asio::io_context io;
    Resolver r(io.get_executor(), options({"127.0.0.1", silent.port()}));
    auto start = Steady::now();
    auto hops = run(io, r.next_hops("example.test"));
    auto took = Steady::now() - start;
    CHECK(hops.status == Status::kTempFail);
    INFO("error: ", hops.error);
    CHECK_FALSE(hops.error.empty());
    CHECK(took >= 400ms);
    CHECK(took < 1500ms);
  }

  TEST_CASE("a port where nothing listens is a temporary failure") {
    asio::io_context io;
    Resolver r(io.get_executor(), options({"127.0.0.1", free_port()}));
    auto start = Steady::now();
    auto mx = run(io, r.mx("example.test"));
    CHECK(mx.status == Status::kTempFail);
    CHECK(Steady::now() - start < 1500ms);
  }

  TEST_CASE("an MX host in a zone whose server is dead is a temporary failure") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto hops = run(io, r.next_hops("tempmx.test"));
    CHECK(hops.status == Status::kTempFail);
    INFO("error: ", hops.error);
    CHECK(hops.error.find("mx.servfail.test") != std::string::npos);
    // ...but a host that resolves next to it is enough.
    auto mixed = run(io, r.next_hops("tempmix.test"));
    REQUIRE(mixed.status == Status::kOk);
    CHECK(hosts_of(mixed.hops) == V{"mx.dropped.test"});
    // Names outside the served zone are REFUSED by dnsmasq: temporary too.
    auto refused = run(io, r.mx("example.com"));
    CHECK(refused.status == Status::kTempFail);
  }

  TEST_CASE("answers are served from the cache after the server stops") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    auto before = run(io, r.next_hops("order.test"));
    REQUIRE(before.status == Status::kOk);
    dns.stop();
    auto after = run(io, r.next_hops("order.test"));
    REQUIRE(after.status == Status::kOk);
    CHECK(hosts_of(after.hops) == hosts_of(before.hops));
    CHECK(strings(after.hops[1].addresses) == V{"127.0.0.20"});
    // Not cached before: now a temporary failure.
    auto other = run(io, r.next_hops("dropped.test"));
    CHECK(other.status == Status::kTempFail);
  }

  TEST_CASE("negative answers are cached for the negative TTL") {
    Dnsmasq dns(zone());
    asio::io_context io;
    core::OffsetClock clock;
    auto opts = options(dns.server());
    opts.clock = &clock;
    opts.negative_ttl = 60s;
    Resolver r(io.get_executor(), opts);
    CHECK(run(io, r.mx("nothing.test")).status == Status::kNxDomain);
    CHECK(run(io, r.mx("implicit.test")).status == Status::kNoData);
    dns.stop();
    clock.advance(59s);
    CHECK(run(io, r.mx("nothing.test")).status == Status::kNxDomain);
    CHECK(run(io, r.mx("implicit.test")).status == Status::kNoData);
    clock.advance(2s);
    CHECK(run(io, r.mx("nothing.test")).status == Status::kTempFail);
    CHECK(run(io, r.mx("implicit.test")).status == Status::kTempFail);
  }

  TEST_CASE("cached answers live for their TTL clamped to the configured bounds") {
    Dnsmasq dns(zone());
    asio::io_context io;
    core::OffsetClock clock;
    auto opts = options(dns.server());
    opts.clock = &clock;
    opts.min_ttl = 5s;
    opts.max_ttl = 50s;
    Resolver r(io.get_executor(), opts);
    REQUIRE(run(io, r.addresses("ttl100.test")).status == Status::kOk);  // TTL 100 -> 50
    REQUIRE(run(io, r.addresses("ttl0.test")).status == Status::kOk);    // TTL 0 -> 5
    dns.stop();
    clock.advance(4s);
    CHECK(run(io, r.addresses("ttl0.test")).status == Status::kOk);
    clock.advance(2s);
    CHECK(run(io, r.addresses("ttl0.test")).status == Status::kTempFail);
    clock.advance(43s);  // 49 s
    CHECK(run(io, r.addresses("ttl100.test")).status == Status::kOk);
    clock.advance(2s);  // 51 s
    CHECK(run(io, r.addresses("ttl100.test")).status == Status::kTempFail);
  }

  TEST_CASE("temporary failures are not cached") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    CHECK(run(io, r.mx("example.com")).status == Status::kTempFail);  // REFUSED
    CHECK(run(io, r.mx("example.com")).status == Status::kTempFail);
    // A cache of 0 entries stores nothing at all.
    auto opts = options(dns.server());
    opts.cache_entries = 0;
    Resolver uncached(io.get_executor(), opts);
    REQUIRE(run(io, uncached.mx("order.test")).status == Status::kOk);
    dns.stop();
    CHECK(run(io, uncached.mx("order.test")).status == Status::kTempFail);
  }

  TEST_CASE("concurrent identical lookups share one query") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    int done = 0;
    for (int i = 0; i < 10; ++i) {
      asio::co_spawn(
          io,
          [&r, &done]() -> asio::awaitable<void> {
            auto hops = co_await r.next_hops("order.test");
            if (hops.status == Status::kOk && hops.hops.size() == 3) ++done;
          },
          asio::detached);
    }
    io.run_for(10s);
    CHECK(done == 10);
    dns.stop();  // flushes its log
    CHECK(dns.count("query[MX] order.test ") == 1);
    CHECK(dns.count("query[A] mx10.order.test ") == 1);
    CHECK(dns.count("query[AAAA] mx10.order.test ") == 1);
  }

  TEST_CASE("lookups from many threads resume on their callers' strands") {
    Dnsmasq dns(zone());
    asio::io_context io;
    Resolver r(io.get_executor(), options(dns.server()));
    std::atomic<int> ok{0}, on_strand{0};
    const int kCallers = 40;
    const char* domains[] = {"order.test", "shuffle.test", "dropped.test", "implicit.test"};
    for (int i = 0; i < kCallers; ++i) {
      auto strand = asio::make_strand(io);
      std::string domain = domains[i % 4];
      asio::co_spawn(
          strand,
          [&r, &ok, &on_strand, strand, domain]() -> asio::awaitable<void> {
            auto hops = co_await r.next_hops(domain);
            if (strand.running_in_this_thread()) ++on_strand;
            if (hops.status == Status::kOk && !hops.hops.empty()) ++ok;
          },
          asio::detached);
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run_for(10s); });
    for (auto& t : threads) t.join();
    CHECK(ok == kCallers);
    CHECK(on_strand == kCallers);
  }

  TEST_CASE("destroying the resolver fails the lookups in flight") {
    UdpPort silent;
    asio::io_context io;
    auto opts = options({"127.0.0.1", silent.port()});
    opts.timeout = 5000ms;
    auto r = std::make_unique<Resolver>(io.get_executor(), opts);
    std::optional<NextHops> got;
    asio::co_spawn(
        io,
        [&got, op = r->next_hops("slow.test")]() mutable -> asio::awaitable<void> {
          got = co_await std::move(op);
        },
        asio::detached);
    asio::steady_timer t(io, 100ms);
    t.async_wait([&r](std::error_code) { r.reset(); });
    auto start = Steady::now();
    io.run_for(10s);
    REQUIRE(got.has_value());
    CHECK(got->status == Status::kTempFail);
    CHECK(Steady::now() - start < 1s);
  }

  TEST_CASE("a name server that is not an IP address is refused at start-up") {
    asio::io_context io;
    ResolverOptions opts;
    opts.servers = {{"dns.example", 53}};
    CHECK_THROWS_AS(Resolver(io.get_executor(), opts), std::runtime_error);
    // Empty: the system's resolv.conf, read at start-up without a query.
    CHECK_NOTHROW(Resolver(io.get_executor(), ResolverOptions{}));
  }
}
