#include "mta/config/config.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <span>
#include <utility>

#include "mta/core/text.hpp"
#include "mta/dkim/keys.hpp"
#include "mta/warmup/router.hpp"

namespace mta::config {

std::string Error::to_string() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
}

const char* to_string(Priority p) {
  switch (p) {
    case Priority::kHigh:
      return "high";
    case Priority::kNormal:
      return "normal";
    case Priority::kBulk:
      return "bulk";
  }
  return "?";
}

const EventDestination* Config::find_destination(std::string_view name) const {
  for (const auto& d : event_destinations)
    if (d.name == name) return &d;
  return nullptr;
}

const char* to_string(EventType t) {
  switch (t) {
    case EventType::kSend:
      return "send";
    case EventType::kDelivery:
      return "delivery";
    case EventType::kBounce:
      return "bounce";
    case EventType::kComplaint:
      return "complaint";
    case EventType::kReject:
      return "reject";
    case EventType::kDeliveryDelay:
      return "delivery_delay";
    case EventType::kOpen:
      return "open";
    case EventType::kClick:
      return "click";
    case EventType::kSubscription:
      return "subscription";
  }
  return "?";
}

const char* ses_event_name(EventType t) {
  switch (t) {
    case EventType::kSend:
      return "Send";
    case EventType::kDelivery:
      return "Delivery";
    case EventType::kBounce:
      return "Bounce";
    case EventType::kComplaint:
      return "Complaint";
    case EventType::kReject:
      return "Reject";
    case EventType::kDeliveryDelay:
      return "DeliveryDelay";
    case EventType::kOpen:
      return "Open";
    case EventType::kClick:
      return "Click";
    case EventType::kSubscription:
      return "Subscription";
  }
  return "?";
}

std::optional<EventType> event_type_from_ses(std::string_view ses_name) {
  for (int i = 0; i < kEventTypeCount; ++i)
    if (ses_name == ses_event_name(static_cast<EventType>(i))) return static_cast<EventType>(i);
  return std::nullopt;
}

bool Feedback::is_feedback_address(std::string_view address) const {
  for (const auto& a : addresses) {
    bool same = a.size() == address.size();
    for (size_t i = 0; same && i < a.size(); ++i) {
      char c = address[i];
      same = a[i] == (c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    }
    if (same) return true;
  }
  return false;
}

const ConfigurationSet* Config::find_set(std::string_view name) const {
  for (const auto& s : configuration_sets)
    if (s.name == name) return &s;
  return nullptr;
}

const IpPool* Config::find_pool(std::string_view name) const {
  for (const auto& p : ip_pools)
    if (p.name == name) return &p;
  return nullptr;
}

const warmup::Schedule* Config::find_schedule(std::string_view name) const {
  for (const auto& w : warmup_schedules)
    if (w.schedule.name == name) return &w.schedule;
  return warmup::builtin_schedule(name);
}

std::string Config::overflow_of(const IpPool& pool) const {
  if (!pool.overflow.empty()) return pool.overflow;
  for (const auto& ip : pool.ips) {
    if (!ip.warmup) continue;
    for (const auto& w : warmup_schedules)
      if (w.schedule.name == ip.warmup->schedule) return w.overflow;
    return "defer";
  }
  return "defer";
}

namespace {
bool iends_with_label(std::string_view host, std::string_view suffix) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() < suffix.size()) return false;
  std::string_view tail = host.substr(host.size() - suffix.size());
  for (size_t i = 0; i < tail.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(tail[i])) != suffix[i]) return false;
  return host.size() == suffix.size() || host[host.size() - suffix.size() - 1] == '.';
}
}  // namespace

const ProviderShaping* Shaping::provider_for(std::string_view mx_host) const {
  for (const auto& p : providers)
    for (const auto& s : p.mx_suffixes)
      if (iends_with_label(mx_host, s)) return &p;
  return nullptr;
}

const ProviderShaping* Shaping::find_provider(std::string_view name) const {
  for (const auto& p : providers)
    if (p.name == name) return &p;
  return nullptr;
}

// Starting points, not promises: the MX suffixes are the providers' own
// (the same table bounce rules use, bounce::provider_from_mx), the limits
// are conservative values in line with the providers' postmaster guidance
// (few parallel connections, a moderate number of messages per
// connection). Warm-up and adaptive backoff do the real pacing.
std::vector<ProviderShaping> builtin_providers() {
  return {
      {"gmail", {"google.com", "googlemail.com"}, 20, 100, 0},
      {"microsoft", {"outlook.com", "hotmail.com"}, 10, 50, 0},
      {"yahoo", {"yahoodns.net", "yahoo.com", "aol.com"}, 10, 20, 0},
      {"icloud", {"icloud.com", "me.com"}, 10, 50, 0},
      {"comcast", {"comcast.net"}, 5, 50, 0},
      {"gmx",
       {"gmx.net", "gmx.com", "gmx.de", "web.de", "kundenserver.de", "ionos.com", "mail.com"},
       10,
       50,
       0},
      {"orange", {"orange.fr", "wanadoo.fr"}, 5, 50, 0},
      {"yandex", {"yandex.net", "yandex.ru"}, 10, 50, 0},
      {"mailru", {"mail.ru"}, 10, 50, 0},
  };
}

const Route* Config::find_route(std::string_view domain) const {
  const Route* wildcard = nullptr;
  for (const auto& r : routes) {
    if (r.domain == domain) return &r;
    if (r.domain == "*") wildcard = &r;
  }
  return wildcard;
}

const char* to_string(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::kOpportunistic:
      return "opportunistic";
    case TlsPolicy::kRequired:
      return "required";
    case TlsPolicy::kNone:
      return "none";
  }
  return "?";
}

const SmtpUser* Config::find_user(std::string_view name) const {
  for (const auto& u : smtp.users)
    if (u.name == name) return &u;
  return nullptr;
}

