// Webhook signatures, Stripe-style: the receiver recomputes
//   hex(HMAC-SHA256(secret, timestamp + "." + body))
// from the X-MTA-Timestamp header and the raw request body, compares it
// with X-MTA-Signature ("sha256=<hex>") in constant time, and refuses
// timestamps too far from its clock, so a captured request cannot be
// replayed later.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mta::webhook {

// "sha256=<64 lowercase hex digits>".
std::string signature(std::string_view secret, int64_t unix_seconds, std::string_view body);

// Lowercase hex of HMAC-SHA256(key, data) (exposed for tests).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace mta::webhook
