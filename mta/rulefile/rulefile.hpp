// Rules files: the shared reading side of our YAML rule sets (bounce rules,
// tracking machine rules): a top-level `rules:` list of maps with unique
// ids, every error reported as FILE:LINE:COL: message.
//
// A parser of one rule throws Failure (through fail() and the typed getters
// below) at the first problem; parse_rules() turns it into the error.
// Only modules that link yaml-cpp include this header.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mta/core/result.hpp"

namespace mta::rulefile {

struct Failure {
  YAML::Mark mark;
  std::string message;
};

[[noreturn]] void fail(const YAML::Mark& mark, std::string message);

// "\"text\"", "a list", "a map" or "nothing", for error messages.
std::string describe(const YAML::Node& node);

// A value with the mark to report it at: its own, or its key's when the
// value is empty (yaml-cpp gives null nodes no position).
struct Value {
  YAML::Node node;
  YAML::Mark mark;
};
Value value_of(const YAML::Node& key, const YAML::Node& node);

// Typed getters; `ctx` + `what` name the value in the error ("rule 3
// (id x): " + "user_agent").
const std::string& scalar(const Value& v, const std::string& ctx, const char* what);
bool boolean(const Value& v, const std::string& ctx, const char* what);  // true | false
// A list, or a single scalar standing for a list of one.
std::vector<Value> list(const Value& v, const std::string& ctx, const char* what);

// "FILE:LINE:COL: " (or "FILE: " without a position).
std::string at(const std::string& file, const YAML::Mark& mark);

// The id and line of a parsed rule, for the uniqueness check.
struct RuleId {
  std::string id;
  int line = 0;
};

// Parses `yaml_text` (named `file` in errors) as a map with one key,
// `rules`, a list: calls `each(item, index)` for every item, which parses
// it (throwing Failure on a problem) and returns its id. Duplicate ids are
// errors at the second one's id.
core::Status parse_rules(const std::string& yaml_text, const std::string& file,
                         const std::function<RuleId(const YAML::Node& item, size_t index)>& each);

// The whole file; errors "PATH: cannot open: ..." / "PATH: cannot read".
core::Result<std::string> read_file(const std::string& path);

}  // namespace mta::rulefile