std::optional<Duration> parse_duration(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  uint64_t n = 0;
  if (std::from_chars(text.data(), text.data() + digits, n).ec != std::errc())
    return std::nullopt;  // too many digits for 64 bits
  std::string_view unit = text.substr(digits);
  uint64_t ms_per_unit = 0;
  if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "s")
    ms_per_unit = 1000;
  else if (unit == "m")
    ms_per_unit = 60 * 1000;
  else if (unit == "h")
    ms_per_unit = 60 * 60 * 1000;
  else if (unit == "d")
    ms_per_unit = 24 * 60 * 60 * 1000;
  else
    return std::nullopt;
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<Duration::rep>::max());
  if (n > kMax / ms_per_unit) return std::nullopt;
  return Duration(static_cast<Duration::rep>(n * ms_per_unit));
}

namespace {

// The parser stops at the first error by throwing this; load_string() turns
// it into an Error. Nothing else sees it.
struct Failure {
  YAML::Mark mark;
  std::string message;
};

[[noreturn]] void fail_at(const YAML::Mark& mark, std::string message) {
  throw Failure{mark, std::move(message)};
}

// A value's text for an error message: quoted, escaped and cut short.
std::string quote(std::string_view s) {
  constexpr size_t kMaxShown = 60;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "\"";
}

// What was found instead of what was expected: `"abc"`, `a list`, ...
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string format_duration(Duration d) {
  struct Unit {
    Duration::rep ms;
    const char* suffix;
  } units[] = {{24 * 60 * 60 * 1000, "d"}, {60 * 60 * 1000, "h"}, {60 * 1000, "m"}, {1000, "s"}};
  for (const auto& u : units)
    if (d.count() != 0 && d.count() % u.ms == 0) return std::to_string(d.count() / u.ms) + u.suffix;
  return std::to_string(d.count()) + "ms";
}

// One value in the document: the node, where to point at it, and its path
// for messages ("smtp.listeners[0].listen").
struct Value {
  YAML::Node node;
  YAML::Mark mark;  // the value's position; its key's when the value is empty
  std::string path;

  [[noreturn]] void fail(const std::string& message) const { fail_at(mark, path + ": " + message); }
  [[noreturn]] void expected(const std::string& what) const {
    fail("expected " + what + ", got " + describe(node));
  }
};

// "in smtp.listeners[0]", or "at the top level" for the root map.
std::string where(const std::string& path) {
  return path.empty() ? "at the top level" : "in " + path;
}

// The entries of a map, checked on construction: it is a map, every key is
// a plain string that is allowed, and none appears twice.
class Map final {
 public:
  Map(Value self, std::initializer_list<const char*> allowed) : self_(std::move(self)) {
    if (!self_.node.IsMap()) {
      if (self_.path.empty())
        fail_at(self_.mark, "expected a map of settings, got " + describe(self_.node));
      self_.expected("a map");
    }
    for (auto it = self_.node.begin(); it != self_.node.end(); ++it) {
      // Copies: the iterator hands out a temporary pair of node handles.
      YAML::Node key = it->first;
      YAML::Node value = it->second;
      if (!key.IsScalar()) fail_at(key.Mark(), "expected a key name " + where(self_.path));
      const std::string& name = key.Scalar();
      bool known = false;
      for (const char* a : allowed) known = known || name == a;
      if (!known) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail_at(key.Mark(), "unknown key " + quote(name) + " " + where(self_.path) +
                                " (expected one of: " + list + ")");
      }
      for (const auto& [seen, v] : entries_)
        if (seen == name)
          fail_at(key.Mark(), "duplicate key " + quote(name) + " " + where(self_.path));
      YAML::Mark mark = value.IsNull() ? key.Mark() : value.Mark();
      std::string path = self_.path.empty() ? name : self_.path + "." + name;
      entries_.emplace_back(name, Value{value, mark, std::move(path)});
    }
  }

  std::optional<Value> get(std::string_view key) const {
    for (const auto& [name, v] : entries_)
      if (name == key) return v;
    return std::nullopt;
  }

  // Points at the map itself when the key is missing.
  Value required(std::string_view key) const {
    if (auto v = get(key)) return *v;
    fail_at(self_.mark, "missing required key " + quote(key) + " " + where(self_.path));
  }

 private:
  Value self_;
  std::vector<std::pair<std::string, Value>> entries_;
};

std::vector<Value> list(const Value& v) {
  if (!v.node.IsSequence()) v.expected("a list");
  std::vector<Value> items;
  for (YAML::Node item : v.node) {
    YAML::Mark mark = item.IsNull() ? v.mark : item.Mark();
    items.push_back(Value{item, mark, v.path + "[" + std::to_string(items.size()) + "]"});
  }
  return items;
}

std::vector<Value> non_empty_list(const Value& v, const char* what) {
  auto items = list(v);
  if (items.empty()) v.fail(std::string("must list at least one ") + what);
  return items;
}

std::string text(const Value& v) {
  if (!v.node.IsScalar()) v.expected("a string");
  if (v.node.Scalar().empty()) v.fail("must not be empty");
  return v.node.Scalar();
}

// A name sent on the wire (EHLO): no spaces or control characters.
std::string host_name(const Value& v) {
  std::string s = text(v);
  for (unsigned char c : s)
    if (c <= ' ' || c == 0x7f) v.expected("a host name without spaces");
  return s;
}

uint64_t integer(const Value& v, uint64_t min, uint64_t max) {
  std::string what = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!v.node.IsScalar()) v.expected(what);
  const std::string& s = v.node.Scalar();
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  // from_chars takes no sign, so "-1" fails here; "12abc" and "1.5" leave a tail.
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || n < min || n > max)
    v.expected(what);
  return n;
}

// Only true/false/yes/no: yaml-cpp would also take y, on, off..., which are
// easy to write by accident.
bool boolean(const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "yes") return true;
    if (s == "false" || s == "no") return false;
  }
  v.expected("true or false (or yes/no)");
}

