// Private to mta/bounce: the checks one rule must pass, shared by the YAML
// parser (which points at the offending node) and Classifier::build (which
// also takes rules built in code).
#pragma once

#include <re2/re2.h>

#include <optional>
#include <string>
#include <string_view>

#include "mta/bounce/classifier.hpp"

namespace mta::bounce::detail {

// The options every pattern is compiled with: case-insensitive, bytes
// (Latin-1, so any reply text is valid input), no captures.
RE2::Options pattern_options();

// A parsed `enhanced:` condition; -1 is a wildcard.
struct EnhancedMatch {
  int cls = -1;
  int subject = -1;
  int detail = -1;
};

// "5.1.1", "5.1.", "5.", "x.7.1", "x.1." ; nullopt when malformed.
std::optional<EnhancedMatch> parse_enhanced_match(std::string_view s);

// Each returns an error message, or nullopt when the value is fine.
std::optional<std::string> check_code(int code);
std::optional<std::string> check_pattern(const std::string& pattern);
std::optional<std::string> check_provider(std::string_view provider);
std::optional<std::string> check_id(std::string_view id);
// Cross-field checks: SES type/subtype pairing, suppress only with a type
// that can be Permanent.
std::optional<std::string> check_result(const Rule& rule);
// Everything above, for a rule built in code.
std::optional<std::string> check_rule(const Rule& rule);

// "FILE:LINE:COL: " for a rule, or "rule ID: " when it has no file.
std::string location(const Rule& rule);
// "FILE:LINE:COL", or "rule ID" when it has no file.
std::string position(const Rule& rule);

}  // namespace mta::bounce::detail
