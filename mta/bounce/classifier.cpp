#include "mta/bounce/classifier.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <unordered_map>
#include <utility>

#include "mta/bounce/rule_check.hpp"

namespace mta::bounce {

namespace {

constexpr char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

template <class E, size_t N>
std::optional<E> parse_name(std::string_view s,
                            const std::array<std::pair<E, const char*>, N>& names) {
  for (const auto& [value, name] : names)
    if (s == name) return value;
  return std::nullopt;
}

template <class E, size_t N>
const char* name_of(E e, const std::array<std::pair<E, const char*>, N>& names) {
  for (const auto& [value, name] : names)
    if (value == e) return name;
  return "?";
}

constexpr std::array<std::pair<Stage, const char*>, 6> kStageNames{{
    {Stage::kConnect, "connect"},
    {Stage::kEhlo, "ehlo"},
    {Stage::kMail, "mail"},
    {Stage::kRcpt, "rcpt"},
    {Stage::kData, "data"},
    {Stage::kAny, "any"},
}};

constexpr std::array<std::pair<BounceType, const char*>, 3> kTypeNames{{
    {BounceType::kPermanent, "Permanent"},
    {BounceType::kTransient, "Transient"},
    {BounceType::kUndetermined, "Undetermined"},
}};

constexpr std::array<std::pair<SubType, const char*>, 8> kSubTypeNames{{
    {SubType::kGeneral, "General"},
    {SubType::kNoEmail, "NoEmail"},
    {SubType::kSuppressed, "Suppressed"},
    {SubType::kOnAccountSuppressionList, "OnAccountSuppressionList"},
    {SubType::kMailboxFull, "MailboxFull"},
    {SubType::kMessageTooLarge, "MessageTooLarge"},
    {SubType::kContentRejected, "ContentRejected"},
    {SubType::kAttachmentRejected, "AttachmentRejected"},
}};

constexpr std::array<std::pair<Category, const char*>, 17> kCategoryNames{{
    {Category::kBadConfiguration, "bad-configuration"},
    {Category::kBadConnection, "bad-connection"},
    {Category::kBadDomain, "bad-domain"},
    {Category::kBadMailbox, "bad-mailbox"},
    {Category::kContentRelated, "content-related"},
    {Category::kInactiveMailbox, "inactive-mailbox"},
    {Category::kInvalidSender, "invalid-sender"},
    {Category::kMessageExpired, "message-expired"},
    {Category::kNoAnswerFromHost, "no-answer-from-host"},
    {Category::kOther, "other"},
    {Category::kPolicyRelated, "policy-related"},
    {Category::kProtocolErrors, "protocol-errors"},
    {Category::kQuotaIssues, "quota-issues"},
    {Category::kRelayingIssues, "relaying-issues"},
    {Category::kRoutingErrors, "routing-errors"},
    {Category::kSpamRelated, "spam-related"},
    {Category::kVirusRelated, "virus-related"},
}};

// A number of 1..3 digits; -1 when `s` is not one.
int parse_small_number(std::string_view s) {
  if (s.empty() || s.size() > 3) return -1;
  int n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return -1;
  return n;
}

// "c.s.d" with c in 2/4/5 at the start of `text` (followed by a space or the
// end); all -1 when absent.
detail::EnhancedMatch leading_enhanced(std::string_view text) {
  std::string_view token = text.substr(0, text.find(' '));
  detail::EnhancedMatch e;
  if (token.size() < 5 || token[1] != '.' ||
      (token[0] != '2' && token[0] != '4' && token[0] != '5'))
    return e;
  size_t dot = token.find('.', 2);
  if (dot == std::string_view::npos) return e;
  int subject = parse_small_number(token.substr(2, dot - 2));
  int detail = parse_small_number(token.substr(dot + 1));
  if (subject < 0 || detail < 0) return e;
  e.cls = token[0] - '0';
  e.subject = subject;
  e.detail = detail;
  return e;
}

// Copies `text` into `out` with each whitespace run collapsed to one space
// and none at either end, so that patterns need not care about the line
// breaks of a multi-line reply.
void normalize(std::string_view text, std::string& out) {
  // The result is never longer than the input: write in place, then trim.
  out.resize(text.size());
  char* const begin = out.data();
  char* w = begin;
  bool pending_space = false;
  for (char c : text) {
    if (is_space(c)) {
      pending_space = w != begin;
      continue;
    }
    if (pending_space) *w++ = ' ';
    pending_space = false;
    *w++ = c;
  }
  out.resize(static_cast<size_t>(w - begin));
}

BounceType type_from_code(int code) {
  if (code == 0 || (code >= 400 && code < 500)) return BounceType::kTransient;
  if (code >= 500 && code < 600) return BounceType::kPermanent;
  return BounceType::kUndetermined;
}

// One rule, compiled for matching.
struct Compiled {
  int pattern = -1;        // index into the set; -1: no pattern
  std::vector<int> codes;  // as in Rule
  bool has_enhanced = false;
  detail::EnhancedMatch enhanced;
  uint8_t stage_mask = 0;  // 0: any stage
  std::string provider;
};

bool code_matches(const std::vector<int>& codes, int code) {
  if (codes.empty()) return true;
  for (int c : codes) {
    if (c == code) return true;
    if (c >= 2 && c <= 5 && code / 100 == c) return true;
  }
  return false;
}

bool enhanced_matches(const detail::EnhancedMatch& want, const detail::EnhancedMatch& got) {
  if (got.cls < 0) return false;
  if (want.cls >= 0 && want.cls != got.cls) return false;
  if (want.subject >= 0 && want.subject != got.subject) return false;
  if (want.detail >= 0 && want.detail != got.detail) return false;
  return true;
}

}  // namespace

const char* to_string(Stage s) {
  return name_of(s, kStageNames);
}
const char* to_string(BounceType t) {
  return name_of(t, kTypeNames);
}
const char* to_string(SubType s) {
  return name_of(s, kSubTypeNames);
}
const char* to_string(Category c) {
  return name_of(c, kCategoryNames);
}

std::optional<Stage> parse_stage(std::string_view s) {
  auto stage = parse_name(s, kStageNames);
  if (stage == Stage::kAny) return std::nullopt;
  return stage;
}
std::optional<BounceType> parse_bounce_type(std::string_view s) {
  return parse_name(s, kTypeNames);
}
std::optional<SubType> parse_subtype(std::string_view s) {
  return parse_name(s, kSubTypeNames);
}
std::optional<Category> parse_category(std::string_view s) {
  return parse_name(s, kCategoryNames);
}

bool subtype_valid_for(BounceType t, SubType s) {
  switch (t) {
    case BounceType::kPermanent:
      return s == SubType::kGeneral || s == SubType::kNoEmail || s == SubType::kSuppressed ||
             s == SubType::kOnAccountSuppressionList;
    case BounceType::kTransient:
      return s == SubType::kGeneral || s == SubType::kMailboxFull ||
             s == SubType::kMessageTooLarge || s == SubType::kContentRejected ||
             s == SubType::kAttachmentRejected;
    case BounceType::kUndetermined:
      return s == SubType::kGeneral;
  }
  return false;
}

namespace detail {

RE2::Options pattern_options() {
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_never_capture(true);
  o.set_log_errors(false);
  // Room for the DFA of a set of a few hundred patterns.
  o.set_max_mem(int64_t{64} << 20);
  return o;
}

std::optional<EnhancedMatch> parse_enhanced_match(std::string_view s) {
  EnhancedMatch m;
  if (s.size() < 2 || s[1] != '.') return std::nullopt;
  if (s[0] == '2' || s[0] == '4' || s[0] == '5')
    m.cls = s[0] - '0';
  else if (s[0] != 'x' && s[0] != 'X')
    return std::nullopt;
  s.remove_prefix(2);
  if (s.empty()) return m;  // "5."
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  m.subject = parse_small_number(s.substr(0, dot));
  if (m.subject < 0) return std::nullopt;
  s.remove_prefix(dot + 1);
  if (s.empty()) return m;  // "5.1."
  m.detail = parse_small_number(s);
  if (m.detail < 0) return std::nullopt;
  return m;
}

std::optional<std::string> check_code(int code) {
  if (code == 0 || (code >= 2 && code <= 5) || (code >= 200 && code <= 599)) return std::nullopt;
  return "bad reply code " + std::to_string(code) +
         " (expected 0, 200..599, or a class such as \"4xx\")";
}

std::optional<std::string> check_pattern(const std::string& pattern) {
  if (pattern.empty()) return "empty pattern (leave the key out to match any text)";
  RE2 re(pattern, pattern_options());
  if (!re.ok()) return "bad pattern: " + re.error();
  return std::nullopt;
}

std::optional<std::string> check_provider(std::string_view provider) {
  if (provider.empty()) return "empty provider";
  for (char c : provider) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok)
      return "bad provider \"" + std::string(provider) + "\" (lowercase letters, digits, - _ .)";
  }
  return std::nullopt;
}