Duration duration(const Value& v, Duration min, Duration max) {
  std::string what = "a duration from " + format_duration(min) + " to " + format_duration(max) +
                     " like \"30s\" or \"5m\"";
  if (!v.node.IsScalar()) v.expected(what);
  const std::string& s = v.node.Scalar();
  auto d = parse_duration(s);
  if (!d && !s.empty() && s.find_first_not_of("0123456789") == std::string::npos)
    v.fail("expected " + what + ", got " + quote(s) + " (the unit is required: ms, s, m, h or d)");
  if (!d || *d < min || *d > max) v.expected(what);
  return *d;
}

// One of a fixed set of words; returns its index in `choices`.
size_t choice(const Value& v, std::span<const char* const> choices) {
  if (v.node.IsScalar())
    for (size_t i = 0; i < choices.size(); ++i)
      if (v.node.Scalar() == choices[i]) return i;
  std::string all;
  for (size_t i = 0; i < choices.size(); ++i)
    all += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(choices[i]);
  v.expected(all);
}

core::IpAddress ip_address(const Value& v) {
  if (v.node.IsScalar())
    if (auto ip = core::IpAddress::parse(v.node.Scalar())) return *ip;
  v.expected("an IP address like \"192.0.2.10\" or \"2001:db8::10\"");
}

core::HostPort host_port(const Value& v) {
  if (v.node.IsScalar())
    if (auto hp = core::HostPort::parse(v.node.Scalar())) {
      if (hp->port == 0) v.fail("the port must be from 1 to 65535, got " + quote(v.node.Scalar()));
      return *hp;
    }
  v.expected("IP:port like \"127.0.0.1:587\" or \"[::1]:587\" (the host must be an IP address)");
}

std::vector<core::Cidr> cidrs(const Value& v) {
  std::vector<core::Cidr> out;
  for (const auto& item : list(v)) {
    std::optional<core::Cidr> c;
    if (item.node.IsScalar()) c = core::Cidr::parse(item.node.Scalar());
    if (!c) item.expected("a network like \"10.0.0.0/8\" or an IP address");
    out.push_back(*c);
  }
  return out;
}

// A file the daemon will read later: fail now, at the line that names it,
// rather than at the first STARTTLS.
std::string readable_file(const Value& v) {
  std::string path = text(v);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  int err = errno;
  if (f) {
    char c;
    if (std::fread(&c, 1, 1, f) == 0 && std::ferror(f))
      err = errno;  // e.g. a directory
    else
      err = 0;
    std::fclose(f);
  }
  if (err != 0) v.fail("cannot read " + path + ": " + std::strerror(err));
  return path;
}

std::string local_host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

std::vector<core::Cidr> loopback() {
  return {*core::Cidr::parse("127.0.0.0/8"), *core::Cidr::parse("::1/128")};
}

// Fills a Config section by section. Pools come before sets and sets before
// SMTP users, so each reference is checked where it is written.
class Parser final {
 public:
  explicit Parser(Config& config) : c_(config) {}

  void root(const Value& v) {
    Map m(v, {"hostname",
              "spool_dir",
              "log_level",
              "smtp",
              "http",
              "metrics",
              "ip_pools",
              "configuration_sets",
              "default_configuration_set",
              "routes",
              "dns",
              "retry",
              "shaping",
              "delivery",
              "accounting",
              "bounces",
              "warmup_schedules",
              "timezone",
              "event_destinations",
              "feedback",
              "tracking",
              "dkim",
              "dkim_failure",
              "dkim_engine"});
    auto hostname = m.get("hostname");
    c_.hostname = hostname ? host_name(*hostname) : local_host_name();
    c_.spool_dir = text(m.required("spool_dir"));
    if (auto level = m.get("log_level")) {
      static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
      c_.log_level = kLevels[choice(*level, kLevels)];
    }
    Value smtp_section = m.required("smtp");
    if (auto tz = m.get("timezone")) {
      auto z = warmup::TimeZone::parse(text(*tz));
      if (!z) tz->fail(z.error().message);
      c_.time_zone = *z;
    }
    if (auto w = m.get("warmup_schedules"))
      for (const auto& item : list(*w)) schedule(item);
    auto pools = non_empty_list(m.required("ip_pools"), "pool");
    for (const auto& p : pools) pool(p);
    // "pool:NAME" may name a pool defined later: checked once all are read.
    for (const auto& [v, target, self] : overflow_refs_) {
      if (!c_.find_pool(target)) v.fail("no ip_pool named " + quote(target));
      if (target == self) v.fail("a pool cannot overflow into itself");
    }
    if (auto d = m.get("dkim"))
      for (const auto& item : list(*d)) dkim_key(item);
    if (auto f = m.get("dkim_failure")) {
      static constexpr const char* kNames[] = {"defer", "send_unsigned"};
      static constexpr DkimFailure kValues[] = {DkimFailure::kDefer, DkimFailure::kSendUnsigned};
      c_.dkim_failure = kValues[choice(*f, kNames)];
    }
    if (auto e = m.get("dkim_engine")) {
      static constexpr const char* kNames[] = {"native", "opendkim"};
      static constexpr DkimEngine kValues[] = {DkimEngine::kNative, DkimEngine::kOpenDkim};
      c_.dkim_engine = kValues[choice(*e, kNames)];
    }
    // Destinations before sets, so each set's reference is checked where it
    // is written.
    if (auto d = m.get("event_destinations"))
      for (const auto& item : list(*d)) event_destination(item);
    for (const auto& s : non_empty_list(m.required("configuration_sets"), "configuration set"))
      set(s);
    if (auto d = m.get("default_configuration_set")) {
      c_.default_configuration_set = text(*d);
      if (!c_.find_set(c_.default_configuration_set))
        d->fail("no configuration set named " + quote(c_.default_configuration_set));
    } else {
      c_.default_configuration_set = c_.configuration_sets.front().name;
    }
    smtp(smtp_section);
    if (auto h = m.get("http")) http(*h);
    if (auto mm = m.get("metrics")) metrics(*mm);
    if (auto r = m.get("routes"))
      for (const auto& item : list(*r)) route(item);
    if (auto d = m.get("dns")) dns(*d);
    if (auto r = m.get("retry")) retry(*r);
    if (auto sh = m.get("shaping")) shaping(*sh);
    if (auto d = m.get("delivery")) delivery(*d);
    if (auto b = m.get("bounces")) {
      Map bm(*b, {"rules_file", "local_rules_file"});
      if (auto f = bm.get("rules_file")) c_.bounces.rules_file = readable_file(*f);
      if (auto f = bm.get("local_rules_file")) c_.bounces.local_rules_file = readable_file(*f);
    }
    if (auto a = m.get("accounting")) {
      Map am(*a, {"path"});
      if (auto p = am.get("path")) c_.accounting.path = text(*p);
    }
    if (auto f = m.get("feedback")) feedback(*f);
    if (auto t = m.get("tracking")) tracking(*t);
    // A set that tracks or offers one-click unsubscribe needs the listener's
    // base URL and secret to make its links.
    for (const auto& [set_value, what] : needs_tracking_)
      if (!c_.tracking.configured())
        set_value.fail(what + " needs the top-level tracking section (base_url and secret)");
  }

