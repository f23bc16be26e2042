// AWS Signature Version 4, the verifying side, as pure functions (no
// clock: the caller passes "now"). What boto3 sends is recorded in
// shared/research/ses-wire.md; the steps follow AWS's "Create a signed AWS
// API request": canonical request → string to sign → HMAC chain of the
// secret over date, region, service → hex signature. The canonical URI is
// the path as received (dot segments and empty segments removed) encoded
// once more, as every AWS service but S3 does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::api::sigv4 {

// "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/ses/aws4_request,
//  SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex>"
struct Authorization {
  std::string key_id;
  std::string date;  // YYYYMMDD
  std::string region;
  std::string service;
  std::string terminator;  // "aws4_request"
  std::vector<std::string> signed_headers;
  std::string signature;
};
std::optional<Authorization> parse_authorization(std::string_view value);

struct Request {
  std::string_view method;
  std::string_view path;                                     // raw, as in the request line
  std::string_view query;                                    // raw, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  std::string_view body;
};

std::string canonical_uri(std::string_view raw_path);
// nullopt on a bad percent-escape.
std::optional<std::string> canonical_query(std::string_view raw_query);
// nullopt when a signed header is missing or the query is malformed.
std::optional<std::string> canonical_request(const Request& r,
                                             const std::vector<std::string>& signed_headers);
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);
// The raw 32-byte key HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);
std::string signature(std::string_view signing_key, std::string_view string_to_sign);  // hex

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw
std::string hex(std::string_view raw);

// "20150830T123600Z" → Unix seconds; nullopt when malformed.
std::optional<int64_t> parse_amz_date(std::string_view text);

enum class Failure { kNone, kMalformed, kExpired, kMismatch };
struct Verdict {
  Failure failure = Failure::kNone;
  std::string message;  // for the 403 body
};

// Checks a request signed with `auth` against `secret`: X-Amz-Date signed
// and within `skew_s` of `now_s`, the scope's date matching it, host
// signed, and the signature (compared in constant time).
Verdict verify(const Request& r, const Authorization& auth, std::string_view secret, int64_t now_s,
               int64_t skew_s = 300);

}  // namespace mta::api::sigv4