std::optional<std::string> check_id(std::string_view id) {
  if (id.empty()) return "missing id";
  for (char c : id) {
    if (is_space(c) || static_cast<unsigned char>(c) < 0x20)
      return "bad id \"" + std::string(id) + "\" (no spaces)";
  }
  return std::nullopt;
}

std::optional<std::string> check_result(const Rule& rule) {
  if (rule.type && !subtype_valid_for(*rule.type, rule.subtype))
    return std::string("subtype ") + to_string(rule.subtype) + " does not go with type " +
           to_string(*rule.type) + " (SES pairs)";
  if (rule.suppress && rule.type && *rule.type != BounceType::kPermanent)
    return std::string("suppress needs type Permanent (or no type), not ") + to_string(*rule.type);
  return std::nullopt;
}

std::optional<std::string> check_rule(const Rule& rule) {
  if (auto e = check_id(rule.id)) return e;
  for (int c : rule.codes)
    if (auto e = check_code(c)) return e;
  if (!rule.enhanced.empty() && !parse_enhanced_match(rule.enhanced))
    return "bad enhanced code \"" + rule.enhanced + "\" (e.g. \"5.1.1\", \"5.1.\", \"x.7.\")";
  if (!rule.pattern.empty())
    if (auto e = check_pattern(rule.pattern)) return e;
  if (!rule.provider.empty())
    if (auto e = check_provider(rule.provider)) return e;
  for (Stage s : rule.stages)
    if (s == Stage::kAny) return std::string("stage \"any\" is not a stage; leave stages out");
  return check_result(rule);
}