 private:
  void tracking(const Value& v) {
    Map m(v, {"listen", "base_url", "secret", "previous_secrets", "machine_rules_file",
              "local_machine_rules_file"});
    Tracking& t = c_.tracking;
    if (auto l = m.get("listen")) t.listen = listen_address(*l);
    Value base = m.required("base_url");
    t.base_url = text(base);
    webhook_url(base, t.base_url);
    if (t.base_url.find_first_of("?#") != std::string::npos)
      base.expected("a base URL without a query or fragment");
    while (!t.base_url.empty() && t.base_url.back() == '/') t.base_url.pop_back();
    auto secret = [](const Value& sv) {
      std::string k = text(sv);
      if (k.size() < 16) sv.fail("must be at least 16 characters (it signs every tracking link)");
      return k;
    };
    t.secret = secret(m.required("secret"));
    if (auto p = m.get("previous_secrets"))
      for (const auto& item : list(*p)) t.previous_secrets.push_back(secret(item));
    if (auto f = m.get("machine_rules_file")) t.machine_rules_file = readable_file(*f);
    if (auto f = m.get("local_machine_rules_file")) t.local_machine_rules_file = readable_file(*f);
  }

  void dkim_key(const Value& v) {
    Map m(v, {"domain", "selector", "private_key", "algorithm", "headers"});
    DkimKey k;
    Value domain = m.required("domain");
    k.domain = core::ascii_lower(host_name(domain));
    while (!k.domain.empty() && k.domain.back() == '.') k.domain.pop_back();
    Value selector = m.required("selector");
    k.selector = host_name(selector);
    if (k.selector.find_first_of(";=\"") != std::string::npos)
      selector.expected("a selector of letters, digits, '-', '_' and '.'");
    auto alg = dkim::Algorithm::kRsaSha256;
    if (auto a = m.get("algorithm")) {
      static constexpr const char* kNames[] = {"rsa-sha256", "ed25519-sha256"};
      static constexpr dkim::Algorithm kValues[] = {dkim::Algorithm::kRsaSha256,
                                                    dkim::Algorithm::kEd25519Sha256};
      alg = kValues[choice(*a, kNames)];
    }
    k.algorithm = dkim::to_string(alg);
    for (const auto& o : c_.dkim)
      if (o.domain == k.domain && o.selector == k.selector)
        selector.fail("a key for selector " + quote(k.selector) + " of " + quote(k.domain) +
                      " is already defined");
    Value key = m.required("private_key");
    k.private_key = text(key);
    if (auto why = dkim::check_key_file(k.private_key, alg)) key.fail(*why);
    if (auto h = m.get("headers"))
      for (const auto& item : non_empty_list(*h, "header field name")) {
        std::string name = text(item);
        for (unsigned char ch : name)
          if (ch <= ' ' || ch >= 0x7f || ch == ':') item.expected("a header field name");
        k.headers.push_back(std::move(name));
      }
    c_.dkim.push_back(std::move(k));
  }

  bool has_dkim_domain(std::string_view d) const {
    for (const auto& k : c_.dkim)
      if (k.domain == d) return true;
    return false;
  }

  void feedback(const Value& v) {
    Map m(v, {"addresses", "retention"});
    if (auto a = m.get("addresses")) {
      for (const auto& item : list(*a)) {
        std::string address = core::ascii_lower(text(item));
        size_t at = address.find('@');
        bool ok = at != std::string::npos && at > 0 && at + 1 < address.size() &&
                  address.find('@', at + 1) == std::string::npos;
        for (unsigned char ch : address) ok = ok && ch > ' ' && ch < 0x7f && ch != '<' && ch != '>';
        if (!ok) item.expected("an email address like \"fbl@mta.example.com\"");
        if (c_.feedback.is_feedback_address(address))
          item.fail(quote(address) + " is listed twice");
        c_.feedback.addresses.push_back(std::move(address));
      }
    }
    if (auto r = m.get("retention"))
      c_.feedback.retention = duration(*r, std::chrono::hours(1), std::chrono::hours(24 * 366));
  }

