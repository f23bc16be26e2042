#include "mta/rewrite/html.hpp"

#include <cstdint>
#include <cstring>

namespace mta::rewrite::detail {
namespace {

constexpr size_t npos = std::string_view::npos;

constexpr bool is_space(char c) {
  // HTML white space (CR too: the input stream turns CRLF into LF).
  return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}
constexpr char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Elements whose content is text to the tokenizer (RAWTEXT / RCDATA /
// script data): markup inside them is not markup. <noscript> is not here:
// mail clients do not run scripts, so its content is parsed as HTML.
bool is_raw_text(std::string_view name) {
  static constexpr std::string_view kNames[] = {"script", "style",  "textarea", "title",
                                                "xmp",    "iframe", "noembed",  "noframes"};
  for (auto n : kNames) {
    if (iequals(name, n)) return true;
  }
  return false;
}

struct Attr {
  size_t name_begin, name_end;
  bool has_value;
  size_t value_begin, value_end, end;
  char quote;
};

// Parses the attributes of a tag from `i` (just after the tag name) to the
// closing '>'. Returns the position after '>', or npos when the input ends
// first (the tokenizer then drops the tag).
template <typename F>
size_t parse_attributes(std::string_view s, size_t i, F&& on_attr) {
  const size_t n = s.size();
  for (;;) {
    // Before attribute name; a '/' not followed by '>' is skipped like space.
    while (i < n && (is_space(s[i]) || s[i] == '/')) ++i;
    if (i >= n) return npos;
    if (s[i] == '>') return i + 1;
    Attr a{};
    a.name_begin = i++;  // the first character may be '='
    while (i < n && !is_space(s[i]) && s[i] != '/' && s[i] != '>' && s[i] != '=') ++i;
    a.name_end = a.end = i;
    while (i < n && is_space(s[i])) ++i;  // after attribute name
    if (i < n && s[i] == '=') {
      ++i;
      while (i < n && is_space(s[i])) ++i;
      if (i >= n) return npos;
      a.has_value = true;
      if (s[i] == '"' || s[i] == '\'') {
        a.quote = s[i];
        a.value_begin = i + 1;
        const void* q = std::memchr(s.data() + a.value_begin, a.quote, n - a.value_begin);
        if (!q) return npos;
        a.value_end = static_cast<size_t>(static_cast<const char*>(q) - s.data());
        a.end = i = a.value_end + 1;
      } else if (s[i] == '>') {
        a.value_begin = a.value_end = a.end = i;  // missing value: empty
      } else {
        a.value_begin = i;
        while (i < n && !is_space(s[i]) && s[i] != '>') ++i;
        if (i >= n) return npos;
        a.value_end = a.end = i;
      }
    }
    on_attr(a);
  }
}

// "--" followed by ">" or "!>" from `from`; npos when the comment runs to the end.
size_t comment_end(std::string_view s, size_t from) {
  for (;;) {
    size_t k = s.find("--", from);
    if (k == npos) return npos;
    if (k + 2 < s.size() && s[k + 2] == '>') return k + 3;
    if (k + 3 < s.size() && s[k + 2] == '!' && s[k + 3] == '>') return k + 4;
    from = k + 1;
  }
}

size_t after_gt(std::string_view s, size_t from) {
  size_t k = s.find('>', from);
  return k == npos ? s.size() : k + 1;
}

// The '<' of "</name" followed by white space, '/' or '>'; npos if none.
size_t find_end_tag(std::string_view s, size_t from, std::string_view name) {
  for (;;) {
    size_t k = s.find("</", from);
    if (k == npos) return npos;
    size_t e = k + 2 + name.size();
    if (e < s.size() && iequals(s.substr(k + 2, name.size()), name) &&
        (is_space(s[e]) || s[e] == '/' || s[e] == '>')) {
      return k;
    }
    from = k + 2;
  }
}

}  // namespace

HtmlScan scan_html(std::string_view s) {
  HtmlScan out;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const void* lt = std::memchr(s.data() + i, '<', n - i);
    if (!lt) break;
    const size_t tag = static_cast<size_t>(static_cast<const char*>(lt) - s.data());
    i = tag + 1;
    if (i >= n) break;
    const char c = s[i];
    if (c == '!') {
      if (s.compare(i + 1, 2, "--") == 0) {
        size_t j = i + 3;
        if (j < n && s[j] == '>') {  // "<!-->"
          i = j + 1;
        } else if (j + 1 < n && s[j] == '-' && s[j + 1] == '>') {  // "<!--->"
          i = j + 2;
        } else {
          size_t e = comment_end(s, j);
          i = e == npos ? n : e;
        }
      } else {
        i = after_gt(s, i);  // doctype, CDATA outside foreign content: bogus comment
      }
    } else if (c == '?') {
      i = after_gt(s, i);
    } else if (c == '/') {
      if (i + 1 >= n) break;
      if (s[i + 1] == '>') {
        i += 2;
      } else if (is_alpha(s[i + 1])) {
        size_t nb = i + 1, ne = nb;
        while (ne < n && !is_space(s[ne]) && s[ne] != '/' && s[ne] != '>') ++ne;
        size_t e = parse_attributes(s, ne, [](const Attr&) {});
        if (e == npos) break;
        if (iequals(s.substr(nb, ne - nb), "body")) out.last_body_end = tag;
        i = e;
      } else {
        i = after_gt(s, i);
      }
    } else if (is_alpha(c)) {
      size_t nb = i, ne = i;
      while (ne < n && !is_space(s[ne]) && s[ne] != '/' && s[ne] != '>') ++ne;
      std::string_view name = s.substr(nb, ne - nb);
      const bool link = iequals(name, "a") || iequals(name, "area");
      LinkTag lt_info;
      size_t e = parse_attributes(s, ne, [&](const Attr& a) {
        if (!link) return;
        std::string_view an = s.substr(a.name_begin, a.name_end - a.name_begin);
        if (iequals(an, "href")) {
          if (lt_info.has_href) return;
          lt_info.has_href = true;
          lt_info.href_has_value = a.has_value;
          lt_info.name_begin = a.name_begin;
          lt_info.value_begin = a.value_begin;
          lt_info.value_end = a.value_end;
          lt_info.attr_end = a.end;
          lt_info.quote = a.quote;
        } else if (iequals(an, "ses:no-track") || iequals(an, "ses:tags")) {
          if (iequals(an, "ses:no-track"))
            lt_info.no_track = true;
          else if (a.has_value && lt_info.tags.empty())
            lt_info.tags = s.substr(a.value_begin, a.value_end - a.value_begin);
          size_t b = a.name_begin;
          // Take the white space before it too, unless another attribute
          // follows without a space ("a="1"ses:no-track") and would join
          // the previous one.
          bool next_joins = a.end < n && !is_space(s[a.end]) && s[a.end] != '>' && s[a.end] != '/';
          if (!next_joins) {
            while (b > ne && is_space(s[b - 1])) --b;
          }
          lt_info.removals.emplace_back(b, a.end);
        }
      });
      if (e == npos) break;  // a tag cut off by the end of the input is no tag
      if (link) out.links.push_back(std::move(lt_info));
      i = e;
      if (iequals(name, "plaintext")) break;
      if (is_raw_text(name)) {
        size_t k = find_end_tag(s, i, name);
        if (k == npos) break;
        i = k;
      }
    }
    // else: '<' followed by anything else is text.
  }
  return out;
}

namespace {

struct Entity {
  std::string_view name;  // without '&'; with ';' when it needs one
  uint32_t cp;
};

// Latin-1 names: the legacy set a browser also recognises without ";".
constexpr std::string_view kLatin1[] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};
static_assert(sizeof(kLatin1) / sizeof(kLatin1[0]) == 96);

constexpr Entity kLegacyAscii[] = {{"amp", '&'},   {"AMP", '&'}, {"lt", '<'},   {"LT", '<'},
                                   {"gt", '>'},    {"GT", '>'},  {"quot", '"'}, {"QUOT", '"'},
                                   {"COPY", 0xA9}, {"REG", 0xAE}};

// Names that need ";": the ASCII punctuation of HTML5's table (what may
// turn up in a URL) and a few others.
constexpr Entity kSemicolon[] = {{"Tab", 9},
                                 {"NewLine", 10},
                                 {"excl", '!'},
                                 {"num", '#'},
                                 {"dollar", '$'},
                                 {"percnt", '%'},
                                 {"apos", '\''},
                                 {"lpar", '('},
                                 {"rpar", ')'},
                                 {"ast", '*'},
                                 {"midast", '*'},
                                 {"plus", '+'},
                                 {"comma", ','},
                                 {"period", '.'},
                                 {"sol", '/'},
                                 {"colon", ':'},
                                 {"semi", ';'},
                                 {"equals", '='},
                                 {"quest", '?'},
                                 {"commat", '@'},
                                 {"lsqb", '['},
                                 {"lbrack", '['},
                                 {"bsol", '\\'},
                                 {"rsqb", ']'},
                                 {"rbrack", ']'},
                                 {"Hat", '^'},
                                 {"lowbar", '_'},
                                 {"UnderBar", '_'},
                                 {"grave", '`'},
                                 {"DiacriticalGrave", '`'},
                                 {"lcub", '{'},
                                 {"lbrace", '{'},
                                 {"verbar", '|'},
                                 {"vert", '|'},
                                 {"VerticalLine", '|'},
                                 {"rcub", '}'},
                                 {"rbrace", '}'},
                                 {"NonBreakingSpace", 0xA0},
                                 {"hyphen", 0x2010},
                                 {"dash", 0x2010},
                                 {"ndash", 0x2013},
                                 {"mdash", 0x2014},
                                 {"hellip", 0x2026},
                                 {"euro", 0x20AC},
                                 {"trade", 0x2122},
                                 {"lsquo", 0x2018},
                                 {"rsquo", 0x2019},
                                 {"ldquo", 0x201C},
                                 {"rdquo", 0x201D},
                                 {"bull", 0x2022},
                                 {"zwnj", 0x200C},
                                 {"zwj", 0x200D}};

// A legacy name (valid without ";"); 0 if `name` is not one.
uint32_t legacy(std::string_view name) {
  for (size_t k = 0; k < sizeof(kLatin1) / sizeof(kLatin1[0]); ++k) {
    if (kLatin1[k] == name) return static_cast<uint32_t>(0xA0 + k);
  }
  for (const auto& e : kLegacyAscii) {
    if (e.name == name) return e.cp;
  }
  return 0;
}

uint32_t with_semicolon(std::string_view name) {
  if (uint32_t cp = legacy(name)) return cp;
  for (const auto& e : kSemicolon) {
    if (e.name == name) return e.cp;
  }
  return 0;
}

// Windows-1252 for numeric references in 0x80-0x9F (HTML's table).
constexpr uint16_t kC1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                              0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                              0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                              0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

void put_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> decode_attribute(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const void* amp = std::memchr(s.data() + i, '&', n - i);
    size_t a = amp ? static_cast<size_t>(static_cast<const char*>(amp) - s.data()) : n;
    out.append(s.data() + i, a - i);
    if (a == n) break;
    size_t j = a + 1;
    if (j < n && s[j] == '#') {
      size_t k = j + 1;
      bool hex = k < n && (s[k] == 'x' || s[k] == 'X');
      if (hex) ++k;
      size_t digits_begin = k;
      uint64_t v = 0;
      while (k < n && (hex ? hex_digit(s[k]) >= 0 : is_digit(s[k]))) {
        v = v * (hex ? 16 : 10) + static_cast<uint64_t>(hex ? hex_digit(s[k]) : s[k] - '0');
        if (v > 0x10FFFF) v = 0x110000;  // clamp: stays out of range
        ++k;
      }
      if (k == digits_begin) {  // "&#" or "&#x" without digits: text
        out += '&';
        i = j;
        continue;
      }
      if (k < n && s[k] == ';') ++k;
      uint32_t cp = static_cast<uint32_t>(v);
      if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
      if (cp >= 0x80 && cp <= 0x9F) cp = kC1[cp - 0x80];
      put_utf8(cp, out);
      i = k;
      continue;
    }
    size_t k = j;
    while (k < n && is_alnum(s[k])) ++k;
    std::string_view name = s.substr(j, k - j);
    if (name.empty()) {
      out += '&';
      i = j;
      continue;
    }
    if (k < n && s[k] == ';') {
      uint32_t cp = with_semicolon(name);
      if (!cp) return std::nullopt;  // maybe an entity we do not know
      put_utf8(cp, out);
      i = k + 1;
      continue;
    }
    // No ";": only a legacy name, and in an attribute not when "=" follows.
    uint32_t cp = legacy(name);
    if (cp && !(k < n && s[k] == '=')) {
      put_utf8(cp, out);
    } else {
      out.append(s.data() + a, k - a);
    }
    i = k;
  }
  return out;
}