std::string position(const Rule& rule) {
  if (rule.where.file.empty()) return "rule \"" + rule.id + "\"";
  return rule.where.file + ":" + std::to_string(rule.where.line) + ":" +
         std::to_string(rule.where.col);
}

std::string location(const Rule& rule) {
  return position(rule) + ": ";
}

}  // namespace detail

struct Classifier::Impl {
  std::vector<Rule> rules;
  std::vector<Compiled> compiled;
  std::unique_ptr<RE2::Set> set;               // all distinct patterns
  std::vector<std::unique_ptr<RE2>> patterns;  // the same, one by one
};

Classifier::Classifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;
Classifier::~Classifier() = default;

const std::vector<Rule>& Classifier::rules() const {
  return impl_->rules;
}

core::Result<Classifier> Classifier::build(std::vector<Rule> shipped,
                                           std::vector<Rule> operator_rules) {
  // Operator ids must be unique among themselves; shipped ids they reuse are
  // dropped from the shipped list.
  std::unordered_map<std::string, const Rule*> operator_ids;
  for (const Rule& r : operator_rules) {
    auto [it, inserted] = operator_ids.emplace(r.id, &r);
    if (!inserted)
      return core::make_error(detail::location(r) + "duplicate rule id \"" + r.id +
                              "\" (first defined at " + detail::position(*it->second) + ")");
  }
  std::unordered_map<std::string, const Rule*> shipped_ids;
  for (const Rule& r : shipped) {
    auto [it, inserted] = shipped_ids.emplace(r.id, &r);
    if (!inserted)
      return core::make_error(detail::location(r) + "duplicate rule id \"" + r.id +
                              "\" (first defined at " + detail::position(*it->second) + ")");
  }

  auto impl = std::make_unique<Impl>();
  impl->rules = std::move(operator_rules);
  for (Rule& r : shipped)
    if (!operator_ids.count(r.id)) impl->rules.push_back(std::move(r));

  RE2::Options options = detail::pattern_options();
  impl->set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  std::unordered_map<std::string, int> pattern_index;
  for (const Rule& r : impl->rules) {
    if (auto e = detail::check_rule(r)) return core::make_error(detail::location(r) + *e);
    Compiled c;
    c.codes = r.codes;
    if (!r.enhanced.empty()) {
      c.has_enhanced = true;
      c.enhanced = *detail::parse_enhanced_match(r.enhanced);
    }
    for (Stage s : r.stages) c.stage_mask |= static_cast<uint8_t>(1u << static_cast<int>(s));
    c.provider = r.provider;
    if (!r.pattern.empty()) {
      auto [it, inserted] =
          pattern_index.emplace(r.pattern, static_cast<int>(impl->patterns.size()));
      if (inserted) {
        std::string error;
        int index = impl->set->Add(r.pattern, &error);
        if (index != it->second)
          return core::make_error(detail::location(r) + "bad pattern: " + error);
        impl->patterns.push_back(std::make_unique<RE2>(r.pattern, options));
      }
      c.pattern = it->second;
    }
    impl->compiled.push_back(std::move(c));
  }
  if (!impl->patterns.empty() && !impl->set->Compile())
    return core::make_error("bounce rules: the pattern set does not compile (out of memory?)");
  return Classifier(std::move(impl));
}

