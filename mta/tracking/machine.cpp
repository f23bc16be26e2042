// Machine-traffic rules: YAML -> MachineRule, and the classifier.

#include "mta/tracking/machine.hpp"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <unordered_map>

#include "mta/rulefile/rulefile.hpp"

namespace mta::tracking {
namespace {

// ---- checks shared by the parser and build() ------------------------------

RE2::Options pattern_options() {
  RE2::Options o;
  o.set_case_sensitive(false);
  o.set_encoding(RE2::Options::EncodingLatin1);  // any byte string is valid input
  o.set_never_capture(true);
  o.set_log_errors(false);
  return o;
}

std::optional<std::string> check_id(std::string_view id) {
  if (id.empty()) return "empty id";
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
          c == ':'))
      return "id \"" + std::string(id) + "\": use lowercase letters, digits, '-', '_', '.', ':'";
  return std::nullopt;
}

std::optional<std::string> check_pattern(const std::string& p) {
  RE2 re(p, pattern_options());
  if (!re.ok()) return "bad regex \"" + p + "\": " + re.error();
  return std::nullopt;
}

bool has_condition(const MachineRule& r) {
  return r.kind || !r.user_agent.empty() || !r.user_agent_contains.empty() || !r.ips.empty() ||
         r.within_ms || r.head_seen;
}

std::optional<std::string> check_rule(const MachineRule& r) {
  if (auto e = check_id(r.id)) return e;
  if (r.kind && *r.kind == Kind::kUnsubscribe) return "kind: open, click or any";
  if (!r.user_agent.empty())
    if (auto e = check_pattern(r.user_agent)) return "user_agent: " + *e;
  for (const auto& s : r.user_agent_contains)
    if (s.empty()) return "user_agent_contains: an empty string matches everything";
  if (r.within_ms && *r.within_ms <= 0) return "within: must be positive";
  if (!has_condition(r))
    return "a rule needs at least one condition (kind, user_agent, user_agent_contains, ips, "
           "within, head_seen)";
  return std::nullopt;
}

std::string location(const MachineRule& r) {
  if (r.file.empty()) return "rule " + r.id + ": ";
  return r.file + ":" + std::to_string(r.line) + ":" + std::to_string(r.col) + ": ";
}

// "500ms", "10s", "2m", "1h" -> ms.
std::optional<int64_t> parse_duration_ms(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  int64_t n = 0;
  std::from_chars(text.data(), text.data() + digits, n);
  std::string_view unit = text.substr(digits);
  if (unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60 * 1000;
  if (unit == "h") return n * 60 * 60 * 1000;
  return std::nullopt;
}

// ---- YAML -----------------------------------------------------------------

using rulefile::boolean;
using rulefile::describe;
using rulefile::fail;
using rulefile::list;
using rulefile::scalar;
using rulefile::Value;
using rulefile::value_of;

MachineRule parse_rule(const YAML::Node& node, size_t index, const std::string& file) {
  std::string ctx = "rules[" + std::to_string(index) + "]: ";
  if (!node.IsMap()) fail(node.Mark(), ctx + "expected a map, got " + describe(node));
  MachineRule rule;
  rule.file = file;
  rule.line = node.Mark().line + 1;
  rule.col = node.Mark().column + 1;
  for (const auto& kv : node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == "id") {
      Value v = value_of(kv.first, kv.second);
      rule.id = scalar(v, ctx, "id");
      if (auto e = check_id(rule.id)) fail(v.mark, ctx + *e);
      ctx = "rule \"" + rule.id + "\": ";
    }
  }
  if (rule.id.empty()) fail(node.Mark(), ctx + "missing id");
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      fail(kv.first.Mark(), ctx + "expected a key, got " + describe(kv.first));
    const std::string& key = kv.first.Scalar();
    Value v = value_of(kv.first, kv.second);
    if (key == "id") {
      continue;
    } else if (key == "kind") {
      const std::string& k = scalar(v, ctx, "kind");
      if (k == "open")
        rule.kind = Kind::kOpen;
      else if (k == "click")
        rule.kind = Kind::kClick;
      else if (k != "any")
        fail(v.mark, ctx + "kind: expected open, click or any, got " + describe(v.node));
    } else if (key == "user_agent") {
      rule.user_agent = scalar(v, ctx, "user_agent");
      if (auto e = check_pattern(rule.user_agent)) fail(v.mark, ctx + "user_agent: " + *e);
    } else if (key == "user_agent_contains") {
      for (const Value& s : list(v, ctx, "user_agent_contains")) {
        const std::string& text = scalar(s, ctx, "user_agent_contains");
        if (text.empty()) fail(s.mark, ctx + "user_agent_contains: an empty string matches all");
        rule.user_agent_contains.push_back(text);
      }
    } else if (key == "ips") {
      for (const Value& s : list(v, ctx, "ips")) {
        const std::string& text = scalar(s, ctx, "ips");
        auto cidr = core::Cidr::parse(text);
        if (!cidr)
          fail(s.mark, ctx + "ips: not an address or CIDR range: " + describe(s.node) +
                           " (e.g. 17.0.0.0/8, 2620:149::/32)");
        rule.ips.push_back(*cidr);
      }
    } else if (key == "within") {
      auto d = parse_duration_ms(scalar(v, ctx, "within"));
      if (!d || *d <= 0)
        fail(v.mark, ctx + "within: expected a positive duration (e.g. 2s, 500ms), got " +
                         describe(v.node));
      rule.within_ms = *d;
    } else if (key == "head_seen") {
      rule.head_seen = boolean(v, ctx, "head_seen");
    } else if (key == "machine") {
      rule.machine = boolean(v, ctx, "machine");
    } else {
      fail(kv.first.Mark(), ctx + "unknown key \"" + key +
                                "\" (expected id, kind, user_agent, user_agent_contains, ips, "
                                "within, head_seen, machine)");
    }
  }
  if (auto e = check_rule(rule)) fail(node.Mark(), ctx + *e);
  return rule;
}

