// Who is calling: AWS Signature V4 (service "ses", any region, X-Amz-Date
// within 5 minutes of our clock, as SES allows) or "Authorization: Bearer
// <secret>", checked against http.api_keys. Pure: the caller passes the
// request and the time. Every failure is a 403 in SES's terms
// (MissingAuthenticationToken, IncompleteSignature, InvalidClientTokenId,
// SignatureDoesNotMatch), and says nothing about which keys exist.
#pragma once

#include <cstdint>
#include <variant>

#include "mta/api/ses.hpp"
#include "mta/api/sigv4.hpp"
#include "mta/config/config.hpp"

namespace mta::api {

inline constexpr int64_t kClockSkewSeconds = 300;

std::variant<const config::ApiKey*, ApiError> authenticate(const config::Http& http,
                                                           const sigv4::Request& request,
                                                           int64_t now_s);

// Whether `key` may send with configuration set `set`.
bool may_use_set(const config::ApiKey& key, std::string_view set);

}  // namespace mta::api