  void schedule(const Value& v) {
    Map m(v, {"name", "daily_limits", "overflow", "per_provider"});
    WarmupSchedule w;
    Value name = m.required("name");
    w.schedule.name = text(name);
    for (const auto& o : c_.warmup_schedules)
      if (o.schedule.name == w.schedule.name)
        name.fail("a warm-up schedule named " + quote(w.schedule.name) + " is already defined");
    Value limits = m.required("daily_limits");
    for (const auto& item : non_empty_list(limits, "daily limit"))
      w.schedule.daily_limits.push_back(integer(item, 1, 100000000));
    if (auto st = w.schedule.validate(); !st.ok()) limits.fail(st.error().message);
    if (auto pp = m.get("per_provider")) w.schedule.per_provider = boolean(*pp);
    if (auto o = m.get("overflow")) w.overflow = overflow(*o, "");
    c_.warmup_schedules.push_back(std::move(w));
  }

  // "defer" or "pool:NAME" of a schedule or of the pool `self`; the pool
  // reference is checked once every pool is read.
  std::string overflow(const Value& v, const std::string& self) {
    auto parsed = warmup::Overflow::parse(v.node.IsScalar() ? v.node.Scalar() : "");
    if (!parsed) v.fail(parsed.error().message);
    if (parsed->kind == warmup::Overflow::Kind::kPool)
      overflow_refs_.push_back({v, parsed->pool, self});
    return parsed->to_string();
  }

  void pool(const Value& v) {
    Map m(v, {"name", "ips", "overflow"});
    IpPool p;
    Value name = m.required("name");
    p.name = text(name);
    if (c_.find_pool(p.name)) name.fail("a pool named " + quote(p.name) + " is already defined");
    for (const auto& item : non_empty_list(m.required("ips"), "IP address")) {
      Map im(item, {"address", "ehlo", "warmup"});
      Value address = im.required("address");
      PoolIp ip;
      ip.address = ip_address(address);
      for (const auto& other : c_.ip_pools)
        for (const auto& o : other.ips)
          if (o.address.unmapped() == ip.address.unmapped())
            address.fail(ip.address.to_string() + " is already in pool " + quote(other.name));
      for (const auto& o : p.ips)
        if (o.address.unmapped() == ip.address.unmapped())
          address.fail(ip.address.to_string() + " is listed twice in this pool");
      auto ehlo = im.get("ehlo");
      ip.ehlo = ehlo ? host_name(*ehlo) : c_.hostname;
      if (auto w = im.get("warmup")) {
        Map wm(*w, {"schedule", "started"});
        IpWarmup iw;
        Value sched = wm.required("schedule");
        iw.schedule = text(sched);
        if (!c_.find_schedule(iw.schedule))
          sched.fail("no warm-up schedule named " + quote(iw.schedule) +
                     " (define it in warmup_schedules; built in: standard)");
        Value started = wm.required("started");
        // yaml-cpp keeps an unquoted 2026-11-20 as the text it was.
        auto d = warmup::Date::parse(started.node.IsScalar() ? started.node.Scalar() : "");
        if (!d) started.expected("a date like \"2026-11-20\" (YYYY-MM-DD)");
        iw.started = *d;
        ip.warmup = std::move(iw);
      }
      p.ips.push_back(std::move(ip));
    }
    if (auto o = m.get("overflow")) p.overflow = overflow(*o, p.name);
    c_.ip_pools.push_back(std::move(p));
  }

  void set(const Value& v) {
    Map m(v, {"name", "ip_pool", "priority", "event_destinations", "tracking", "list_unsubscribe",
              "dkim_domain"});
    ConfigurationSet s;
    Value name = m.required("name");
    s.name = text(name);
    if (c_.find_set(s.name))
      name.fail("a configuration set named " + quote(s.name) + " is already defined");
    Value pool = m.required("ip_pool");
    s.ip_pool = text(pool);
    if (!c_.find_pool(s.ip_pool)) pool.fail("no ip_pool named " + quote(s.ip_pool));
    if (auto p = m.get("priority")) {
      static constexpr const char* kNames[] = {"high", "normal", "bulk"};
      static constexpr Priority kValues[] = {Priority::kHigh, Priority::kNormal, Priority::kBulk};
      s.priority = kValues[choice(*p, kNames)];
    }
    if (auto d = m.get("event_destinations"))
      for (const auto& item : list(*d)) {
        std::string n = text(item);
        if (!c_.find_destination(n)) item.fail("no event destination named " + quote(n));
        for (const auto& other : s.event_destinations)
          if (other == n) item.fail(quote(n) + " is listed twice");
        s.event_destinations.push_back(std::move(n));
      }
    if (auto t = m.get("tracking")) {
      Map tm(*t, {"opens", "clicks"});
      if (auto o = tm.get("opens")) s.tracking.opens = boolean(*o);
      if (auto c = tm.get("clicks")) s.tracking.clicks = boolean(*c);
      if (s.tracking.any()) needs_tracking_.emplace_back(*t, "tracking");
    }
    if (auto l = m.get("list_unsubscribe")) {
      Map lm(*l, {"enabled", "mailto"});
      if (auto e = lm.get("enabled")) s.list_unsubscribe.enabled = boolean(*e);
      if (auto mt = lm.get("mailto")) {
        std::string a = text(*mt);
        if (a.rfind("mailto:", 0) == 0) a.erase(0, 7);
        size_t at = a.find('@');
        bool ok = at != std::string::npos && at > 0 && at + 1 < a.size();
        for (unsigned char ch : a) ok = ok && ch > ' ' && ch < 0x7f && ch != '<' && ch != '>';
        if (!ok) mt->expected("an email address like \"unsubscribe@example.com\"");
        s.list_unsubscribe.mailto = std::move(a);
      }
      if (s.list_unsubscribe.enabled) needs_tracking_.emplace_back(*l, "list_unsubscribe");
    }
    if (auto d = m.get("dkim_domain")) {
      s.dkim_domain = core::ascii_lower(text(*d));
      if (!has_dkim_domain(s.dkim_domain))
        d->fail("no dkim key for domain " + quote(s.dkim_domain));
    }
    c_.configuration_sets.push_back(std::move(s));
  }