Classification Classifier::classify(const protocol::Reply& reply, Stage stage,
                                    std::string_view provider) const {
  // Scratch space reused across calls on this thread: classify() sits on the
  // delivery hot path and must not allocate per reply.
  thread_local std::string text;
  thread_local std::vector<int> matched;
  thread_local std::vector<unsigned char> hit;

  normalize(reply.text, text);
  detail::EnhancedMatch enhanced =
      reply.enhanced.empty() ? leading_enhanced(text) : leading_enhanced(reply.enhanced);

  const Impl& impl = *impl_;
  hit.assign(impl.patterns.size(), 0);
  if (!impl.patterns.empty()) {
    matched.clear();
    RE2::Set::ErrorInfo error{};
    if (impl.set->Match(text, &matched, &error)) {
      for (int i : matched) hit[static_cast<size_t>(i)] = 1;
    } else if (error.kind != RE2::Set::kNoError) {
      // The DFA ran out of memory on this text: match one pattern at a time.
      for (size_t i = 0; i < impl.patterns.size(); ++i)
        hit[i] = RE2::PartialMatch(text, *impl.patterns[i]) ? 1 : 0;
    }
  }

  uint8_t stage_bit =
      stage == Stage::kAny ? 0 : static_cast<uint8_t>(1u << static_cast<int>(stage));
  for (size_t i = 0; i < impl.compiled.size(); ++i) {
    const Compiled& c = impl.compiled[i];
    if (c.pattern >= 0 && !hit[static_cast<size_t>(c.pattern)]) continue;
    if (!code_matches(c.codes, reply.code)) continue;
    if (c.has_enhanced && !enhanced_matches(c.enhanced, enhanced)) continue;
    if (c.stage_mask != 0 && (c.stage_mask & stage_bit) == 0) continue;
    if (!c.provider.empty() && !iequals(c.provider, provider)) continue;

    const Rule& r = impl.rules[i];
    Classification out;
    out.type = r.type ? *r.type : type_from_code(reply.code);
    out.subtype = subtype_valid_for(out.type, r.subtype) ? r.subtype : SubType::kGeneral;
    out.category = r.category;
    bool temporary_reply = reply.code >= 400 && reply.code < 500;
    out.suppress = r.suppress && out.type == BounceType::kPermanent && !temporary_reply;
    out.throttle = r.throttle;
    out.rule_id = r.id;
    return out;
  }

  // No rule: the reply class alone. Never suppresses, never throttles.
  Classification out;
  out.type = type_from_code(reply.code);
  if (reply.code == 0) {
    out.category = Category::kBadConnection;
    out.rule_id = "fallback:connection";
  } else if (out.type == BounceType::kTransient) {
    out.rule_id = "fallback:4xx";
  } else if (out.type == BounceType::kPermanent) {
    out.rule_id = "fallback:5xx";
  } else {
    out.rule_id = "fallback:other";
  }
  return out;
}

std::string_view provider_from_mx(std::string_view mx_host) {
  struct Suffix {
    std::string_view domain;
    std::string_view provider;
  };
  static constexpr Suffix kSuffixes[] = {
      {"google.com", "gmail"},
      {"googlemail.com", "gmail"},
      {"outlook.com", "microsoft"},
      {"hotmail.com", "microsoft"},
      {"yahoodns.net", "yahoo"},
      {"yahoo.com", "yahoo"},
      {"aol.com", "yahoo"},
      {"icloud.com", "icloud"},
      {"me.com", "icloud"},
      {"comcast.net", "comcast"},
      {"gmx.net", "gmx"},
      {"gmx.com", "gmx"},
      {"gmx.de", "gmx"},
      {"web.de", "gmx"},
      {"kundenserver.de", "gmx"},
      {"ionos.com", "gmx"},
      {"mail.com", "gmx"},
      {"orange.fr", "orange"},
      {"wanadoo.fr", "orange"},
      {"yandex.net", "yandex"},
      {"yandex.ru", "yandex"},
      {"mail.ru", "mailru"},
  };
  if (!mx_host.empty() && mx_host.back() == '.') mx_host.remove_suffix(1);
  for (const Suffix& s : kSuffixes) {
    if (mx_host.size() < s.domain.size()) continue;
    std::string_view tail = mx_host.substr(mx_host.size() - s.domain.size());
    if (!iequals(tail, s.domain)) continue;
    if (mx_host.size() == s.domain.size() || mx_host[mx_host.size() - s.domain.size() - 1] == '.')
      return s.provider;
  }
  return {};
}

}  // namespace mta::bounce
