// Bounce and deferral classification: what a remote server's reply means.
//
// One function, Classifier::classify(), turns a reply (code, enhanced code,
// text), the SMTP stage it answered and the provider behind the MX into an
// SES-style bounce type and subtype, a PowerMTA-style category and two
// decisions: `suppress` (the recipient address itself is bad: unknown user,
// disabled or inactive mailbox, domain without mail) and `throttle` (the
// server asks us to slow down). The delivery engine calls it on the hot path
// after every non-2xx reply; the suppression list and the per-IP limiters
// act on its answer, and the event publisher reports it.
//
// The meaning lives in data, not code: rules parsed from YAML (the shipped
// config/bounce-rules.yaml plus operator files), tried in order, first match
// wins. Rule precedence, matching and the result fields are documented at the
// top of config/bounce-rules.yaml; in short:
//   - operator rules come first, then the shipped ones; an operator rule with
//     a shipped rule's id replaces it, in the operator's position;
//   - a rule matches when every condition it sets holds (codes, enhanced
//     code, text pattern, provider, stage);
//   - texts win over codes: specific texts are listed before the rules that
//     read enhanced codes alone, because providers send misleading codes
//     (a 5.1.1 "mailbox full", a 5.2.2 sender quota, a 421 carrying 5.7.32);
//   - no rule matching falls back to the reply class, and that fallback never
//     suppresses and never throttles.
//
// Invariants: patterns are compiled once, in build(); classify() allocates
// nothing but the returned rule id. A temporary (4xx) reply never suppresses,
// whatever a rule says: a server that is unsure today may know the user
// tomorrow.
//
// Pseudo-replies from the delivery engine (no SMTP reply was read):
//   - connection refused / timed out / no route: Reply{0, "", error text} at
//     Stage::kConnect (e.g. "connect to mx[192.0.2.1]:25: Connection
//     refused") -> Transient, no-answer-from-host;
//   - connection lost, TLS handshake failure, read timeout mid-session:
//     Reply{0, "", error text} at the stage it happened -> Transient,
//     bad-connection;
//   - DNS: Reply{0, "", "Host or domain name not found. Name service error
//     for name=D type=MX: Host not found"} -> Permanent, bad-domain,
//     suppress; the same with ", try again" (SERVFAIL) -> Transient,
//     routing-errors;
//   - null MX (RFC 7505): Reply{556, "5.1.10", "Recipient address has null
//     MX"} -> Permanent, bad-domain, suppress;
//   - a 421 greeting or a 421 at Stage::kConnect with no better text ->
//     Transient, bad-connection.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/protocol/reply.hpp"

