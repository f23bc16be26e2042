#include "mta/protocol/mime.hpp"

#include <iconv.h>

#include <algorithm>
#include <cerrno>

#include "mta/core/base64.hpp"
#include "mta/protocol/ascii.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/message.hpp"

namespace mta::protocol {
namespace {

bool is_atext(char c) {
  if (ascii::is_alnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '/':
    case '=':
    case '?':
    case '^':
    case '_':
    case '`':
    case '{':
    case '|':
    case '}':
    case '~':
      return true;
    default:
      return false;
  }
}

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid
// (overlong forms, surrogates and values over U+10FFFF included).
size_t utf8_char_len(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8_char_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return out;
}

bool is_utf8_name(std::string_view charset) {
  auto u = upper(charset);
  return u == "UTF-8" || u == "UTF8";
}

bool is_ascii_name(std::string_view charset) {
  auto u = upper(charset);
  return u == "US-ASCII" || u == "ASCII";
}

// Charset names go into headers: keep them to the characters IANA names use.
bool plausible_charset(std::string_view charset) {
  if (charset.empty() || charset.size() > 40) return false;
  for (char c : charset)
    if (!ascii::is_alnum(c) && c != '-' && c != '_' && c != '.' && c != ':') return false;
  return true;
}

// Printable ASCII that needs no encoding in an unstructured header: no
// "=?" (it would be taken for an encoded-word) and no word so long that
// the header could not be folded under 998 octets.
bool plain_header_text(std::string_view s) {
  size_t run = 0;
  for (char c : s) {
    if (c != '\t' && (c < 0x20 || c > 0x7e)) return false;
    run = ascii::is_wsp(c) ? 0 : run + 1;
    if (run > 76) return false;
  }
  return s.find("=?") == std::string_view::npos;
}

std::string join_mailboxes(const std::vector<Mailbox>& list, std::optional<MimeError>& err,
                           std::string_view field) {
  std::string out;
  for (size_t i = 0; i < list.size(); ++i) {
    if (!out.empty()) out += ", ";
    std::string one = format_mailbox(list[i]);
    if (one.empty()) {
      err = MimeError{std::string(field) + "[" + std::to_string(i) + "]",
                      "the display name is not valid UTF-8"};
      return {};
    }
    out += one;
  }
  return out;
}

struct EncodedPart {
  std::string headers;  // Content-Type and Content-Transfer-Encoding lines
  std::string body;
};

std::optional<EncodedPart> encode_part(const TextBody& b, std::string_view subtype) {
  auto bytes = transcode(to_crlf(b.data), b.charset);
  if (!bytes) return std::nullopt;
  EncodedPart p;
  p.headers = "Content-Type: text/" + std::string(subtype) + "; charset=" + b.charset + "\r\n";
  if (choose_encoding(*bytes) == TransferEncoding::kBase64) {
    p.headers += "Content-Transfer-Encoding: base64\r\n";
    p.body = base64_body(*bytes);
  } else {
    p.headers += "Content-Transfer-Encoding: quoted-printable\r\n";
    p.body = quoted_printable_encode(*bytes);
  }
  return p;
}

}  // namespace

std::optional<Mailbox> parse_mailbox(std::string_view text) {
  text = ascii::trim_wsp(text);
  if (text.empty() || has_crlf(text)) return std::nullopt;
  Mailbox m;
  if (text.back() == '>') {
    // The '<' that opens the address: the last one outside a quoted name.
    size_t open = std::string_view::npos;
    bool quoted = false;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      char c = text[i];
      if (quoted && c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (!quoted && c == '<') {
        open = i;
      }
    }
    if (open == std::string_view::npos || quoted) return std::nullopt;
    std::string_view name = ascii::trim_wsp(text.substr(0, open));
    m.address = std::string(ascii::trim_wsp(text.substr(open + 1, text.size() - open - 2)));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
      for (size_t i = 0; i < name.size(); ++i) {
        if (name[i] == '\\' && i + 1 < name.size())
          ++i;
        else if (name[i] == '"')
          return std::nullopt;
        m.name += name[i];
      }
    } else {
      if (name.find('"') != std::string_view::npos) return std::nullopt;
      m.name = std::string(name);
    }
  } else {
    m.address = std::string(text);
  }
  if (!is_valid_mailbox(m.address)) return std::nullopt;
  return m;
}

