// Machine traffic: which opens and clicks were not a person.
//
// Mail-privacy prefetch (Apple Mail Privacy Protection loads every image of
// every message through Apple's proxies as it arrives), image proxies
// (Gmail's GoogleImageProxy, Yahoo's YahooMailProxy) and link scanners
// (Microsoft Safe Links, Proofpoint, Mimecast, Barracuda, scripts) fetch
// tracking URLs without anybody reading or clicking. The tracking listener
// still records those events, with `mta.machine: true` and the rule that
// said so, so senders can count humans.
//
// Like the bounce rules, the knowledge lives in data: the shipped
// config/tracking-rules.yaml plus the operator's local file, tried local
// first, first match wins; a local rule with a shipped rule's id replaces
// it. A rule matches when every condition it sets holds: kind, user agent
// (RE2 or substrings, case-insensitive), client IP ranges, seconds since the
// copy was sent (`within`), and whether a HEAD for the same token came just
// before. A rule may say `machine: false` (e.g. the operator's own QA
// browser) to stop the search with a human verdict. The format is
// documented at the top of config/tracking-rules.yaml.
//
// Invariants: patterns are compiled once in build(); classify() is
// thread-safe and allocates nothing but the returned reason.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/net.hpp"
#include "mta/core/result.hpp"
#include "mta/tracking/token.hpp"

namespace mta::tracking {

struct Request {
  Kind kind = Kind::kOpen;
  std::string_view user_agent;
  std::string_view ip;             // the client address as text ("" unknown)
  int64_t seconds_since_send = 0;  // whole seconds since Claims::sent_ms (negative: clock skew)
  bool head_seen = false;          // a HEAD for the same token came shortly before
};

struct Verdict {
  bool machine = false;
  std::string reason;  // the matching rule's id ("apple-mpp", "safe-links", ...); "" none
};

// One rule as parsed from YAML. Conditions left empty match anything; a
// rule must set at least one.
struct MachineRule {
  std::string id;
  std::string file;  // where it was written, for errors; "" when built in code
  int line = 0, col = 0;
  std::optional<Kind> kind;                      // kOpen or kClick; nullopt: any
  std::string user_agent;                        // RE2, case-insensitive, searched anywhere
  std::vector<std::string> user_agent_contains;  // any of these substrings, case-insensitive
  std::vector<core::Cidr> ips;                   // the client address is in one of them
  // Matches when the request came less than this long after the copy was
  // sent (seconds_since_send * 1000 < within_ms).
  std::optional<int64_t> within_ms;
  std::optional<bool> head_seen;
  bool machine = true;
};

// Parses a rules document (a top-level `rules:` list). Errors read
// "FILE:LINE:COL: message": YAML syntax, unknown keys, bad kind, bad regex,
// bad CIDR, bad duration, a missing id, an id used twice, a rule without
// conditions.
core::Result<std::vector<MachineRule>> parse_machine_rules(const std::string& yaml_text,
                                                           const std::string& file_name);
core::Result<std::vector<MachineRule>> load_machine_rules_file(const std::string& path);

class MachineRules final {
 public:
  // The rules of one file, alone.
  static core::Result<MachineRules> load_file(const std::string& path);
  // Local rules first, then the shipped ones; a local rule whose id is a
  // shipped rule's id replaces it (in the local position). Fails on an
  // invalid rule (rules built in code are checked too) or an id used twice
  // among the local rules.
  static core::Result<MachineRules> build(std::vector<MachineRule> shipped,
                                          std::vector<MachineRule> local);

  MachineRules(MachineRules&&) noexcept;
  MachineRules& operator=(MachineRules&&) noexcept;
  ~MachineRules();

  Verdict classify(const Request& r) const;
  // In the order they are tried.
  const std::vector<MachineRule>& rules() const;

 private:
  struct Impl;
  explicit MachineRules(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta::tracking