  void event_destination(const Value& v) {
    Map m(v, {"name", "webhook", "events"});
    EventDestination d;
    Value name = m.required("name");
    d.name = text(name);
    // The name is a metrics label and part of spool keys: keep it plain.
    if (d.name.size() > 64 ||
        d.name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            std::string::npos)
      name.expected("a name of up to 64 letters, digits, '_', '.' or '-'");
    if (c_.find_destination(d.name))
      name.fail("an event destination named " + quote(d.name) + " is already defined");
    Map wm(m.required("webhook"),
           {"url", "secret", "timeout", "max_in_flight", "batch", "retry_window"});
    Value url = wm.required("url");
    d.webhook.url = text(url);
    webhook_url(url, d.webhook.url);
    d.webhook.secret = text(wm.required("secret"));
    using std::chrono::milliseconds, std::chrono::minutes, std::chrono::hours, std::chrono::seconds;
    if (auto t = wm.get("timeout"))
      d.webhook.timeout = duration(*t, milliseconds(100), minutes(10));
    set_u32(wm, "max_in_flight", 1, 1000, d.webhook.max_in_flight);
    set_u32(wm, "batch", 1, 1000, d.webhook.batch);
    if (auto r = wm.get("retry_window"))
      d.webhook.retry_window = duration(*r, seconds(1), hours(24 * 30));
    if (auto e = m.get("events")) {
      d.events = 0;
      static constexpr const char* kNames[] = {"send",      "delivery", "bounce",
                                               "complaint", "reject",   "delivery_delay",
                                               "open",      "click",    "subscription"};
      static_assert(std::size(kNames) == kEventTypeCount);
      for (const auto& item : non_empty_list(*e, "event type")) {
        uint32_t bit = 1u << choice(item, kNames);
        if (d.events & bit) item.fail(describe(item.node) + " is listed twice");
        d.events |= bit;
      }
    }
    c_.event_destinations.push_back(std::move(d));
  }

  // http:// or https:// with a host; no spaces or control characters (it
  // goes to libcurl as is).
  static void webhook_url(const Value& v, const std::string& url) {
    std::string lower;
    for (char ch : url) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t rest = 0;
    if (lower.rfind("https://", 0) == 0)
      rest = 8;
    else if (lower.rfind("http://", 0) == 0)
      rest = 7;
    else
      v.expected("an http:// or https:// URL");
    for (unsigned char ch : url)
      if (ch <= ' ' || ch == 0x7f) v.expected("a URL without spaces or control characters");
    size_t host_end = url.find_first_of("/?#", rest);
    std::string authority =
        url.substr(rest, host_end == std::string::npos ? std::string::npos : host_end - rest);
    if (authority.empty() || authority.front() == ':' || authority.front() == '@')
      v.expected("an http:// or https:// URL with a host");
  }

  void smtp(const Value& v) {
    Map m(v, {"listeners", "relay_networks", "plaintext_auth_networks", "users",
              "max_message_bytes", "max_recipients", "max_connections", "max_connections_per_ip",
              "max_command_line", "max_errors", "command_timeout", "data_timeout"});
    Smtp& s = c_.smtp;
    for (const auto& item : non_empty_list(m.required("listeners"), "listener"))
      s.listeners.push_back(listener(item));
    auto relay = m.get("relay_networks");
    s.relay_networks = relay ? cidrs(*relay) : loopback();
    auto plaintext = m.get("plaintext_auth_networks");
    s.plaintext_auth_networks = plaintext ? cidrs(*plaintext) : loopback();
    if (auto users = m.get("users"))
      for (const auto& item : list(*users)) s.users.push_back(user(item));
    if (auto n = m.get("max_message_bytes")) s.max_message_bytes = integer(*n, 1024, 2147483648);
    set_u32(m, "max_recipients", 1, 100000, s.max_recipients);
    set_u32(m, "max_connections", 1, 1000000, s.max_connections);
    set_u32(m, "max_connections_per_ip", 1, 1000000, s.max_connections_per_ip);
    set_u32(m, "max_command_line", 512, 65536, s.max_command_line);
    set_u32(m, "max_errors", 1, 1000, s.max_errors);
    using std::chrono::hours, std::chrono::seconds;
    if (auto d = m.get("command_timeout")) s.command_timeout = duration(*d, seconds(1), hours(1));
    if (auto d = m.get("data_timeout")) s.data_timeout = duration(*d, seconds(1), hours(1));
  }

  static void set_u32(const Map& m, const char* key, uint32_t min, uint32_t max, uint32_t& out) {
    if (auto v = m.get(key)) out = static_cast<uint32_t>(integer(*v, min, max));
  }

  SmtpListener listener(const Value& v) {
    Map m(v, {"listen", "starttls", "require_auth"});
    SmtpListener l;
    l.listen = listen_address(m.required("listen"));
    if (auto tls = m.get("starttls")) {
      Map tm(*tls, {"cert", "key"});
      Value cert = tm.required("cert");
      Value key = tm.required("key");
      l.starttls = TlsFiles{readable_file(cert), readable_file(key)};
    }
    if (auto r = m.get("require_auth")) l.require_auth = boolean(*r);
    return l;
  }

  SmtpUser user(const Value& v) {
    Map m(v, {"name", "password", "configuration_set"});
    SmtpUser u;
    Value name = m.required("name");
    u.name = text(name);
    if (c_.find_user(u.name)) name.fail("a user named " + quote(u.name) + " is already defined");
    u.password = text(m.required("password"));
    if (auto set = m.get("configuration_set")) {
      u.configuration_set = text(*set);
      if (!c_.find_set(u.configuration_set))
        set->fail("no configuration set named " + quote(u.configuration_set));
    }
    return u;
  }

