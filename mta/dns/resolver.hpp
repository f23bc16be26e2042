// DNS for delivery: c-ares bridged to Asio coroutines, with a TTL cache.
//
// What it answers: MX, A and AAAA lookups, and next_hops(), the ordered list
// of hosts (with their addresses) that delivery tries for a domain: MX
// records sorted by preference with equal preferences shuffled on every call,
// the implicit MX of RFC 5321 5.1 when a domain has no MX, the null MX of
// RFC 7505, and address literals ("[192.0.2.1]") without any lookup.
//
// Outcomes are values, never exceptions: kNxDomain is permanent (bounce),
// kTempFail (SERVFAIL, timeouts, REFUSED, unreachable servers, shutdown) means
// retry later. Names are lowercased and lose a trailing dot before lookup.
//
// Cache: keyed by (type, name); positive answers live for their TTL clamped to
// [min_ttl, max_ttl], NXDOMAIN and NODATA for negative_ttl, temporary failures
// are never cached. LRU-bounded. Concurrent identical lookups share one query.
//
// Threading: every c-ares call runs on one strand owned by the Resolver (a
// c-ares channel is not thread-safe). The public coroutines may be awaited
// from any executor and resume on the caller's executor. A caller's
// cancellation (e.g. racing a lookup against a timer) is not forwarded: the
// lookup finishes within its own bound (timeout x tries, per server).
//
// Lifetime: destroying the Resolver fails the lookups still in flight with
// kTempFail; awaiting coroutines may outlive it. Callers: delivery.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mta/core/clock.hpp"
#include "mta/core/net.hpp"

namespace mta::dns {

struct ResolverOptions {
  // Name servers, IP literal and port. Empty: /etc/resolv.conf (c-ares' own
  // default initialisation).
  std::vector<core::HostPort> servers;
  // Per try and server; c-ares doubles it for each later round over the
  // servers. Default 5 s, like resolv.conf.
  std::chrono::milliseconds timeout{5000};
  // Rounds over the server list before a lookup gives up (kTempFail).
  int tries = 2;
  // LRU bound on cached answers (one per type and name); 0 disables the cache.
  size_t cache_entries = 100000;
  // Positive answers are cached for their TTL clamped to [min_ttl, max_ttl]:
  // the floor stops a TTL of 0 from sending every envelope to the network,
  // the ceiling bounds how long a changed MX goes unnoticed.
  std::chrono::seconds min_ttl{5};
  std::chrono::seconds max_ttl{3600};
  // How long NXDOMAIN and NODATA answers are cached.
  std::chrono::seconds negative_ttl{60};
  // Time for cache expiry; null means the system clock. Tests pass an
  // OffsetClock. Must outlive the Resolver.
  const core::Clock* clock = nullptr;
};

enum class Status {
  kOk,
  kNxDomain,  // the name does not exist: permanent
  kNoData,    // the name exists but has no record of that type
  kTempFail,  // SERVFAIL, timeout, REFUSED, no server reachable: retry later
};
const char* to_string(Status s);

struct MxRecord {
  std::string host;
  uint16_t preference = 0;
  bool operator==(const MxRecord&) const = default;
};

struct MxResult {
  Status status = Status::kTempFail;
  // Sorted by preference; equal preferences in a fresh random order per call.
  std::vector<MxRecord> records;
  bool null_mx = false;  // RFC 7505 "MX 0 .": the domain accepts no mail
  std::string error;     // why, when status is not kOk
};

struct AddrResult {
  Status status = Status::kTempFail;
  std::vector<asio::ip::address> addresses;  // IPv4 first, then IPv6
  std::string error;
};

// One host that delivery may connect to, in the order to try them.
struct NextHop {
  std::string host;
  uint16_t preference = 0;
  std::vector<asio::ip::address> addresses;  // IPv4 first, then IPv6
};

struct NextHops {
  Status status = Status::kTempFail;  // kOk, kNxDomain or kTempFail
  std::vector<NextHop> hops;
  bool null_mx = false;  // kOk with no hops: the domain accepts no mail
  std::string error;
};

class Resolver final {
 public:
  // Throws std::runtime_error when c-ares cannot initialise (bad server
  // address, unreadable resolv.conf): a start-up error.
  Resolver(asio::any_io_executor ex, ResolverOptions opts);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  asio::awaitable<MxResult> mx(std::string domain);
  // A and AAAA, queried together; IPv4 addresses first. An IP literal
  // (with or without brackets) is returned as is.
  asio::awaitable<AddrResult> addresses(std::string host);
  // MX, then the addresses of every MX host. Hosts without addresses are
  // dropped; when none remain the result is kTempFail if any lookup failed
  // temporarily, else kNxDomain. No MX: the domain itself at preference 0.
  asio::awaitable<NextHops> next_hops(std::string domain);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::dns