std::optional<std::vector<Mailbox>> parse_address_list(std::string_view value) {
  std::vector<Mailbox> out;
  std::string cur;
  bool quoted = false, angle = false;
  int comment = 0;
  auto flush = [&]() -> bool {
    std::string_view t = ascii::trim_wsp(cur);
    if (!t.empty()) {
      auto m = parse_mailbox(t);
      if (!m) return false;
      out.push_back(std::move(*m));
    }
    cur.clear();
    return true;
  };
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' || c == '\n') {
      cur += ' ';
      continue;
    }
    if (comment > 0) {
      if (c == '\\')
        ++i;
      else if (c == '(')
        ++comment;
      else if (c == ')')
        --comment;
      continue;
    }
    if (quoted) {
      cur += c;
      if (c == '\\' && i + 1 < value.size())
        cur += value[++i];
      else if (c == '"')
        quoted = false;
      continue;
    }
    switch (c) {
      case '"':
        quoted = true;
        cur += c;
        break;
      case '(':
        comment = 1;
        cur += ' ';
        break;
      case '<':
        angle = true;
        cur += c;
        break;
      case '>':
        angle = false;
        cur += c;
        break;
      case ':':
        if (angle) {
          cur += c;
        } else {
          cur.clear();  // a group's display name
        }
        break;
      case ',':
      case ';':
        if (angle) return std::nullopt;
        if (!flush()) return std::nullopt;
        break;
      default:
        cur += c;
    }
  }
  if (quoted || angle || comment > 0) return std::nullopt;
  if (!flush()) return std::nullopt;
  return out;
}

std::string format_mailbox(const Mailbox& m) {
  if (m.name.empty()) return m.address;
  bool ascii_printable = true, atoms = true;
  for (char c : m.name) {
    if (c < 0x20 || c > 0x7e) ascii_printable = false;
    if (!is_atext(c) && c != ' ') atoms = false;
  }
  std::string name;
  if (ascii_printable && atoms && m.name.find("=?") == std::string::npos) {
    name = m.name;
  } else if (ascii_printable) {
    name = "\"";
    for (char c : m.name) {
      if (c == '"' || c == '\\') name += '\\';
      name += c;
    }
    name += '"';
  } else {
    auto enc = encode_header_text(m.name, "UTF-8");
    if (!enc) return {};
    name = std::move(*enc);
  }
  return name + " <" + m.address + ">";
}

std::optional<std::string> transcode(std::string_view utf8, std::string_view charset) {
  if (!valid_utf8(utf8) || !plausible_charset(charset)) return std::nullopt;
  if (is_utf8_name(charset)) return std::string(utf8);
  if (is_ascii_name(charset)) {
    for (char c : utf8)
      if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
    return std::string(utf8);
  }
  std::string to(charset);
  iconv_t cd = iconv_open(to.c_str(), "UTF-8");
  if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  std::string out;
  std::string in(utf8);
  char* inp = in.data();
  size_t inleft = in.size();
  char buf[4096];
  bool ok = true;
  for (;;) {
    char* outp = buf;
    size_t outleft = sizeof buf;
    size_t r = iconv(cd, inleft ? &inp : nullptr, inleft ? &inleft : nullptr, &outp, &outleft);
    out.append(buf, static_cast<size_t>(outp - buf));
    if (r != static_cast<size_t>(-1)) {
      if (inleft == 0) {
        // Flush a stateful encoding (ISO-2022-JP returns to ASCII).
        outp = buf;
        outleft = sizeof buf;
        iconv(cd, nullptr, nullptr, &outp, &outleft);
        out.append(buf, static_cast<size_t>(outp - buf));
        break;
      }
      continue;
    }
    if (errno == E2BIG) continue;
    ok = false;  // EILSEQ: no representation; EINVAL: cannot happen on valid UTF-8
    break;
  }
  iconv_close(cd);
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::string> encode_header_text(std::string_view utf8, std::string_view charset) {
  if (!valid_utf8(utf8) || !plausible_charset(charset)) return std::nullopt;
  if (plain_header_text(utf8)) {
    if (!transcode(utf8, charset)) return std::nullopt;
    return std::string(utf8);
  }
  // "=?" charset "?B?" base64 "?=" in at most 75 characters (RFC 2047 2).
  const size_t overhead = 7 + charset.size();
  if (overhead + 4 > 75) return std::nullopt;
  const size_t max_bytes = (75 - overhead) / 4 * 3;
  std::string out;
  size_t i = 0;
  while (i < utf8.size()) {
    // Grow the chunk one character at a time while its encoding fits.
    size_t end = i;
    std::string bytes;
    while (end < utf8.size()) {
      size_t n = utf8_char_len(utf8, end);
      auto conv = transcode(utf8.substr(i, end + n - i), charset);
      if (!conv) return std::nullopt;
      if (conv->size() > max_bytes) {
        if (end == i) return std::nullopt;  // one character does not fit a word
        break;
      }
      bytes = std::move(*conv);
      end += n;
    }
    if (!out.empty()) out += ' ';
    out += "=?";
    out += charset;
    out += "?B?";
    out += core::base64_encode(bytes);
    out += "?=";
    i = end;
  }
  return out;
}

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 2);
  size_t i = 0;
  while (i < text.size()) {
    // (find_first_of would call memchr once per character.)
    size_t j = i;
    while (j < text.size() && text[j] != '\r' && text[j] != '\n') ++j;
    if (j == text.size()) {
      out.append(text.substr(i));
      break;
    }
    out.append(text.substr(i, j - i));
    out += "\r\n";
    if (text[j] == '\r' && j + 1 < text.size() && text[j + 1] == '\n') ++j;
    i = j + 1;
  }
  return out;
}