namespace mta::bounce {

// The SMTP exchange the reply answered. kAny: not known; rules restricted to
// stages never match it.
enum class Stage { kConnect, kEhlo, kMail, kRcpt, kData, kAny };

// SES bounceType. Here it answers "may a later attempt of this message
// succeed?": Transient for temporary replies and for permanent codes whose
// text says temporary (rate limits, mailbox full, per RFC 5321 4.5.3.1.10 and
// RFC 3463 X.2.2); Permanent when retrying will not help.
enum class BounceType { kPermanent, kTransient, kUndetermined };

// SES bounceSubType. SES pairs them with types: Permanent takes General,
// NoEmail, Suppressed, OnAccountSuppressionList; Transient takes General,
// MailboxFull, MessageTooLarge, ContentRejected, AttachmentRejected;
// Undetermined takes General. classify() only returns valid pairs.
enum class SubType {
  kGeneral,
  kNoEmail,
  kSuppressed,
  kOnAccountSuppressionList,
  kMailboxFull,
  kMessageTooLarge,
  kContentRejected,
  kAttachmentRejected,
};

// PowerMTA bounceCat.
enum class Category {
  kBadConfiguration,
  kBadConnection,
  kBadDomain,
  kBadMailbox,
  kContentRelated,
  kInactiveMailbox,
  kInvalidSender,
  kMessageExpired,
  kNoAnswerFromHost,
  kOther,
  kPolicyRelated,
  kProtocolErrors,
  kQuotaIssues,
  kRelayingIssues,
  kRoutingErrors,
  kSpamRelated,
  kVirusRelated,
};

// Spellings: stages "connect" "ehlo" "mail" "rcpt" "data" ("any" for kAny,
// never parsed); SES spellings "Permanent", "MailboxFull"...; PowerMTA
// spellings "bad-mailbox"... The parse functions take exactly those strings.
const char* to_string(Stage s);
const char* to_string(BounceType t);
const char* to_string(SubType s);
const char* to_string(Category c);
std::optional<Stage> parse_stage(std::string_view s);
std::optional<BounceType> parse_bounce_type(std::string_view s);
std::optional<SubType> parse_subtype(std::string_view s);
std::optional<Category> parse_category(std::string_view s);

// SES pairing: is `s` a valid bounceSubType for `t`?
bool subtype_valid_for(BounceType t, SubType s);

struct Classification {
  BounceType type = BounceType::kUndetermined;
  SubType subtype = SubType::kGeneral;
  Category category = Category::kOther;
  bool suppress = false;  // the recipient address itself is bad
  bool throttle = false;  // the server asks the sender to slow down
  std::string rule_id;    // the matching rule, or "fallback:4xx" etc.
};

// Where a rule was written, for error messages. line and col are 1-based;
// file is empty for rules built in code.
struct RuleSource {
  std::string file;
  int line = 0;
  int col = 0;
};

// One rule, plain data as parsed from YAML. Empty conditions match anything.
struct Rule {
  std::string id;
  RuleSource where;
  // Reply codes: exact codes (0 for the engine's pseudo-replies, 200..599),
  // or a single digit 2..5 for a whole class (written "4xx" in YAML).
  std::vector<int> codes;
  // Enhanced code: exact "5.1.1", or a prefix ending in '.': "5.1.", "5.";
  // the class may be 'x' ("x.7.1", "x.1.") for either 4 or 5.
  std::string enhanced;
  // RE2, case-insensitive, searched anywhere in the reply text after each
  // whitespace run (line breaks included) is collapsed to one space.
  std::string pattern;
  std::string provider;       // lowercase name from provider_from_mx(); "" any
  std::vector<Stage> stages;  // never kAny
  // Result. type unset: from the reply code (4xx and code 0 Transient, 5xx
  // Permanent); a subtype invalid for the resolved type becomes General.
  std::optional<BounceType> type;
  SubType subtype = SubType::kGeneral;
  Category category = Category::kOther;
  bool suppress = false;  // only with type Permanent or unset
  bool throttle = false;
};

// Parses a rules YAML document (a top-level `rules:` list). Errors read
// "FILE:LINE:COL: message" for YAML syntax, unknown keys, unknown
// category/type/subtype/stage, bad regex (compiled with RE2 here), a missing
// id and an id used twice in the file.
core::Result<std::vector<Rule>> parse_rules(const std::string& yaml_text,
                                            const std::string& file_name);
core::Result<std::vector<Rule>> load_rules_file(const std::string& path);

class Classifier final {
 public:
  // Operator rules are tried before the shipped ones; an operator rule whose
  // id equals a shipped rule's id replaces it (in the operator's position).
  // Within a list, the first matching rule wins. Fails on an invalid rule
  // or an id used twice among the operator rules.
  static core::Result<Classifier> build(std::vector<Rule> shipped,
                                        std::vector<Rule> operator_rules);

  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;
  ~Classifier();

  // Thread-safe; see the header comment for pseudo-replies. The enhanced
  // code is read from the start of reply.text when reply.enhanced is empty
  // (the reply parser leaves one whose class differs from the code there).
  Classification classify(const protocol::Reply& reply, Stage stage,
                          std::string_view provider = {}) const;

  // The rules in the order they are tried.
  const std::vector<Rule>& rules() const;

 private:
  struct Impl;
  explicit Classifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The provider name rules use for an MX host ("gmail-smtp-in.l.google.com"
// -> "gmail"), or "" when unknown: gmail, microsoft, yahoo (Yahoo and AOL),
// icloud, comcast, gmx (GMX, WEB.DE, 1&1/IONOS, mail.com), orange, yandex,
// mailru.
std::string_view provider_from_mx(std::string_view mx_host);

}  // namespace mta::bounce
