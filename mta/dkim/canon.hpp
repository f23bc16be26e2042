// The pieces of RFC 6376 the native signer needs: splitting a message into
// header fields and body, "relaxed" canonicalization of both (3.4.2, 3.4.4)
// and choosing header field instances for h= (5.4.2). Pure functions on
// CRLF text; no crypto.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::dkim {

struct HeaderField {
  std::string_view name;  // as written, without trailing whitespace
  std::string_view raw;   // the whole field, continuation lines included, without the final CRLF
};

struct ParsedMessage {
  std::vector<HeaderField> fields;  // top to bottom
  std::string_view body;            // after the empty line; empty when there is none
};

// nullopt with `error` set when a header line has no colon or an empty name.
std::optional<ParsedMessage> parse_message(std::string_view message, std::string* error);

// Appends "name:value\r\n", relaxed: name lowercased, value unfolded, runs of
// SP/HTAB made one SP, whitespace around the value removed. `crlf` false
// leaves the CRLF off (the DKIM-Signature field itself is hashed so).
void relaxed_header(std::string_view raw_field, std::string& out, bool crlf = true);

// The relaxed body, given to `sink` in pieces: trailing whitespace of each
// line dropped, runs of SP/HTAB made one SP, empty lines at the end dropped,
// a final CRLF added to a non-empty body that lacks one.
void relaxed_body(std::string_view body, const std::function<void(std::string_view)>& sink);

// h=: each field of `fields` whose name is in `sign` (case-insensitive), top
// to bottom, then each name of `oversign` once more. Names as in the lists.
std::vector<std::string> header_list(const std::vector<HeaderField>& fields,
                                     const std::vector<std::string>& sign,
                                     const std::vector<std::string>& oversign);

// The instances h= selects, in h= order: the n-th occurrence of a name picks
// the n-th field of that name from the bottom; names with no field left
// select nothing.
std::vector<const HeaderField*> select_fields(const std::vector<HeaderField>& fields,
                                              const std::vector<std::string>& h);

bool iequals(std::string_view a, std::string_view b);

}  // namespace mta::dkim
