#include "mta/api/auth.hpp"

#include <openssl/crypto.h>

#include <algorithm>

namespace mta::api {
namespace {

ApiError forbidden(std::string code, std::string message) {
  return ApiError{403, std::move(code), std::move(message)};
}

std::string header(const sigv4::Request& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size(); ++i)
      if ((n[i] | 0x20) != (name[i] | 0x20)) same = false;
    if (same) return v;
  }
  return {};
}

// Equal-length digests, so the comparison time says nothing about the secret.
bool same_secret(std::string_view a, std::string_view b) {
  std::string da = sigv4::hmac_sha256("mta-bearer", a), db = sigv4::hmac_sha256("mta-bearer", b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace

std::variant<const config::ApiKey*, ApiError> authenticate(const config::Http& http,
                                                           const sigv4::Request& request,
                                                           int64_t now_s) {
  std::string value = header(request, "Authorization");
  if (value.empty())
    return forbidden("MissingAuthenticationToken", "Request is missing Authentication Token");
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() > kBearer.size() && std::equal(kBearer.begin(), kBearer.end(), value.begin())) {
    std::string_view secret = std::string_view(value).substr(kBearer.size());
    const config::ApiKey* found = nullptr;
    for (const auto& k : http.api_keys)
      if (same_secret(k.secret, secret) && !found) found = &k;
    if (!found)
      return forbidden("InvalidClientTokenId",
                       "The security token included in the request is invalid.");
    return found;
  }
  auto auth = sigv4::parse_authorization(value);
  if (!auth)
    return forbidden("IncompleteSignature",
                     "Authorization header requires 'Credential', 'SignedHeaders' and "
                     "'Signature' (AWS4-HMAC-SHA256), or 'Bearer <secret>'");
  if (auth->service != "ses")
    return forbidden("SignatureDoesNotMatch",
                     "Credential should be scoped to correct service: 'ses'.");
  const config::ApiKey* key = nullptr;
  for (const auto& k : http.api_keys)
    if (k.id == auth->key_id) key = &k;
  if (!key)
    return forbidden("InvalidClientTokenId",
                     "The security token included in the request is invalid.");
  auto v = sigv4::verify(request, *auth, key->secret, now_s, kClockSkewSeconds);
  switch (v.failure) {
    case sigv4::Failure::kNone:
      return key;
    case sigv4::Failure::kMalformed:
      return forbidden("IncompleteSignature", v.message);
    case sigv4::Failure::kExpired:
    case sigv4::Failure::kMismatch:
      return forbidden("SignatureDoesNotMatch", v.message);
  }
  return forbidden("SignatureDoesNotMatch", v.message);
}

bool may_use_set(const config::ApiKey& key, std::string_view set) {
  if (key.configuration_sets.empty()) return true;
  return std::find(key.configuration_sets.begin(), key.configuration_sets.end(), set) !=
         key.configuration_sets.end();
}

}  // namespace mta::api
