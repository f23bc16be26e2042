#include "mta/rewrite/codec.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace mta::rewrite::detail {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr size_t kQpMaxLine = 76;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void qp_decode_span(std::string_view s, std::string& dec) {
  size_t i = 0;
  while (i < s.size()) {
    const void* eq = std::memchr(s.data() + i, '=', s.size() - i);
    size_t e = eq ? static_cast<size_t>(static_cast<const char*>(eq) - s.data()) : s.size();
    dec.append(s.data() + i, e - i);
    if (e == s.size()) return;
    int hi = e + 1 < s.size() ? hex_value(s[e + 1]) : -1;
    int lo = e + 2 < s.size() ? hex_value(s[e + 2]) : -1;
    if (hi >= 0 && lo >= 0) {
      dec += static_cast<char>(hi * 16 + lo);
      i = e + 3;
    } else {
      dec += '=';  // not an escape: keep it (RFC 2045 6.7 note 1)
      i = e + 1;
    }
  }
}

// What one octet becomes in QP (outside of line-end handling).
bool qp_literal(unsigned char c) {
  return (c >= 33 && c <= 126 && c != '=') || c == ' ' || c == '\t';
}

}  // namespace

void qp_decode(std::string_view enc, std::string& dec, std::vector<QpLine>& lines) {
  size_t i = 0;
  const size_t n = enc.size();
  while (i < n) {
    const void* nl = std::memchr(enc.data() + i, '\n', n - i);
    size_t le = nl ? static_cast<size_t>(static_cast<const char*>(nl) - enc.data()) : n;
    size_t ce = le;
    if (nl && ce > i && enc[ce - 1] == '\r') --ce;
    size_t te = ce;
    while (te > i && (enc[te - 1] == ' ' || enc[te - 1] == '\t')) --te;
    size_t next = nl ? le + 1 : n;
    if (te > i && enc[te - 1] == '=') {
      qp_decode_span(enc.substr(i, te - 1 - i), dec);  // soft break
      lines.push_back({next, dec.size(), true});
    } else {
      qp_decode_span(enc.substr(i, te - i), dec);
      if (nl) dec += "\r\n";
      lines.push_back({next, dec.size(), false});
    }
    i = next;
  }
  if (lines.empty()) lines.push_back({n, dec.size(), false});
}

void qp_encode(std::string_view d, std::string& out, bool soft_end) {
  static const auto kLiteral = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = qp_literal(static_cast<unsigned char>(c));
    return t;
  }();
  const size_t n = d.size();
  const size_t base = out.size();
  // Worst case: every octet as =XX and a soft break every 24 of them.
  out.resize(base + n * 3 + (n / 20 + 1) * 3);
  char* o = out.data() + base;
  size_t col = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(d[i]);
    if (c == '\r' && i + 1 < n && d[i + 1] == '\n') {
      *o++ = '\r';
      *o++ = '\n';
      col = 0;
      ++i;
      continue;
    }
    bool literal = kLiteral[c];
    size_t w = literal ? 1 : 3;
    const bool space = c == ' ' || c == '\t';
    if (col + w > kQpMaxLine - 1 || space) {
      const bool last_on_line =
          (i + 1 == n && !soft_end) || (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n');
      if (space && last_on_line) {  // white space at the end of a line is lost in transport
        literal = false;
        w = 3;
      }
      // Keep room for the soft-break "=" unless this is the line's last token.
      if (col + w > (last_on_line ? kQpMaxLine : kQpMaxLine - 1)) {
        *o++ = '=';
        *o++ = '\r';
        *o++ = '\n';
        col = 0;
      }
    }
    if (literal) {
      *o++ = static_cast<char>(c);
    } else {
      *o++ = '=';
      *o++ = kHex[c >> 4];
      *o++ = kHex[c & 15];
    }
    col += w;
  }
  out.resize(static_cast<size_t>(o - out.data()));
}

void base64_lines(std::string_view in, std::string& out) {
  const size_t n = in.size();
  const size_t quads = (n + 2) / 3;
  const size_t lines = (quads + 18) / 19;  // 19 quads = 76 characters
  const size_t base = out.size();
  out.resize(base + quads * 4 + (lines ? (lines - 1) * 2 : 0));
  char* o = out.data() + base;
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t full = n / 3;  // complete groups
  size_t q = 0;
  while (full > 0) {
    if (q) {
      *o++ = '\r';
      *o++ = '\n';
    }
    size_t k = full < 19 ? full : 19;
    for (size_t j = 0; j < k; ++j, p += 3) {
      uint32_t v = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
      o[0] = kB64[(v >> 18) & 63];
      o[1] = kB64[(v >> 12) & 63];
      o[2] = kB64[(v >> 6) & 63];
      o[3] = kB64[v & 63];
      o += 4;
    }
    full -= k;
    q += k;
  }
  const size_t rest = n % 3;
  if (rest) {
    if (q && q % 19 == 0) {
      *o++ = '\r';
      *o++ = '\n';
    }
    uint32_t v = uint32_t{p[0]} << 16;
    if (rest == 2) v |= uint32_t{p[1]} << 8;
    *o++ = kB64[(v >> 18) & 63];
    *o++ = kB64[(v >> 12) & 63];
    *o++ = rest == 2 ? kB64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
}

bool base64_decode(std::string_view in, std::string& out) {
  static const auto kTable = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int k = 0; k < 64; ++k) t[static_cast<uint8_t>(kB64[k])] = static_cast<int8_t>(k);
    return t;
  }();
  const size_t base = out.size();
  out.resize(base + in.size() / 4 * 3 + 3);
  char* o = out.data() + base;
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : in) {
    if (c == '\r' || c == '\n' || c == ' ' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int8_t v = kTable[static_cast<uint8_t>(c)];
    if (v < 0 || pad) {  // not base64, or data after the padding
      out.resize(base);
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *o++ = static_cast<char>((acc >> bits) & 0xff);
    }
  }
  out.resize(static_cast<size_t>(o - out.data()));
  if (pad > 2 || bits >= 6) {  // leftover bits must be the last group's zero padding
    out.resize(base);
    return false;
  }
  return true;
}

}  // namespace mta::rewrite::detail
