// RFC 5322 message edits used at intake and before delivery: finding the
// header block, reading (unfolded) header values, removing and prepending
// header fields, and SES's X-SES-MESSAGE-TAGS list. The body is never
// touched or copied beyond what an edit needs; all functions take the raw
// message with CRLF line ends.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::protocol {

// Size of the header block including the blank line that ends it
// ("...\r\n\r\n"). A message without a blank line is all header; the result
// is then message.size().
size_t header_block_size(std::string_view message);

struct HeaderField {
  std::string_view name;      // as written, e.g. "Subject"
  std::string_view raw;       // the whole field including folded lines and its final CRLF
  std::string value() const;  // unfolded (CRLF+WSP → WSP), leading/trailing WSP trimmed
};

// The fields of the header block, in order. Lines that are not fields
// (no colon, or a leading continuation without a field) are skipped.
std::vector<HeaderField> header_fields(std::string_view message);

// First value of the named field (case-insensitive), unfolded.
std::optional<std::string> header_value(std::string_view message, std::string_view name);

// Removes every field whose name matches one of `names` (case-insensitive)
// from the header block in place; returns how many were removed.
size_t remove_headers(std::string& message, const std::vector<std::string_view>& names);

// Parses "k1=v1, k2=v2" (SES message tags). Names and values: 1..256 of
// [A-Za-z0-9_-.@] (SES allows letters, digits, '_', '-'; we also take '.'
// and '@'). An empty list is fine. nullopt with a reason on error.
struct TagsResult {
  std::vector<std::pair<std::string, std::string>> tags;
  std::optional<std::string> error;
};
TagsResult parse_tags(std::string_view value);

// Folds a header field value at whitespace so no line exceeds 78 octets
// where possible; returns "Name: value\r\n" with CRLF+SP continuations.
std::string format_header(std::string_view name, std::string_view value);

// RFC 5322 date-time, e.g. "Fri, 27 Nov 2026 05:11:31 +0000", for a Unix
// time in seconds, in UTC.
std::string rfc5322_date(int64_t unix_seconds);

}  // namespace mta::protocol

namespace mta::protocol {

// The DATA payload for a message (RFC 5321 4.5.2): every line starting with
// "." gets another ".", the message ends with CRLF, and the terminating
// ".\r\n" is appended.
std::string dot_stuff(std::string_view message);

}  // namespace mta::protocol
