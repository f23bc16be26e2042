// Tracking tokens: what a click, open or unsubscribe URL carries, signed so
// that the tracking listener needs no database to answer and can never be
// used as an open redirect.
//
// A token is base64url (RFC 4648 section 5, no padding) of
//   version(1) kind(1) message_id(16) sent_ms(varint) recipient(str)
//   configuration_set(str) [kClick: link_index(varint) url(str) link_tags(str)]
//   [kUnsubscribe: list_name(str) list_topic(str)]  mac(16)
// where str is varint length + bytes and mac is the first 128 bits of
// HMAC-SHA256(secret, "mta-tracking-v1" NUL payload). Every field is under
// the MAC, so the URL a click redirects to is exactly the one signed when
// the message was rendered. The alphabet (A-Z a-z 0-9 - _) has no '/' and
// no '.', so a token is one path segment and "/o/{token}.gif" splits
// unambiguously.
//
// The delivery side calls sign() once per link per recipient while it
// renders a copy; the tracking listener calls verify() on every request.
// Both are pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/id.hpp"

namespace mta::tracking {

enum class Kind : uint8_t { kOpen = 1, kClick = 2, kUnsubscribe = 3 };
const char* to_string(Kind k);  // "open" | "click" | "unsubscribe"

struct Claims {
  Kind kind = Kind::kOpen;
  core::MessageId message_id;
  std::string recipient;
  std::string configuration_set;
  // When the copy was rendered (about when it was delivered), Unix ms: for
  // the "within seconds of delivery" machine rules.
  int64_t sent_ms = 0;
  uint32_t link_index = 0;  // kClick: 0-based position of the link in the HTML
  std::string url;          // kClick: the exact original URL (entities decoded)
  std::string link_tags;    // kClick: SES ses:tags attribute value "k:v;k2:v2" ("" none)
  // kUnsubscribe: the queue::ListScope of the message: a contact list (and
  // topic) when list_name is not empty, else the configuration set.
  std::string list_name, list_topic;

  bool operator==(const Claims&) const = default;
};

// Tokens longer than this are refused before any decoding.
inline constexpr size_t kMaxTokenChars = 8192;
// Bytes of HMAC-SHA256 kept in a token (128 bits).
inline constexpr size_t kMacBytes = 16;

// The signed token of `c` (fields that do not belong to c.kind are not
// encoded: they verify as empty/0). `secret` must not be empty.
std::string sign(const Claims& c, std::string_view secret);

// The claims of a token signed with one of `secrets` (current first, then
// previous ones); nullopt when it is malformed, tampered with, too long, or
// signed by none of them. MACs are compared in constant time.
std::optional<Claims> verify(std::string_view token, const std::vector<std::string>& secrets);

// base64url without padding, exposed for tests and the rewriter.
std::string base64url_encode(std::string_view in);
// nullopt on a character outside the alphabet, padding, or an impossible length.
std::optional<std::string> base64url_decode(std::string_view in);

}  // namespace mta::tracking