std::string quoted_printable_encode(std::string_view data) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(data.size() + data.size() / 16 + 16);
  size_t start = 0;
  for (;;) {
    size_t eol = data.find("\r\n", start);
    std::string_view line =
        data.substr(start, eol == std::string_view::npos ? std::string_view::npos : eol - start);
    // Printable ASCII but "=" as it is; space and tab too, except at the
    // end of a line (where transport may strip them).
    auto literal = [&](size_t i) {
      auto c = static_cast<unsigned char>(line[i]);
      if (c == ' ' || c == '\t') return i + 1 < line.size();
      return c >= 33 && c <= 126 && c != '=';
    };
    size_t len = 0;  // of the current output line; 75 leaves room for a soft break's "="
    size_t i = 0;
    while (i < line.size()) {
      if (literal(i)) {
        size_t j = i + 1;
        while (j < line.size() && literal(j)) ++j;
        while (i < j) {
          if (len == 75) {
            out += "=\r\n";
            len = 0;
          }
          size_t k = std::min(75 - len, j - i);
          out.append(line.data() + i, k);
          len += k;
          i += k;
        }
        continue;
      }
      if (len + 3 > 75) {
        out += "=\r\n";
        len = 0;
      }
      auto c = static_cast<unsigned char>(line[i]);
      char enc[3] = {'=', kHex[c >> 4], kHex[c & 15]};
      out.append(enc, 3);
      len += 3;
      ++i;
    }
    if (eol == std::string_view::npos) break;
    out += "\r\n";
    start = eol + 2;
  }
  return out;
}

std::string base64_body(std::string_view data) {
  std::string enc = core::base64_encode(data);
  std::string out;
  out.reserve(enc.size() + enc.size() / 38 + 2);
  for (size_t i = 0; i < enc.size(); i += 76) {
    out.append(enc, i, 76);
    out += "\r\n";
  }
  return out;
}

TransferEncoding choose_encoding(std::string_view data) {
  size_t odd = 0;
  for (char ch : data) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || (c < 0x20 && c != '\r' && c != '\n' && c != '\t')) ++odd;
  }
  return odd * 3 > data.size() ? TransferEncoding::kBase64 : TransferEncoding::kQuotedPrintable;
}

std::variant<std::string, MimeError> build_simple(const SimpleMessage& m) {
  std::string out;
  std::optional<MimeError> err;
  std::string from = format_mailbox(m.from);
  if (from.empty()) return MimeError{"From", "the display name is not valid UTF-8"};
  out += format_header("From", from);
  if (!m.reply_to.empty()) {
    auto v = join_mailboxes(m.reply_to, err, "ReplyTo");
    if (err) return *err;
    out += format_header("Reply-To", v);
  }
  if (!m.to.empty()) {
    auto v = join_mailboxes(m.to, err, "To");
    if (err) return *err;
    out += format_header("To", v);
  }
  if (!m.cc.empty()) {
    auto v = join_mailboxes(m.cc, err, "Cc");
    if (err) return *err;
    out += format_header("Cc", v);
  }
  auto subject = encode_header_text(m.subject, m.subject_charset);
  if (!subject)
    return MimeError{"Subject",
                     "cannot be encoded in charset \"" + m.subject_charset + "\" (or not UTF-8)"};
  out += format_header("Subject", *subject);
  out += format_header("Date", rfc5322_date(m.date));
  out += format_header("Message-ID", m.message_id);
  out += "MIME-Version: 1.0\r\n";
  for (size_t i = 0; i < m.headers.size(); ++i) {
    auto v = encode_header_text(m.headers[i].second);
    if (!v) return MimeError{"Headers[" + std::to_string(i) + "]", "the value is not valid UTF-8"};
    out += format_header(m.headers[i].first, *v);
  }

  std::optional<EncodedPart> text, html;
  if (m.text) {
    text = encode_part(*m.text, "plain");
    if (!text)
      return MimeError{"Body.Text",
                       "cannot be encoded in charset \"" + m.text->charset + "\" (or not UTF-8)"};
  }
  if (m.html) {
    html = encode_part(*m.html, "html");
    if (!html)
      return MimeError{"Body.Html",
                       "cannot be encoded in charset \"" + m.html->charset + "\" (or not UTF-8)"};
  }
  if (text && html) {
    // The CRLF before each delimiter belongs to the delimiter (RFC 2046
    // 5.1.1), so a part's own last line break survives.
    out += "Content-Type: multipart/alternative; boundary=\"" + m.boundary + "\"\r\n\r\n";
    out += "--" + m.boundary + "\r\n" + text->headers + "\r\n" + text->body;
    out += "\r\n--" + m.boundary + "\r\n" + html->headers + "\r\n" + html->body;
    out += "\r\n--" + m.boundary + "--\r\n";
  } else {
    if (!text && !html) return MimeError{"Body", "needs Text or Html"};
    const EncodedPart& p = text ? *text : *html;
    out += p.headers + "\r\n" + p.body;
    // A message ends with a line break (SMTP cannot carry one that does not).
    if (out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
  }
  return out;
}

}  // namespace mta::protocol