bool contains_nocase(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && std::tolower(static_cast<unsigned char>(hay[i + j])) ==
                                    std::tolower(static_cast<unsigned char>(needle[j])))
      ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

}  // namespace

core::Result<std::vector<MachineRule>> parse_machine_rules(const std::string& yaml_text,
                                                           const std::string& file_name) {
  std::vector<MachineRule> rules;
  auto st = rulefile::parse_rules(yaml_text, file_name, [&](const YAML::Node& item, size_t index) {
    rules.push_back(parse_rule(item, index, file_name));
    return rulefile::RuleId{rules.back().id, rules.back().line};
  });
  if (!st.ok()) return st.error();
  return rules;
}

core::Result<std::vector<MachineRule>> load_machine_rules_file(const std::string& path) {
  auto text = rulefile::read_file(path);
  if (!text) return text.error();
  return parse_machine_rules(*text, path);
}

struct MachineRules::Impl {
  std::vector<MachineRule> rules;
  std::vector<std::unique_ptr<RE2>> patterns;  // per rule; null when it has none
};

MachineRules::MachineRules(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MachineRules::MachineRules(MachineRules&&) noexcept = default;
MachineRules& MachineRules::operator=(MachineRules&&) noexcept = default;
MachineRules::~MachineRules() = default;

core::Result<MachineRules> MachineRules::load_file(const std::string& path) {
  auto rules = load_machine_rules_file(path);
  if (!rules) return rules.error();
  return build(std::move(*rules), {});
}

core::Result<MachineRules> MachineRules::build(std::vector<MachineRule> shipped,
                                               std::vector<MachineRule> local) {
  auto impl = std::make_unique<Impl>();
  std::unordered_map<std::string, const MachineRule*> local_ids;
  for (const auto& r : local) {
    if (auto e = check_rule(r)) return core::make_error(location(r) + *e);
    auto [it, inserted] = local_ids.emplace(r.id, &r);
    if (!inserted)
      return core::make_error(location(r) + "duplicate rule id \"" + r.id + "\" (also at " +
                              location(*it->second) + ")");
  }
  for (auto& r : local) impl->rules.push_back(std::move(r));
  for (auto& r : shipped) {
    if (auto e = check_rule(r)) return core::make_error(location(r) + *e);
    if (local_ids.count(r.id)) continue;  // replaced by the operator's rule
    impl->rules.push_back(std::move(r));
  }
  for (const auto& r : impl->rules) {
    if (r.user_agent.empty()) {
      impl->patterns.push_back(nullptr);
      continue;
    }
    auto re = std::make_unique<RE2>(r.user_agent, pattern_options());
    if (!re->ok()) return core::make_error(location(r) + "user_agent: bad regex: " + re->error());
    impl->patterns.push_back(std::move(re));
  }
  return MachineRules(std::move(impl));
}

Verdict MachineRules::classify(const Request& req) const {
  std::optional<core::IpAddress> ip;
  bool ip_parsed = false;
  const int64_t since_ms = req.seconds_since_send < 0 ? 0 : req.seconds_since_send * 1000;
  for (size_t i = 0; i < impl_->rules.size(); ++i) {
    const MachineRule& r = impl_->rules[i];
    if (r.kind && *r.kind != req.kind) continue;
    if (r.head_seen && *r.head_seen != req.head_seen) continue;
    if (r.within_ms && !(since_ms < *r.within_ms)) continue;
    if (!r.user_agent_contains.empty()) {
      bool any = false;
      for (const auto& s : r.user_agent_contains)
        if (contains_nocase(req.user_agent, s)) {
          any = true;
          break;
        }
      if (!any) continue;
    }
    if (!r.ips.empty()) {
      if (!ip_parsed) {
        ip_parsed = true;
        ip = core::IpAddress::parse(req.ip);
        if (ip) ip = ip->unmapped();
      }
      if (!ip) continue;
      bool in = false;
      for (const auto& c : r.ips)
        if (c.contains(*ip)) {
          in = true;
          break;
        }
      if (!in) continue;
    }
    if (const auto& re = impl_->patterns[i];
        re &&
        !RE2::PartialMatch(re2::StringPiece(req.user_agent.data(), req.user_agent.size()), *re))
      continue;
    return Verdict{r.machine, r.id};
  }
  return Verdict{};
}

const std::vector<MachineRule>& MachineRules::rules() const {
  return impl_->rules;
}

}  // namespace mta::tracking
