#include "mta/tracking/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>

#include "mta/core/result.hpp"

namespace mta::tracking {
namespace {

constexpr uint8_t kVersion = 1;
// Domain separation: the same secret could end up keying something else.
constexpr std::string_view kContext{"mta-tracking-v1\0", 16};
// Any token shorter than version + kind + id + sent_ms + two empty strings
// + MAC is malformed.
constexpr size_t kMinPayload = 1 + 1 + 16 + 1 + 1 + 1;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// Reads what put_varint/put_str wrote; any overrun or non-minimal
// encoding fails the whole token.
struct Reader {
  std::string_view in;
  bool ok = true;

  uint8_t u8() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return b;
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8();
      if (!ok) return 0;
      if (shift == 63 && b > 1) break;  // beyond 64 bits
      if (shift > 0 && b == 0) break;   // non-minimal
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string str() {
    uint64_t n = varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

std::string payload_of(const Claims& c) {
  std::string p;
  p.reserve(64 + c.recipient.size() + c.url.size() + c.link_tags.size());
  p.push_back(static_cast<char>(kVersion));
  p.push_back(static_cast<char>(c.kind));
  p.append(c.message_id.key());
  put_varint(p, static_cast<uint64_t>(c.sent_ms < 0 ? 0 : c.sent_ms));
  put_str(p, c.recipient);
  put_str(p, c.configuration_set);
  if (c.kind == Kind::kClick) {
    put_varint(p, c.link_index);
    put_str(p, c.url);
    put_str(p, c.link_tags);
  } else if (c.kind == Kind::kUnsubscribe) {
    put_str(p, c.list_name);
    put_str(p, c.list_topic);
  }
  return p;
}

// HMAC-SHA256 keyed by `secret`. The keyed context is set up once per
// secret and thread, then copied for each MAC: fetching the algorithm and
// hashing the key every time cost about as much as the MAC itself.
struct MacCtxFree {
  void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

EVP_MAC_CTX* keyed_context(std::string_view secret) {
  thread_local std::unordered_map<std::string, MacCtx> cache;
  auto it = cache.find(std::string(secret));
  if (it != cache.end()) return it->second.get();
  if (cache.size() >= 16) cache.clear();  // secrets rotate rarely: stay small
  static EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (!hmac) MTA_PANIC("OpenSSL has no HMAC");
  MacCtx ctx(EVP_MAC_CTX_new(hmac));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!ctx || !EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()),
                            secret.size(), params))
    MTA_PANIC("HMAC-SHA256 init failed");
  return cache.emplace(std::string(secret), std::move(ctx)).first->second.get();
}

std::array<unsigned char, EVP_MAX_MD_SIZE> mac_of(std::string_view payload,
                                                  std::string_view secret) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  MacCtx ctx(EVP_MAC_CTX_dup(keyed_context(secret)));
  size_t len = 0;
  if (!ctx ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(kContext.data()),
                      kContext.size()) ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(payload.data()),
                      payload.size()) ||
      !EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) || len != 32)
    MTA_PANIC("HMAC-SHA256 failed");
  return out;
}

}  // namespace

const char* to_string(Kind k) {
  switch (k) {
    case Kind::kOpen:
      return "open";
    case Kind::kClick:
      return "click";
    case Kind::kUnsubscribe:
      return "unsubscribe";
  }
  return "?";
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  size_t rest = in.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
  };
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // The leftover bits must be zero: one encoding per byte string.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string sign(const Claims& c, std::string_view secret) {
  std::string p = payload_of(c);
  auto mac = mac_of(p, secret);
  p.append(reinterpret_cast<const char*>(mac.data()), kMacBytes);
  return base64url_encode(p);
}

std::optional<Claims> verify(std::string_view token, const std::vector<std::string>& secrets) {
  if (token.size() > kMaxTokenChars || token.empty()) return std::nullopt;
  auto raw = base64url_decode(token);
  if (!raw || raw->size() < kMinPayload + kMacBytes) return std::nullopt;
  std::string_view payload(raw->data(), raw->size() - kMacBytes);
  const unsigned char* given = reinterpret_cast<const unsigned char*>(raw->data()) + payload.size();
  bool signed_ok = false;
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    auto mac = mac_of(payload, s);
    if (CRYPTO_memcmp(mac.data(), given, kMacBytes) == 0) {
      signed_ok = true;
      break;
    }
  }
  if (!signed_ok) return std::nullopt;

  // Signed by us: still parse strictly (a token of a future version, or a
  // bug, must not half-decode).
  Reader r{payload};
  if (r.u8() != kVersion) return std::nullopt;
  uint8_t kind = r.u8();
  if (kind < 1 || kind > 3) return std::nullopt;
  Claims c;
  c.kind = static_cast<Kind>(kind);
  if (r.in.size() < 16) return std::nullopt;
  c.message_id = *core::MessageId::from_key(r.in.substr(0, 16));
  r.in.remove_prefix(16);
  uint64_t sent = r.varint();
  if (sent > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  c.sent_ms = static_cast<int64_t>(sent);
  c.recipient = r.str();
  c.configuration_set = r.str();
  if (c.kind == Kind::kClick) {
    uint64_t idx = r.varint();
    if (idx > UINT32_MAX) return std::nullopt;
    c.link_index = static_cast<uint32_t>(idx);
    c.url = r.str();
    c.link_tags = r.str();
  } else if (c.kind == Kind::kUnsubscribe) {
    c.list_name = r.str();
    c.list_topic = r.str();
  }
  if (!r.ok || !r.in.empty()) return std::nullopt;
  return c;
}

}  // namespace mta::tracking
