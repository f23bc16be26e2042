// Config: the YAML file turned into plain structs, validated once.
//
// load() parses, fills defaults and checks types, ranges, references (a set
// naming a missing pool, a user naming a missing set) and unknown keys. Every
// error carries the file, line and column of the offending node, printed as
// "FILE:LINE:COL: message". No behaviour lives here: other modules read the
// structs. The reference for every key is config/mta.yaml.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mta/core/net.hpp"

namespace mta::config {

using Duration = std::chrono::milliseconds;

struct Error {
  std::string file;
  int line = 0;  // 1-based; 0 when the error is about the whole file
  int col = 0;   // 1-based
  std::string message;

  // "FILE:LINE:COL: message" (or "FILE: message" when line is 0).
  std::string to_string() const;
};

struct TlsFiles {
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key
};

struct SmtpListener {
  core::HostPort listen;
  std::optional<TlsFiles> starttls;  // STARTTLS offered when set
  bool require_auth = false;         // AUTH required even from relay_networks
};

struct SmtpUser {
  std::string name;
  std::string password;
  std::string configuration_set;  // empty: the default set
};

struct Smtp {
  std::vector<SmtpListener> listeners;     // at least one
  std::vector<core::Cidr> relay_networks;  // default: 127.0.0.0/8 and ::1
  // Clients that may AUTH without STARTTLS (credentials in clear text).
  // Default: loopback only (127.0.0.0/8, ::1).
  std::vector<core::Cidr> plaintext_auth_networks;
  std::vector<SmtpUser> users;
  uint64_t max_message_bytes = 41943040;               // 40 MiB; announced in SIZE
  uint32_t max_recipients = 50;                        // per transaction
  uint32_t max_connections = 1000;                     // in total
  uint32_t max_connections_per_ip = 50;                // per client address
  uint32_t max_command_line = 512;                     // octets incl. CRLF (RFC 5321 4.5.3.1.4)
  uint32_t max_errors = 10;                            // protocol errors before 421 and close
  Duration command_timeout = std::chrono::minutes(5);  // RFC 5321 4.5.3.2.7
  Duration data_timeout = std::chrono::minutes(10);    // whole DATA phase, from 354 to the dot
};

struct ApiKey {
  std::string id;
  std::string secret;
};

struct Http {
  std::optional<core::HostPort> listen;  // unset: no HTTP API
  std::vector<ApiKey> api_keys;
};

struct Metrics {
  std::optional<core::HostPort> listen;  // unset: no /metrics endpoint
};

struct PoolIp {
  core::IpAddress address;
  std::string ehlo;  // default: the global hostname
};

struct IpPool {
  std::string name;
  std::vector<PoolIp> ips;
};

enum class Priority { kHigh, kNormal, kBulk };
const char* to_string(Priority p);

struct ConfigurationSet {
  std::string name;
  std::string ip_pool;
  Priority priority = Priority::kNormal;
};

// How delivery uses STARTTLS: when offered (opportunistic), always
// (required: no STARTTLS, no delivery), or never (none).
enum class TlsPolicy { kOpportunistic, kRequired, kNone };
const char* to_string(TlsPolicy p);

struct RouteHost {
  std::string host;  // IP address or host name
  uint16_t port = 25;
};

// A static next hop instead of MX: for `domain` (exact, lowercase) or "*".
struct Route {
  std::string domain;
  std::vector<RouteHost> hosts;  // tried in order
  TlsPolicy tls = TlsPolicy::kOpportunistic;
};

struct Dns {
  std::vector<core::HostPort> servers;         // empty: /etc/resolv.conf
  Duration timeout = std::chrono::seconds(5);  // per try
  uint32_t attempts = 2;
};

struct Retry {
  // Wait after the Nth temporary failure; the last one repeats.
  std::vector<Duration> intervals = {std::chrono::minutes(1),  std::chrono::minutes(5),
                                     std::chrono::minutes(15), std::chrono::minutes(30),
                                     std::chrono::hours(1),    std::chrono::hours(2),
                                     std::chrono::hours(4)};
  Duration max_age = std::chrono::hours(72);  // then the envelope expires (bounces)
};

// Per destination limits (issue 4 makes them per sending IP and provider).
struct Shaping {
  uint32_t max_connections = 10;
  uint32_t max_messages_per_connection = 100;
  Duration idle_timeout = std::chrono::seconds(5);  // keep an idle connection this long
};

// Deadlines of the SMTP client, one per phase (RFC 5321 4.5.3.2).
struct DeliveryTimeouts {
  Duration connect = std::chrono::seconds(30);
  Duration banner = std::chrono::minutes(5);
  Duration ehlo = std::chrono::minutes(5);
  Duration starttls = std::chrono::minutes(2);
  Duration mail = std::chrono::minutes(5);
  Duration rcpt = std::chrono::minutes(5);
  Duration data = std::chrono::minutes(2);       // the 354
  Duration data_end = std::chrono::minutes(10);  // the reply to the final dot
};

struct Delivery {
  uint32_t max_active = 20000;  // envelopes being delivered at once (memory bound)
  // Jobs waiting for a connection to one destination; beyond this they are
  // postponed a few seconds, so one slow destination cannot take the whole
  // active set. Default: as many as max_active.
  uint32_t max_queued_per_destination = 20000;
  TlsPolicy tls = TlsPolicy::kOpportunistic;  // for MX deliveries (routes set their own)
  DeliveryTimeouts timeouts;
};

struct Accounting {
  std::string path;  // JSON lines, one per final outcome; empty: off
};

struct Bounces {
  // The shipped rules; empty: the packaged file (/usr/share/mta/...) or,
  // in a build tree, config/bounce-rules.yaml.
  std::string rules_file;
  // The operator's own rules, tried before the shipped ones; a rule with a
  // shipped rule's id replaces it. Empty: none.
  std::string local_rules_file;
};

struct Config {
  std::string path;      // the file it came from
  std::string hostname;  // default: gethostname()
  std::string spool_dir;
  std::string log_level = "info";  // trace | debug | info | warn | error
  Smtp smtp;
  Http http;
  Metrics metrics;
  std::vector<IpPool> ip_pools;
  std::vector<ConfigurationSet> configuration_sets;
  std::string default_configuration_set;  // default: the first set
  std::vector<Route> routes;
  Dns dns;
  Retry retry;
  Shaping shaping;
  Delivery delivery;
  Accounting accounting;
  Bounces bounces;

  const ConfigurationSet* find_set(std::string_view name) const;  // case-sensitive
  const IpPool* find_pool(std::string_view name) const;
  const SmtpUser* find_user(std::string_view name) const;
  // The route for a domain: an exact match, else "*", else nullptr (MX).
  const Route* find_route(std::string_view domain) const;
};

// Either a Config or the first error found.
struct LoadResult {
  std::optional<Config> config;
  std::optional<Error> error;
};

LoadResult load_file(const std::string& path);
// `name` stands in for the file name in errors.
LoadResult load_string(const std::string& yaml, const std::string& name);

// "500ms", "30s", "5m", "2h", "3d" → milliseconds; nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);

}  // namespace mta::config
