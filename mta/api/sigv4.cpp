#include "mta/api/sigv4.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>

#include "mta/api/form.hpp"
#include "mta/core/text.hpp"

namespace mta::api::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

// Header values: trimmed, runs of spaces collapsed to one.
std::string canonical_value(std::string_view v) {
  v = core::trim_wsp(v);
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? p : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string hex(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) {
    auto u = static_cast<unsigned char>(c);
    out += kHex[u >> 4];
    out += kHex[u & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return hex({reinterpret_cast<const char*>(md), sizeof md});
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::optional<Authorization> parse_authorization(std::string_view value) {
  value = core::trim_wsp(value);
  if (value.substr(0, kAlgorithm.size()) != kAlgorithm) return std::nullopt;
  value.remove_prefix(kAlgorithm.size());
  if (value.empty() || (value.front() != ' ' && value.front() != '\t')) return std::nullopt;
  Authorization a;
  bool cred = false, signed_h = false, sig = false;
  for (auto part : split(value, ',')) {
    part = core::trim_wsp(part);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    auto name = part.substr(0, eq);
    auto v = part.substr(eq + 1);
    if (name == "Credential" && !cred) {
      auto f = split(v, '/');
      if (f.size() != 5) return std::nullopt;
      a.key_id = f[0];
      a.date = f[1];
      a.region = f[2];
      a.service = f[3];
      a.terminator = f[4];
      if (a.key_id.empty() || a.date.size() != 8 || !all_digits(a.date) || a.region.empty())
        return std::nullopt;
      cred = true;
    } else if (name == "SignedHeaders" && !signed_h) {
      for (auto h : split(v, ';')) {
        if (h.empty()) return std::nullopt;
        a.signed_headers.push_back(core::ascii_lower(h));
      }
      signed_h = true;
    } else if (name == "Signature" && !sig) {
      a.signature = v;
      if (a.signature.size() != 64) return std::nullopt;
      sig = true;
    } else {
      return std::nullopt;
    }
  }
  if (!cred || !signed_h || !sig) return std::nullopt;
  return a;
}

std::string canonical_uri(std::string_view raw_path) {
  std::vector<std::string_view> out;
  for (auto seg : split(raw_path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  std::string path = "/";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) path += '/';
    path += out[i];
  }
  if (!out.empty() && !raw_path.empty() && raw_path.back() == '/') path += '/';
  return uri_encode(path, true);
}

std::optional<std::string> canonical_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  if (!raw_query.empty()) {
    for (auto p : split(raw_query, '&')) {
      if (p.empty()) continue;
      size_t eq = p.find('=');
      auto k = percent_decode(p.substr(0, eq), false);
      auto v = eq == std::string_view::npos ? std::optional<std::string>("")
                                            : percent_decode(p.substr(eq + 1), false);
      if (!k || !v) return std::nullopt;
      pairs.emplace_back(uri_encode(*k), uri_encode(*v));
    }
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::optional<std::string> canonical_request(const Request& r,
                                             const std::vector<std::string>& signed_headers) {
  auto query = canonical_query(r.query);
  if (!query) return std::nullopt;
  std::string out;
  out += r.method;
  out += '\n';
  out += canonical_uri(r.path);
  out += '\n';
  out += *query;
  out += '\n';
  std::string list;
  for (const auto& name : signed_headers) {
    std::string joined;
    bool found = false;
    for (const auto& [n, v] : r.headers) {
      if (core::ascii_lower(n) != name) continue;
      if (found) joined += ',';
      joined += canonical_value(v);
      found = true;
    }
    if (!found) return std::nullopt;
    out += name;
    out += ':';
    out += joined;
    out += '\n';
    if (!list.empty()) list += ';';
    list += name;
  }
  out += '\n';
  out += list;
  out += '\n';
  out += sha256_hex(r.body);
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out += '\n';
  out += amz_date;
  out += '\n';
  out += scope;
  out += '\n';
  out += sha256_hex(canonical_request);
  return out;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  std::string k = hmac_sha256("AWS4" + std::string(secret), date);
  k = hmac_sha256(k, region);
  k = hmac_sha256(k, service);
  return hmac_sha256(k, "aws4_request");
}

std::string signature(std::string_view signing_key, std::string_view string_to_sign) {
  return hex(hmac_sha256(signing_key, string_to_sign));
}

std::optional<int64_t> parse_amz_date(std::string_view t) {
  if (t.size() != 16 || t[8] != 'T' || t[15] != 'Z' || !all_digits(t.substr(0, 8)) ||
      !all_digits(t.substr(9, 6)))
    return std::nullopt;
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (t[i] - '0');
    return v;
  };
  using namespace std::chrono;
  year_month_day ymd{year{num(0, 4)}, month{static_cast<unsigned>(num(4, 2))},
                     day{static_cast<unsigned>(num(6, 2))}};
  int hh = num(9, 2), mm = num(11, 2), ss = num(13, 2);
  if (!ymd.ok() || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  auto days = sys_days(ymd).time_since_epoch().count();
  return static_cast<int64_t>(days) * 86400 + hh * 3600 + mm * 60 + ss;
}

Verdict verify(const Request& r, const Authorization& auth, std::string_view secret, int64_t now_s,
               int64_t skew_s) {
  auto is_signed = [&](std::string_view h) {
    return std::find(auth.signed_headers.begin(), auth.signed_headers.end(), h) !=
           auth.signed_headers.end();
  };
  if (auth.terminator != "aws4_request")
    return {Failure::kMalformed,
            "Credential should be scoped with a valid terminator: 'aws4_request'"};
  if (!is_signed("host")) return {Failure::kMalformed, "The host header must be signed"};
  std::string amz_date;
  for (const auto& [n, v] : r.headers)
    if (core::ascii_lower(n) == "x-amz-date") amz_date = std::string(core::trim_wsp(v));
  if (amz_date.empty() || !is_signed("x-amz-date"))
    return {Failure::kMalformed, "X-Amz-Date must be present and signed"};
  auto t = parse_amz_date(amz_date);
  if (!t) return {Failure::kMalformed, "X-Amz-Date is not in the form YYYYMMDD'T'HHMMSS'Z'"};
  if (amz_date.compare(0, 8, auth.date) != 0)
    return {Failure::kMalformed, "The Credential's date does not match X-Amz-Date"};
  if (*t < now_s - skew_s || *t > now_s + skew_s)
    return {Failure::kExpired, "Signature expired: " + amz_date + " is more than " +
                                   std::to_string(skew_s / 60) +
                                   " minutes away from the server's time"};
  auto creq = canonical_request(r, auth.signed_headers);
  if (!creq) return {Failure::kMalformed, "A signed header is missing or the query is malformed"};
  std::string scope = auth.date + "/" + auth.region + "/" + auth.service + "/" + auth.terminator;
  std::string want = signature(signing_key(secret, auth.date, auth.region, auth.service),
                               string_to_sign(amz_date, scope, *creq));
  std::string got = core::ascii_lower(auth.signature);
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0)
    return {Failure::kMismatch,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."};
  return {};
}

}  // namespace mta::api::sigv4
