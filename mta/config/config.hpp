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
#include "mta/warmup/schedule.hpp"

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
  // Configuration sets this key may send with; empty: any. A restricted key
  // that names no set sends with the first one listed.
  std::vector<std::string> configuration_sets;
  bool admin = false;  // may use the admin API (suppression list, queue, ...)
};

struct Http {
  std::optional<core::HostPort> listen;  // unset: no HTTP API
  std::vector<ApiKey> api_keys;
};

struct Metrics {
  std::optional<core::HostPort> listen;  // unset: no /metrics endpoint
};

// `warmup: {schedule, started}` of one IP: day 1 is `started` in the
// server's time zone.
struct IpWarmup {
  std::string schedule;  // a warmup_schedules name or a built-in ("standard")
  warmup::Date started;
};

struct PoolIp {
  core::IpAddress address;
  std::string ehlo;  // default: the global hostname
  std::optional<IpWarmup> warmup;
};

struct IpPool {
  std::string name;
  std::vector<PoolIp> ips;
  // "defer" or "pool:NAME" when none of its IPs has room; empty: the
  // overflow of the schedule of its first warming IP, else "defer".
  std::string overflow;
};

struct WarmupSchedule {
  warmup::Schedule schedule;       // name, daily_limits, per_provider
  std::string overflow = "defer";  // "defer" | "pool:NAME"
};

enum class Priority { kHigh, kNormal, kBulk };
const char* to_string(Priority p);

// Open and click tracking of a configuration set's HTML mail (issue 8).
struct SetTracking {
  bool opens = false;   // a 1x1 GIF before </body>
  bool clicks = false;  // http(s) links through {base_url}/c/{token}
  bool any() const { return opens || clicks; }
};

// One-click unsubscribe headers (RFC 8058, RFC 2369) on a set's mail.
struct ListUnsubscribe {
  bool enabled = false;
  std::string mailto;  // also offered as <mailto:...>; empty: only the HTTPS link
};

struct ConfigurationSet {
  std::string name;
  std::string ip_pool;
  Priority priority = Priority::kNormal;
  std::vector<std::string> event_destinations;  // names in Config::event_destinations
  SetTracking tracking;
  ListUnsubscribe list_unsubscribe;
  // d= for mail whose From domain has no key of its own; must have a key in
  // Config::dkim. Empty: such mail goes out unsigned.
  std::string dkim_domain;
};

// The event types a destination can ask for (SES's eventType values).
enum class EventType {
  kSend,
  kDelivery,
  kBounce,
  kComplaint,
  kReject,
  kDeliveryDelay,
  kOpen,
  kClick,
  kSubscription  // a recipient unsubscribed (one-click List-Unsubscribe)
};
inline constexpr int kEventTypeCount = 9;
const char* to_string(EventType t);       // config spelling: "delivery_delay"
const char* ses_event_name(EventType t);  // SES eventType: "DeliveryDelay"
std::optional<EventType> event_type_from_ses(std::string_view ses_name);

// Where events are POSTed (mta/webhook).
struct Webhook {
  std::string url;                              // http:// or https:// (certificates verified)
  std::string secret;                           // HMAC-SHA256 key of X-MTA-Signature
  Duration timeout = std::chrono::seconds(10);  // per POST, connecting included
  uint32_t max_in_flight = 8;                   // POSTs at once to this destination
  uint32_t batch = 1;                           // events per POST; >1: a JSON array
  // How long an event is retried before it goes to the dead-letter list.
  Duration retry_window = std::chrono::hours(24);
};

struct EventDestination {
  std::string name;
  Webhook webhook;
  uint32_t events = (1u << kEventTypeCount) - 1;  // bit (1 << EventType); default all
  bool wants(EventType t) const { return (events >> static_cast<int>(t)) & 1u; }
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

// Limits per (sending IP, destination provider). A provider groups
// destinations by the host names of their MX (or route hosts).
struct ProviderShaping {
  std::string name;                      // "gmail", ...; used in metrics and bounce rules
  std::vector<std::string> mx_suffixes;  // lowercase, without a leading dot
  uint32_t max_connections = 10;
  uint32_t max_messages_per_connection = 100;
  uint64_t max_messages_per_hour = 0;  // per (IP, provider); 0 = no ceiling
};

// Adaptive backoff (AIMD) on throttling replies, per (IP, provider).
struct Backoff {
  double floor = 0.1;     // the lowest rate multiplier
  double decrease = 0.5;  // multiplier factor on a throttling reply
  double increase = 0.1;  // added back after each clean window
  Duration window = std::chrono::minutes(10);
  uint32_t min_clean_results = 5;
};

struct Shaping {
  // For destinations of no listed provider (each destination domain is
  // then its own group).
  uint32_t max_connections = 10;
  uint32_t max_messages_per_connection = 100;
  uint64_t max_messages_per_hour = 0;
  Duration idle_timeout = std::chrono::seconds(5);  // keep an idle connection this long
  // Built-in providers (gmail, microsoft, yahoo, ...) merged with the
  // operator's: an entry with a built-in name replaces it.
  std::vector<ProviderShaping> providers;
  Backoff backoff;