std::string clean_url(std::string_view d) {
  size_t b = 0, e = d.size();
  while (b < e && static_cast<unsigned char>(d[b]) <= 0x20) ++b;
  while (e > b && static_cast<unsigned char>(d[e - 1]) <= 0x20) --e;
  std::string out;
  out.reserve(e - b);
  for (size_t i = b; i < e; ++i) {
    if (d[i] != '\t' && d[i] != '\n' && d[i] != '\r') out += d[i];
  }
  return out;
}

bool is_trackable(std::string_view url) {
  auto istarts = [&](std::string_view p) {
    return url.size() >= p.size() && iequals(url.substr(0, p.size()), p);
  };
  if (!istarts("http://") && !istarts("https://")) return false;
  if (url.size() <= (istarts("https://") ? 8u : 7u)) return false;  // no host
  for (std::string_view p : {"{{", "}}", "{%", "%}", "*|", "|*", "%%"}) {
    if (url.find(p) != npos) return false;
  }
  // $name$ (some ESPs' merge fields)
  for (size_t i = url.find('$'); i != npos; i = url.find('$', i + 1)) {
    size_t k = i + 1;
    while (k < url.size() && (is_alnum(url[k]) || url[k] == '_')) ++k;
    if (k > i + 1 && k < url.size() && url[k] == '$') return false;
  }
  return true;
}

}  // namespace mta::rewrite::detail