  void http(const Value& v) {
    Map m(v, {"listen", "api_keys"});
    if (auto l = m.get("listen")) c_.http.listen = listen_address(*l);
    if (auto keys = m.get("api_keys"))
      for (const auto& item : list(*keys)) {
        Map km(item, {"id", "secret", "configuration_sets", "admin"});
        Value id = km.required("id");
        ApiKey k{text(id), text(km.required("secret")), {}, false};
        for (const auto& other : c_.http.api_keys)
          if (other.id == k.id)
            id.fail("an API key with id " + quote(k.id) + " is already defined");
        if (auto sets = km.get("configuration_sets"))
          for (const auto& s : non_empty_list(*sets, "configuration set")) {
            std::string name = text(s);
            if (!c_.find_set(name)) s.fail("no configuration set named " + quote(name));
            k.configuration_sets.push_back(std::move(name));
          }
        if (auto a = km.get("admin")) k.admin = boolean(*a);
        c_.http.api_keys.push_back(std::move(k));
      }
  }

  static TlsPolicy tls_policy(const Value& v) {
    static constexpr const char* kNames[] = {"opportunistic", "required", "none"};
    static constexpr TlsPolicy kValues[] = {TlsPolicy::kOpportunistic, TlsPolicy::kRequired,
                                            TlsPolicy::kNone};
    return kValues[choice(v, kNames)];
  }

  void route(const Value& v) {
    Map m(v, {"domain", "hosts", "tls"});
    Route r;
    Value domain = m.required("domain");
    r.domain = core::ascii_lower(text(domain));
    for (const auto& other : c_.routes)
      if (other.domain == r.domain)
        domain.fail("a route for " + quote(r.domain) + " is already defined");
    for (const auto& item : non_empty_list(m.required("hosts"), "host")) {
      // "host", "host:port", "[v6]:port", "192.0.2.1:2525"
      std::string t = text(item);
      RouteHost h;
      if (auto hp = core::HostPort::parse(t)) {
        h.host = hp->host;
        h.port = hp->port;
      } else if (auto colon = t.rfind(':');
                 colon != std::string::npos && t.find(':') == colon && t.front() != '[') {
        h.host = t.substr(0, colon);
        auto port = t.substr(colon + 1);
        unsigned n = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
        if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || n == 0 ||
            n > 65535)
          item.expected("host or host:port with a port from 1 to 65535");
        h.port = static_cast<uint16_t>(n);
      } else {
        h.host = t;
      }
      if (h.host.empty()) item.expected("host or host:port");
      if (h.host.find_first_of(" \t[]") != std::string::npos) item.expected("host or host:port");
      r.hosts.push_back(std::move(h));
    }
    if (auto t = m.get("tls")) r.tls = tls_policy(*t);
    c_.routes.push_back(std::move(r));
  }

  void dns(const Value& v) {
    Map m(v, {"servers", "timeout", "attempts"});
    if (auto s = m.get("servers"))
      for (const auto& item : list(*s)) {
        // A bare IP means port 53.
        if (item.node.IsScalar())
          if (auto ip = core::IpAddress::parse(item.node.Scalar())) {
            c_.dns.servers.push_back({ip->to_string(), 53});
            continue;
          }
        c_.dns.servers.push_back(host_port(item));
      }
    using std::chrono::milliseconds, std::chrono::seconds;
    if (auto t = m.get("timeout")) c_.dns.timeout = duration(*t, milliseconds(100), seconds(60));
    set_u32(m, "attempts", 1, 10, c_.dns.attempts);
  }

  void retry(const Value& v) {
    Map m(v, {"intervals", "max_age"});
    using std::chrono::hours, std::chrono::seconds;
    if (auto iv = m.get("intervals")) {
      c_.retry.intervals.clear();
      for (const auto& item : non_empty_list(*iv, "interval"))
        c_.retry.intervals.push_back(duration(item, seconds(1), hours(24 * 7)));
    }
    if (auto a = m.get("max_age")) c_.retry.max_age = duration(*a, seconds(1), hours(24 * 30));
  }

  void shaping(const Value& v) {
    Map m(v, {"default", "providers", "backoff"});
    Shaping& sh = c_.shaping;
    if (auto d = m.get("default")) {
      Map dm(*d, {"max_connections", "max_messages_per_connection", "max_messages_per_hour",
                  "idle_timeout"});
      set_u32(dm, "max_connections", 1, 10000, sh.max_connections);
      set_u32(dm, "max_messages_per_connection", 1, 1000000, sh.max_messages_per_connection);
      if (auto h = dm.get("max_messages_per_hour"))
        sh.max_messages_per_hour = integer(*h, 0, 1000000000);
      using std::chrono::milliseconds, std::chrono::minutes;
      if (auto t = dm.get("idle_timeout"))
        sh.idle_timeout = duration(*t, milliseconds(0), minutes(10));
    }
    if (auto p = m.get("providers")) {
      std::vector<std::string> seen;
      for (const auto& item : list(*p)) {
        Map pm(item, {"name", "mx_suffixes", "max_connections", "max_messages_per_connection",
                      "max_messages_per_hour"});
        Value name = pm.required("name");
        ProviderShaping ps;
        ps.name = text(name);
        for (char c : ps.name)
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
            name.expected("a provider name of letters, digits, '-' and '_'");
        for (const auto& s : seen)
          if (s == ps.name) name.fail("provider " + quote(ps.name) + " is listed twice");
        seen.push_back(ps.name);
        const ProviderShaping* builtin = sh.find_provider(ps.name);
        if (builtin) ps = *builtin;
        ps.max_connections = builtin ? builtin->max_connections : sh.max_connections;
        ps.max_messages_per_connection =
            builtin ? builtin->max_messages_per_connection : sh.max_messages_per_connection;
        if (auto sfx = pm.get("mx_suffixes")) {
          ps.mx_suffixes.clear();
          for (const auto& it : non_empty_list(*sfx, "MX suffix")) {
            std::string x = host_name(it);
            if (x.front() == '.') x.erase(0, 1);
            if (x.empty()) it.expected("a host name suffix like \".google.com\"");
            for (auto& c : x) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            ps.mx_suffixes.push_back(std::move(x));
          }
        } else if (!builtin) {
          pm.required("mx_suffixes");
        }
        set_u32(pm, "max_connections", 1, 10000, ps.max_connections);
        set_u32(pm, "max_messages_per_connection", 1, 1000000, ps.max_messages_per_connection);
        if (auto h = pm.get("max_messages_per_hour"))
          ps.max_messages_per_hour = integer(*h, 0, 1000000000);
        if (builtin) {
          for (auto& b : sh.providers)
            if (b.name == ps.name) b = ps;
        } else {
          // Operator providers first: a narrower suffix of theirs wins over
          // a built-in one.
          sh.providers.insert(sh.providers.begin(), std::move(ps));
        }
      }
    }
    if (auto b = m.get("backoff")) {
      Map bm(*b, {"floor", "decrease", "increase", "window", "min_clean_results"});
      Backoff& bo = sh.backoff;
      if (auto f = bm.get("floor")) bo.floor = fraction(*f, false, true);
      if (auto f = bm.get("decrease")) bo.decrease = fraction(*f, false, false);
      if (auto f = bm.get("increase")) bo.increase = fraction(*f, false, true);
      using std::chrono::seconds, std::chrono::hours;
      if (auto w = bm.get("window")) bo.window = duration(*w, seconds(1), hours(24));
      set_u32(bm, "min_clean_results", 1, 100000, bo.min_clean_results);
    }
  }

  // A number in (0, 1) or (0, 1] when `one` is allowed.
  static double fraction(const Value& v, bool zero, bool one) {
    std::string what = std::string("a number ") + (zero ? "from 0" : "above 0") +
                       (one ? " up to 1" : " below 1") + " like 0.5";
    if (!v.node.IsScalar()) v.expected(what);
    const std::string& s = v.node.Scalar();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !(d >= 0) || (!zero && d == 0) ||
        (one ? d > 1 : d >= 1))
      v.expected(what);
    return d;
  }

  void delivery(const Value& v) {
    Map m(v, {"max_active", "max_queued_per_destination", "tls", "timeouts"});
    set_u32(m, "max_active", 100, 10000000, c_.delivery.max_active);
    set_u32(m, "max_queued_per_destination", 10, 10000000, c_.delivery.max_queued_per_destination);
    if (auto t = m.get("tls")) c_.delivery.tls = tls_policy(*t);
    if (auto t = m.get("timeouts")) {
      Map tm(*t, {"connect", "banner", "ehlo", "starttls", "mail", "rcpt", "data", "data_end"});
      using std::chrono::milliseconds, std::chrono::hours;
      auto& to = c_.delivery.timeouts;
      struct {
        const char* key;
        Duration* out;
      } fields[] = {{"connect", &to.connect},   {"banner", &to.banner},    {"ehlo", &to.ehlo},
                    {"starttls", &to.starttls}, {"mail", &to.mail},        {"rcpt", &to.rcpt},
                    {"data", &to.data},         {"data_end", &to.data_end}};
      for (auto& f : fields)
        if (auto d = tm.get(f.key)) *f.out = duration(*d, milliseconds(100), hours(1));
    }
  }

  void metrics(const Value& v) {
    Map m(v, {"listen"});
    if (auto l = m.get("listen")) c_.metrics.listen = listen_address(*l);
  }

  // Every address the daemon binds (SMTP, HTTP, metrics) must be distinct,
  // or the second bind would fail at start-up.
  core::HostPort listen_address(const Value& v) {
    core::HostPort hp = host_port(v);
    auto ip = core::IpAddress::parse(hp.host);
    for (const auto& [other_ip, port, path] : bound_)
      if (port == hp.port && other_ip == *ip)
        v.fail(hp.to_string() + " is already used by " + path);
    bound_.push_back({*ip, hp.port, v.path});
    return hp;
  }

  struct Bound {
    core::IpAddress ip;
    uint16_t port;
    std::string path;
  };

  struct OverflowRef {
    Value value;         // where "pool:NAME" is written
    std::string target;  // NAME
    std::string self;    // the pool it belongs to; empty for a schedule
  };

  Config& c_;
  std::vector<Bound> bound_;
  std::vector<OverflowRef> overflow_refs_;
  // Sets' tracking / list_unsubscribe sections, checked once the top-level
  // tracking section is read.
  std::vector<std::pair<Value, std::string>> needs_tracking_;
};