  // The provider whose suffix matches `mx_host` (case-insensitive, on a
  // label boundary), or nullptr.
  const ProviderShaping* provider_for(std::string_view mx_host) const;
  const ProviderShaping* find_provider(std::string_view name) const;
};

// The providers shipped by default (shaping.providers adds to or replaces them).
std::vector<ProviderShaping> builtin_providers();

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

// Feedback loops (ARF complaint reports, mta/feedback): mail to these
// addresses is taken from any client, without AUTH, and never relayed.
struct Feedback {
  std::vector<std::string> addresses;  // lowercased; empty: no feedback intake
  // How long a delivered message can still be matched by a complaint (a
  // compact record per message is kept that long). Default 30 days.
  Duration retention = std::chrono::hours(24 * 30);
  bool is_feedback_address(std::string_view address) const;  // case-insensitive
};

// The tracking listener: click redirects, the open pixel and one-click
// unsubscribe (/c/, /o/, /u/).
struct Tracking {
  std::optional<core::HostPort> listen;       // unset: no listener
  std::string base_url;                       // "https://t.example.com", no trailing slash
  std::string secret;                         // HMAC key of the tokens (16+ bytes)
  std::vector<std::string> previous_secrets;  // still accepted: key rotation
  // Machine-traffic rules (prefetch, image proxies, link scanners). Empty:
  // the shipped file; local rules are tried first.
  std::string machine_rules_file;
  std::string local_machine_rules_file;
  bool configured() const { return !base_url.empty() && !secret.empty(); }
};

// A DKIM signing key (issue 9). Several keys per domain sign together
// (RSA + Ed25519, RFC 8463).
struct DkimKey {
  std::string domain;  // d=, lowercase
  std::string selector;
  std::string private_key;               // PEM file (PKCS#1 or PKCS#8), mode 0600
  std::string algorithm = "rsa-sha256";  // | "ed25519-sha256"
  std::vector<std::string> headers;      // empty: the default signed set
};

enum class DkimFailure { kDefer, kSendUnsigned };
// Which code makes the signatures (mta/dkim/signer.hpp): our own relaxed
// canonicalization over OpenSSL (keys parsed once), or libopendkim.
enum class DkimEngine { kNative, kOpenDkim };

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
  std::vector<WarmupSchedule> warmup_schedules;  // the operator's; "standard" is built in
  warmup::TimeZone time_zone;                    // `timezone`, for warm-up days; UTC
  std::vector<ConfigurationSet> configuration_sets;
  std::string default_configuration_set;  // default: the first set
  std::vector<Route> routes;
  Dns dns;
  Retry retry;
  Shaping shaping;
  Delivery delivery;
  Accounting accounting;
  Feedback feedback;
  Bounces bounces;
  std::vector<EventDestination> event_destinations;
  Tracking tracking;
  std::vector<DkimKey> dkim;
  // What happens to a message that should be signed when signing fails:
  // retried later (defer, the default) or sent without a signature.
  DkimFailure dkim_failure = DkimFailure::kDefer;
  DkimEngine dkim_engine = DkimEngine::kNative;

  const ConfigurationSet* find_set(std::string_view name) const;  // case-sensitive
  const EventDestination* find_destination(std::string_view name) const;
  const IpPool* find_pool(std::string_view name) const;
  // The operator's schedule of that name, else a built-in one, else nullptr.
  const warmup::Schedule* find_schedule(std::string_view name) const;
  // The pool's overflow: its own, else its first warming IP's schedule's,
  // else "defer".
  std::string overflow_of(const IpPool& pool) const;
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
