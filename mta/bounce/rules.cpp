// Rules files: YAML -> std::vector<Rule>, with every error pointing at the
// offending node as "FILE:LINE:COL: message" (yaml-cpp marks are 0-based).

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "mta/bounce/classifier.hpp"
#include "mta/bounce/rule_check.hpp"

namespace mta::bounce {

namespace {

// Parsing stops at the first error by throwing this; parse_rules() turns it
// into an Error. Nothing else sees it.
struct Failure {
  YAML::Mark mark;
  std::string message;
};

[[noreturn]] void fail(const YAML::Mark& mark, std::string message) {
  throw Failure{mark, std::move(message)};
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "\"" + node.Scalar() + "\"";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

// A value with the mark to report it at: its own, or its key's when the value
// is empty (yaml-cpp gives null nodes no position).
struct Value {
  YAML::Node node;
  YAML::Mark mark;
};

Value value_of(const YAML::Node& key, const YAML::Node& node) {
  YAML::Mark m = node.Mark();
  if (m.line < 0 || node.IsNull()) m = key.Mark();
  return {node, m};
}

const std::string& scalar(const Value& v, const std::string& ctx, const char* what) {
  if (!v.node.IsScalar()) fail(v.mark, ctx + what + ": expected a string, got " + describe(v.node));
  return v.node.Scalar();
}

bool boolean(const Value& v, const std::string& ctx, const char* what) {
  if (v.node.IsScalar()) {
    const std::string& s = v.node.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  fail(v.mark, ctx + what + ": expected true or false, got " + describe(v.node));
}

// A list, or a single scalar standing for a list of one.
std::vector<Value> list(const Value& v, const std::string& ctx, const char* what) {
  std::vector<Value> out;
  if (v.node.IsScalar()) {
    out.push_back(v);
  } else if (v.node.IsSequence()) {
    for (const auto& item : v.node) out.push_back({item, item.Mark()});
  } else {
    fail(v.mark, ctx + what + ": expected a list, got " + describe(v.node));
  }
  return out;
}

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

std::string at(const std::string& file, const YAML::Mark& mark) {
  if (mark.line < 0) return file + ": ";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}

}  // namespace

core::Result<std::vector<Rule>> parse_rules(const std::string& yaml_text,
                                            const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return core::make_error(at(file_name, e.mark) + e.msg);
  }
  try {
    if (!root.IsMap()) fail(root.Mark(), "expected a map with a top-level \"rules\" list");
    std::vector<Rule> rules;
    bool has_rules = false;
    std::unordered_map<std::string, RuleSource> ids;
    for (const auto& kv : root) {
      if (!kv.first.IsScalar() || kv.first.Scalar() != "rules")
        fail(kv.first.Mark(), "unknown key " + describe(kv.first) + " (expected \"rules\")");
      has_rules = true;
      Value v = value_of(kv.first, kv.second);
      if (v.node.IsNull()) continue;  // "rules:" with nothing under it
      if (!v.node.IsSequence()) fail(v.mark, "rules: expected a list, got " + describe(v.node));
      size_t index = 0;
      for (const auto& item : v.node) {
        Rule rule = parse_rule(item, index++, file_name);
        auto [it, inserted] = ids.emplace(rule.id, rule.where);
        if (!inserted) {
          // Point at the id's value, not at the rule.
          YAML::Mark mark = item.Mark();
          for (const auto& f : item)
            if (f.first.Scalar() == "id") mark = f.second.Mark();
          fail(mark, "duplicate rule id \"" + rule.id + "\" (first defined at line " +
                         std::to_string(it->second.line) + ")");
        }
        rules.push_back(std::move(rule));
      }
    }
    if (!has_rules) fail(root.Mark(), "missing the top-level \"rules\" list");
    return rules;
  } catch (const Failure& f) {
    return core::make_error(at(file_name, f.mark) + f.message);
  }
}

core::Result<std::vector<Rule>> load_rules_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return core::make_error(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return core::make_error(path + ": cannot read");
  return parse_rules(text, path);
}

}  // namespace mta::bounce