Error error_at(const std::string& name, const YAML::Mark& mark, std::string message) {
  if (mark.line < 0) return Error{name, 0, 0, std::move(message)};
  return Error{name, mark.line + 1, mark.column + 1, std::move(message)};
}

}  // namespace

LoadResult load_string(const std::string& yaml, const std::string& name) {
  LoadResult r;
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(yaml);
    if (docs.empty()) {
      r.error = Error{name, 0, 0, "the file is empty: expected a map of settings"};
      return r;
    }
    if (docs.size() > 1) fail_at(docs[1].Mark(), "expected one YAML document, found a second one");
    Config c;
    c.path = name;
    c.shaping.providers = builtin_providers();
    Parser(c).root(Value{docs[0], docs[0].Mark(), ""});
    r.config = std::move(c);
  } catch (const Failure& f) {
    r.error = error_at(name, f.mark, f.message);
  } catch (const YAML::ParserException& e) {
    r.error = error_at(name, e.mark, "invalid YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    r.error = error_at(name, e.mark, "invalid YAML: " + e.msg);
  } catch (const std::exception& e) {
    r.error = Error{name, 0, 0, e.what()};
  }
  return r;
}

LoadResult load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return LoadResult{std::nullopt,
                      Error{path, 0, 0, "cannot open: " + std::string(std::strerror(errno))}};
  std::string yaml;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) yaml.append(buf, n);
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0)
    return LoadResult{std::nullopt,
                      Error{path, 0, 0, "cannot read: " + std::string(std::strerror(err))}};
  return load_string(yaml, path);
}

}  // namespace mta::config
