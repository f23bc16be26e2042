#include "mta/rulefile/rulefile.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unordered_map>

namespace mta::rulefile {

void fail(const YAML::Mark& mark, std::string message) {
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

std::string at(const std::string& file, const YAML::Mark& mark) {
  if (mark.line < 0) return file + ": ";
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}

core::Status parse_rules(const std::string& yaml_text, const std::string& file,
                         const std::function<RuleId(const YAML::Node& item, size_t index)>& each) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return core::make_error(at(file, e.mark) + e.msg);
  }
  try {
    if (!root.IsMap()) fail(root.Mark(), "expected a map with a top-level \"rules\" list");
    bool has_rules = false;
    std::unordered_map<std::string, int> ids;  // id -> line
    for (const auto& kv : root) {
      if (!kv.first.IsScalar() || kv.first.Scalar() != "rules")
        fail(kv.first.Mark(), "unknown key " + describe(kv.first) + " (expected \"rules\")");
      has_rules = true;
      Value v = value_of(kv.first, kv.second);
      if (v.node.IsNull()) continue;  // "rules:" with nothing under it
      if (!v.node.IsSequence()) fail(v.mark, "rules: expected a list, got " + describe(v.node));
      size_t index = 0;
      for (const auto& item : v.node) {
        RuleId rid = each(item, index++);
        auto [it, inserted] = ids.emplace(rid.id, rid.line);
        if (!inserted) {
          // Point at the id's value, not at the rule.
          YAML::Mark mark = item.Mark();
          for (const auto& f : item)
            if (f.first.Scalar() == "id") mark = f.second.Mark();
          fail(mark, "duplicate rule id \"" + rid.id + "\" (first defined at line " +
                         std::to_string(it->second) + ")");
        }
      }
    }
    if (!has_rules) fail(root.Mark(), "missing the top-level \"rules\" list");
    return core::Ok{};
  } catch (const Failure& f) {
    return core::make_error(at(file, f.mark) + f.message);
  }
}

core::Result<std::string> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return core::make_error(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return core::make_error(path + ": cannot read");
  return text;
}

}  // namespace mta::rulefile
