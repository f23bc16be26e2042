// URL pieces of the HTTP API, as pure functions: percent-decoding and
// -encoding (RFC 3986, as SigV4 canonicalises), form and query-string
// parsing (application/x-www-form-urlencoded), and SES's query-API member
// lists ("Destination.ToAddresses.member.1", "Tags.member.2.Name").
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mta::api {

// "%41" → "A"; with plus_is_space, '+' → ' ' (forms). nullopt on a bad
// escape ("%4", "%zz").
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

// RFC 3986: unreserved characters (A-Z a-z 0-9 - . _ ~) as they are,
// every other octet as %XX (upper-case hex); '/' kept when keep_slash.
std::string uri_encode(std::string_view s, bool keep_slash = false);

using Params = std::vector<std::pair<std::string, std::string>>;

// "a=1&b=x+y&c" → {a:1, b:"x y", c:""}, decoded, in order. nullopt on a
// bad escape.
std::optional<Params> parse_form(std::string_view body);

// The first value of `name`, or nullptr.
const std::string* find_param(const Params& params, std::string_view name);

// SES member lists. `prefix` "Destination.ToAddresses" collects
// "Destination.ToAddresses.member.N" (N = 1, 2, ...) in N order;
// `prefix` "Tags" with fields collects "Tags.member.N.Name" and
// ".Value" into one map per N. A numbering that is not 1..count, or an
// index that is not a number, is an error (the text names the parameter).
std::variant<std::vector<std::string>, std::string> member_list(const Params& params,
                                                                std::string_view prefix);
std::variant<std::vector<std::map<std::string, std::string>>, std::string> member_structs(
    const Params& params, std::string_view prefix);

}  // namespace mta::api
