// Rules files: YAML -> std::vector<Rule>, with every error pointing at the
// offending node as "FILE:LINE:COL: message" (yaml-cpp marks are 0-based).

#include <yaml-cpp/yaml.h>

#include <charconv>

#include "mta/bounce/classifier.hpp"
#include "mta/bounce/rule_check.hpp"
#include "mta/rulefile/rulefile.hpp"

namespace mta::bounce {

namespace {

using rulefile::boolean;
using rulefile::describe;
using rulefile::fail;
using rulefile::list;
using rulefile::scalar;
using rulefile::Value;
using rulefile::value_of;

int reply_code(const Value& v, const std::string& ctx) {
  const std::string& s = scalar(v, ctx, "codes");
  // "4xx" stands for the whole class.
  if (s.size() == 3 && s[0] >= '2' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
      (s[2] == 'x' || s[2] == 'X'))
    return s[0] - '0';
  int code = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), code);
  if (ec != std::errc() || end != s.data() + s.size() || (code != 0 && code < 100))
    fail(v.mark, ctx + "codes: bad reply code \"" + s + "\" (expected e.g. 550 or \"5xx\")");
  if (auto e = detail::check_code(code)) fail(v.mark, ctx + "codes: " + *e);
  return code;
}

std::string expected_names(const char* (*name)(int), int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += name(i);
  }
  return out;
}

const char* stage_name(int i) {
  return to_string(static_cast<Stage>(i));
}
const char* type_name(int i) {
  return to_string(static_cast<BounceType>(i));
}
const char* subtype_name(int i) {
  return to_string(static_cast<SubType>(i));
}
const char* category_name(int i) {
  return to_string(static_cast<Category>(i));
}

Rule parse_rule(const YAML::Node& node, size_t index, const std::string& file) {
  std::string ctx = "rules[" + std::to_string(index) + "]: ";
  if (!node.IsMap()) fail(node.Mark(), ctx + "expected a map, got " + describe(node));

  Rule rule;
  rule.where.file = file;
  rule.where.line = node.Mark().line + 1;
  rule.where.col = node.Mark().column + 1;

  // The id first, so that later messages can name the rule.
  for (const auto& kv : node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == "id") {
      Value v = value_of(kv.first, kv.second);
      rule.id = scalar(v, ctx, "id");
      if (auto e = detail::check_id(rule.id)) fail(v.mark, ctx + *e);
      ctx = "rule \"" + rule.id + "\": ";
    }
  }
  if (rule.id.empty()) fail(node.Mark(), ctx + "missing id");

  bool has_category = false;
  YAML::Mark subtype_mark = node.Mark(), suppress_mark = node.Mark();
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      fail(kv.first.Mark(), ctx + "expected a key, got " + describe(kv.first));
    const std::string& key = kv.first.Scalar();
    Value v = value_of(kv.first, kv.second);
    if (key == "id") {
      continue;
    } else if (key == "codes") {
      for (const Value& c : list(v, ctx, "codes")) rule.codes.push_back(reply_code(c, ctx));
    } else if (key == "enhanced") {
      rule.enhanced = scalar(v, ctx, "enhanced");
      if (!detail::parse_enhanced_match(rule.enhanced))
        fail(v.mark, ctx + "enhanced: bad enhanced code \"" + rule.enhanced +
                         "\" (e.g. \"5.1.1\", \"5.1.\", \"x.7.\")");
    } else if (key == "pattern") {
      rule.pattern = scalar(v, ctx, "pattern");
      if (auto e = detail::check_pattern(rule.pattern)) fail(v.mark, ctx + "pattern: " + *e);
    } else if (key == "provider") {
      rule.provider = scalar(v, ctx, "provider");
      if (auto e = detail::check_provider(rule.provider)) fail(v.mark, ctx + "provider: " + *e);
    } else if (key == "stages") {
      for (const Value& s : list(v, ctx, "stages")) {
        auto stage = parse_stage(scalar(s, ctx, "stages"));
        if (!stage)
          fail(s.mark, ctx + "stages: unknown stage " + describe(s.node) + " (expected one of: " +
                           expected_names(stage_name, static_cast<int>(Stage::kAny)) + ")");
        rule.stages.push_back(*stage);
      }
    } else if (key == "type") {
      auto type = parse_bounce_type(scalar(v, ctx, "type"));
      if (!type)
        fail(v.mark, ctx + "type: unknown type " + describe(v.node) +
                         " (expected one of: " + expected_names(type_name, 3) + ")");
      rule.type = *type;
    } else if (key == "subtype") {
      auto subtype = parse_subtype(scalar(v, ctx, "subtype"));
      if (!subtype)
        fail(v.mark, ctx + "subtype: unknown subtype " + describe(v.node) +
                         " (expected one of: " + expected_names(subtype_name, 8) + ")");
      rule.subtype = *subtype;
      subtype_mark = v.mark;
    } else if (key == "category") {
      auto category = parse_category(scalar(v, ctx, "category"));
      if (!category)
        fail(v.mark, ctx + "category: unknown category " + describe(v.node) +
                         " (expected one of: " + expected_names(category_name, 17) + ")");
      rule.category = *category;
      has_category = true;
    } else if (key == "suppress") {
      rule.suppress = boolean(v, ctx, "suppress");
      suppress_mark = v.mark;
    } else if (key == "throttle") {
      rule.throttle = boolean(v, ctx, "throttle");
    } else {
      fail(kv.first.Mark(), ctx + "unknown key \"" + key + "\"");
    }
  }
  if (!has_category) fail(node.Mark(), ctx + "missing category");
  if (auto e = detail::check_result(rule)) {
    bool pairing = rule.type && !subtype_valid_for(*rule.type, rule.subtype);
    fail(pairing ? subtype_mark : suppress_mark, ctx + *e);
  }
  return rule;
}

}  // namespace

core::Result<std::vector<Rule>> parse_rules(const std::string& yaml_text,
                                            const std::string& file_name) {
  std::vector<Rule> rules;
  auto st = rulefile::parse_rules(yaml_text, file_name, [&](const YAML::Node& item, size_t index) {
    rules.push_back(parse_rule(item, index, file_name));
    return rulefile::RuleId{rules.back().id, rules.back().where.line};
  });
  if (!st.ok()) return st.error();
  return rules;
}

core::Result<std::vector<Rule>> load_rules_file(const std::string& path) {
  auto text = rulefile::read_file(path);
  if (!text) return text.error();
  return parse_rules(*text, path);
}

}  // namespace mta::bounce
