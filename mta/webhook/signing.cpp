#include "mta/webhook/signing.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mta/core/result.hpp"

namespace mta::webhook {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len))
    MTA_PANIC("HMAC-SHA256 failed");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[mac[i] >> 4]);
    out.push_back(kDigits[mac[i] & 0xf]);
  }
  return out;
}

std::string signature(std::string_view secret, int64_t unix_seconds, std::string_view body) {
  std::string signed_text = std::to_string(unix_seconds);
  signed_text += '.';
  signed_text.append(body);
  return "sha256=" + hmac_sha256_hex(secret, signed_text);
}

}  // namespace mta::webhook
