#include "mta/rewrite/mime.hpp"

#include <cstring>
#include <optional>
#include <string>

namespace mta::rewrite::detail {
namespace {

constexpr int kMaxDepth = 32;

constexpr char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
constexpr bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}
std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_wsp(s.front()) || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (is_wsp(s.back()) || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// One line of [i, e): content [i, ce), next line at `next`; `has_nl` false
// for a last line without a line end.
struct Line {
  size_t ce, next;
  bool has_nl;
};
Line line_at(std::string_view m, size_t i, size_t e) {
  const void* nl = std::memchr(m.data() + i, '\n', e - i);
  if (!nl) return {e, e, false};
  size_t le = static_cast<size_t>(static_cast<const char*>(nl) - m.data());
  size_t ce = le > i && m[le - 1] == '\r' ? le - 1 : le;
  return {ce, le + 1, true};
}

struct Entity {
  std::string_view header;  // the header section, line ends included
  std::optional<size_t> body_begin;
};

Entity split_entity(std::string_view m, size_t b, size_t e) {
  size_t i = b;
  while (i < e) {
    Line l = line_at(m, i, e);
    if (l.ce == i) {
      if (!l.has_nl) break;
      return {m.substr(b, i - b), l.next};
    }
    i = l.next;
  }
  return {m.substr(b, e - b), std::nullopt};
}

// The unfolded value of the first `name` field of `header`.
std::optional<std::string> field(std::string_view header, std::string_view name) {
  size_t i = 0;
  while (i < header.size()) {
    Line l = line_at(header, i, header.size());
    std::string_view line = header.substr(i, l.ce - i);
    i = l.next;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || line.empty() || is_wsp(line[0])) continue;
    std::string_view fname = line.substr(0, colon);
    while (!fname.empty() && is_wsp(fname.back())) fname.remove_suffix(1);
    if (!iequals(fname, name)) continue;
    std::string value(line.substr(colon + 1));
    while (i < header.size() && is_wsp(header[i])) {  // continuation lines
      Line c = line_at(header, i, header.size());
      value.append(header.substr(i, c.ce - i));
      i = c.next;
    }
    return value;
  }
  return std::nullopt;
}

struct ContentType {
  std::string type = "text", subtype = "plain";
  std::string boundary, charset;
};

// Skips white space and (nested) comments.
void skip_cfws(std::string_view s, size_t& i) {
  for (;;) {
    while (i < s.size() && (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n')) ++i;
    if (i >= s.size() || s[i] != '(') return;
    int depth = 0;
    while (i < s.size()) {
      char c = s[i++];
      if (c == '\\') {
        if (i < s.size()) ++i;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        break;
      }
    }
  }
}

bool is_tspecial_or_space(char c) {
  return std::strchr("()<>@,;:\\\"/[]?= \t\r\n", c) != nullptr || c == '\0';
}

std::string token(std::string_view s, size_t& i) {
  size_t b = i;
  while (i < s.size() && !is_tspecial_or_space(s[i])) ++i;
  return std::string(s.substr(b, i - b));
}

// RFC 2045 5.1; nullopt when the syntax is not valid (then the default
// applies).
std::optional<ContentType> parse_content_type(std::string_view v) {
  ContentType ct;
  size_t i = 0;
  skip_cfws(v, i);
  ct.type = to_lower(token(v, i));
  skip_cfws(v, i);
  if (ct.type.empty() || i >= v.size() || v[i] != '/') return std::nullopt;
  ++i;
  skip_cfws(v, i);
  ct.subtype = to_lower(token(v, i));
  if (ct.subtype.empty()) return std::nullopt;
  for (;;) {
    skip_cfws(v, i);
    if (i >= v.size()) break;
    if (v[i] != ';') {  // junk: skip to the next parameter
      size_t semi = v.find(';', i);
      if (semi == std::string_view::npos) break;
      i = semi;
    }
    ++i;
    skip_cfws(v, i);
    std::string name = to_lower(token(v, i));
    skip_cfws(v, i);
    if (name.empty() || i >= v.size() || v[i] != '=') continue;
    ++i;
    skip_cfws(v, i);
    std::string value;
    if (i < v.size() && v[i] == '"') {
      ++i;
      while (i < v.size() && v[i] != '"') {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        value += v[i++];
      }
      if (i < v.size()) ++i;
    } else {
      value = token(v, i);
    }
    if (name == "boundary" && ct.boundary.empty()) ct.boundary = value;
    if (name == "charset" && ct.charset.empty()) ct.charset = to_lower(value);
  }
  return ct;
}

// Charsets in which '<', '"', '=' ... are not the ASCII octets.
bool ascii_compatible(const std::string& charset) {
  static constexpr std::string_view kNot[] = {
      "utf-16",  "utf16", "utf-32",  "utf32",    "ucs-2",    "ucs2",
      "ucs-4",   "ucs4",  "utf-7",   "utf7",     "iso-2022", "csiso2022",
      "iso2022", "hz-gb", "unicode", "x-utf-16", "x-utf-32"};
  for (auto p : kNot) {
    if (charset.compare(0, p.size(), p) == 0) return false;
  }
  return true;
}

void walk(std::string_view m, size_t b, size_t e, bool digest_child, int depth,
          std::vector<HtmlPartRef>& out) {
  Entity ent = split_entity(m, b, e);
  if (!ent.body_begin) return;
  const size_t body = *ent.body_begin;
  ContentType ct;
  if (digest_child) {
    ct.type = "message";
    ct.subtype = "rfc822";
  }
  if (auto v = field(ent.header, "Content-Type")) {
    if (auto parsed = parse_content_type(*v)) ct = std::move(*parsed);
  }
  if (ct.type == "multipart") {
    if (ct.boundary.empty() || depth >= kMaxDepth) return;
    const std::string delim = "--" + ct.boundary;
    const bool digest = ct.subtype == "digest";
    bool in_part = false;
    size_t part_begin = 0;
    size_t i = body;
    while (i < e) {
      Line l = line_at(m, i, e);
      std::string_view line = m.substr(i, l.ce - i);
      if (line.size() >= delim.size() && line.compare(0, delim.size(), delim) == 0) {
        std::string_view rest = line.substr(delim.size());
        bool close = rest.size() >= 2 && rest[0] == '-' && rest[1] == '-';
        bool open = !close && trim(rest).empty();
        if (close || open) {
          if (in_part) {
            size_t pe = i;  // the line break before a delimiter is part of it
            if (pe > part_begin && m[pe - 1] == '\n') --pe;
            if (pe > part_begin && m[pe - 1] == '\r') --pe;
            walk(m, part_begin, pe, digest, depth + 1, out);
          }
          if (close) return;
          in_part = true;
          part_begin = l.next;
        }
      }
      i = l.next;
    }
    if (in_part) walk(m, part_begin, e, digest, depth + 1, out);  // no close delimiter
    return;
  }
  if (ct.type != "text" || ct.subtype != "html") return;  // message/* included: not ours
  if (auto d = field(ent.header, "Content-Disposition")) {
    std::string_view disp = *d;
    disp = trim(disp.substr(0, disp.find(';')));
    if (iequals(disp, "attachment")) return;
  }
  if (!ascii_compatible(ct.charset)) return;
  HtmlPartRef ref{body, e, Cte::kIdentity, true};
  if (auto c = field(ent.header, "Content-Transfer-Encoding")) {
    std::string cte = to_lower(trim(*c));
    if (cte == "quoted-printable") {
      ref.cte = Cte::kQuotedPrintable;
      ref.line_limit = false;
    } else if (cte == "base64") {
      ref.cte = Cte::kBase64;
      ref.line_limit = false;
    } else if (cte == "binary") {
      ref.line_limit = false;
    } else if (cte != "7bit" && cte != "8bit" && !cte.empty()) {
      return;  // x-uuencode and friends: leave alone
    }
  }
  out.push_back(ref);
}

}  // namespace

std::vector<HtmlPartRef> find_html_parts(std::string_view message) {
  std::vector<HtmlPartRef> out;
  walk(message, 0, message.size(), false, 0, out);
  return out;
}

}  // namespace mta::rewrite::detail
