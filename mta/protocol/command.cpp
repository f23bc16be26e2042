#include "mta/protocol/command.hpp"

#include <array>
#include <limits>

#include "mta/protocol/ascii.hpp"

namespace mta::protocol {

namespace {

using ascii::iequals;
using ascii::istarts_with;

struct VerbName {
  Verb verb;
  std::string_view name;
};

constexpr std::array<VerbName, 14> kVerbs{{
    {Verb::kHelo, "HELO"},
    {Verb::kEhlo, "EHLO"},
    {Verb::kMail, "MAIL"},
    {Verb::kRcpt, "RCPT"},
    {Verb::kData, "DATA"},
    {Verb::kRset, "RSET"},
    {Verb::kNoop, "NOOP"},
    {Verb::kQuit, "QUIT"},
    {Verb::kVrfy, "VRFY"},
    {Verb::kExpn, "EXPN"},
    {Verb::kHelp, "HELP"},
    {Verb::kStarttls, "STARTTLS"},
    {Verb::kAuth, "AUTH"},
    {Verb::kBdat, "BDAT"},
}};

// RFC 5322 3.2.3 atext.
bool is_atext(char c) {
  return ascii::is_alnum(c) ||
         std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool is_printable(char c) {
  return c >= 32 && c <= 126;
}

// Length of the quoted-string (RFC 5321 4.1.2 Quoted-string) at the start of
// `s`, including both quotes; 0 when `s` does not start with a valid one.
size_t quoted_string_size(std::string_view s) {
  if (s.empty() || s[0] != '"') return 0;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') return i + 1;
    if (c == '\\') {
      // quoted-pairSMTP: backslash followed by any printable ASCII or space.
      if (i + 1 >= s.size() || !is_printable(s[i + 1])) return 0;
      ++i;
    } else if (!is_printable(c)) {
      return 0;
    }
  }
  return 0;
}

bool is_dot_string(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

bool is_ldh_label(std::string_view l) {
  if (l.empty() || l.size() > 63) return false;
  if (!ascii::is_alnum(l.front()) || !ascii::is_alnum(l.back())) return false;
  for (char c : l) {
    if (!ascii::is_alnum(c) && c != '-') return false;
  }
  return true;
}

// RFC 5321 Domain: sub-domain *("." sub-domain), 255 octets at most.
bool is_domain_name(std::string_view d) {
  if (d.empty() || d.size() > 255) return false;
  for (;;) {
    size_t dot = d.find('.');
    if (!is_ldh_label(d.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    d.remove_prefix(dot + 1);
  }
}

bool is_ipv4(std::string_view s) {
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (s.empty() || s[0] != '.') return false;
      s.remove_prefix(1);
    }
    size_t n = 0;
    int value = 0;
    while (n < s.size() && n < 3 && ascii::is_digit(s[n])) value = value * 10 + (s[n++] - '0');
    if (n == 0 || value > 255) return false;
    s.remove_prefix(n);
  }
  return s.empty();
}

bool is_hex16(std::string_view s) {
  if (s.empty() || s.size() > 4) return false;
  for (char c : s) {
    if (!ascii::is_hex(c)) return false;
  }
  return true;
}

// The textual IPv6 forms of RFC 4291 2.2 (which include those of RFC 5321
// IPv6-addr): eight groups, or fewer with one "::", optionally ending in a
// dotted IPv4 address that counts as two groups.
bool is_ipv6(std::string_view s) {
  int groups = 0;
  bool compressed = false;
  if (s.starts_with("::")) {
    compressed = true;
    s.remove_prefix(2);
    if (s.empty()) return true;
  }
  for (;;) {
    size_t colon = s.find(':');
    std::string_view piece = s.substr(0, colon);
    if (colon == std::string_view::npos) {
      if (piece.find('.') != std::string_view::npos) {
        if (!is_ipv4(piece)) return false;
        groups += 2;
      } else {
        if (!is_hex16(piece)) return false;
        groups += 1;
      }
      break;
    }
    if (!is_hex16(piece)) return false;
    ++groups;
    s.remove_prefix(colon + 1);
    if (s.starts_with(":")) {
      if (compressed) return false;
      compressed = true;
      s.remove_prefix(1);
      if (s.empty()) break;
    } else if (s.empty()) {
      return false;  // a single trailing colon
    }
  }
  return compressed ? groups <= 7 : groups == 8;
}

bool is_address_literal(std::string_view d) {
  if (d.size() < 2 || d.front() != '[' || d.back() != ']') return false;
  std::string_view inner = d.substr(1, d.size() - 2);
  if (istarts_with(inner, "IPv6:")) return is_ipv6(inner.substr(5));
  return is_ipv4(inner);
}

// Strips an RFC 5321 source route ("@a,@b:") from the front of a path.
// Per 4.1.1.3 the route SHOULD be ignored; a malformed one makes the whole
// path invalid. Returns false on a malformed route.
bool strip_source_route(std::string_view& path) {
  if (path.empty() || path[0] != '@') return true;
  size_t colon = path.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view route = path.substr(0, colon);
  for (;;) {
    if (route.empty() || route[0] != '@') return false;
    size_t comma = route.find(',');
    if (!is_domain_name(route.substr(1, comma == std::string_view::npos ? comma : comma - 1))) {
      return false;
    }
    if (comma == std::string_view::npos) break;
    route.remove_prefix(comma + 1);
  }
  path.remove_prefix(colon + 1);
  return true;
}

ParseError syntax_error(bool mail) {
  return {501, "5.5.4", mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>"};
}

ParseError address_error(bool mail) {
  return mail ? ParseError{501, "5.1.7", "Bad sender address syntax"}
              : ParseError{501, "5.1.3", "Bad recipient address syntax"};
}

// The parts of "FROM:<path> params" / "TO:<path> params".
struct PathAndParams {
  std::string_view path;  // between the angle brackets, source route still on
  std::string_view params;
};

std::optional<PathAndParams> split_path(std::string_view arg, std::string_view prefix) {
  if (!istarts_with(arg, prefix)) return std::nullopt;
  arg.remove_prefix(prefix.size());
  // Many clients send "FROM: <a@b>"; RFC 5321 has no space there, but
  // refusing it helps nobody.
  if (arg.starts_with(' ')) arg.remove_prefix(1);
  if (!arg.starts_with('<')) return std::nullopt;
  size_t i = 1;
  bool quoted = false;
  for (; i < arg.size(); ++i) {
    char c = arg[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      return std::nullopt;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= arg.size()) return std::nullopt;
  std::string_view rest = arg.substr(i + 1);
  if (!rest.empty() && rest[0] != ' ') return std::nullopt;
  return PathAndParams{arg.substr(1, i - 1), rest};
}

// RFC 5321 4.1.2 esmtp-keyword and esmtp-value.
bool is_esmtp_keyword(std::string_view k) {
  if (k.empty() || !ascii::is_alnum(k[0])) return false;
  for (char c : k) {
    if (!ascii::is_alnum(c) && c != '-') return false;
  }
  return true;
}

bool is_esmtp_value(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    if (c < 33 || c > 126 || c == '=') return false;
  }
  return true;
}

std::optional<uint64_t> parse_size(std::string_view v) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  uint64_t n = 0;
  for (char c : v) {
    if (!ascii::is_digit(c)) return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

struct Param {
  std::string_view keyword;
  std::optional<std::string_view> value;
};

// Calls `on_param` for each space-separated "KEY[=VALUE]"; stops at the first
// error, which is returned.
template <class F>
std::optional<ParseError> for_each_param(std::string_view params, F on_param) {
  while (!params.empty()) {
    size_t sp = params.find(' ');
    std::string_view p = params.substr(0, sp);
    params.remove_prefix(sp == std::string_view::npos ? params.size() : sp + 1);
    if (p.empty()) continue;  // repeated or trailing spaces
    Param param;
    size_t eq = p.find('=');
    param.keyword = p.substr(0, eq);
    if (eq != std::string_view::npos) param.value = p.substr(eq + 1);
    if (!is_esmtp_keyword(param.keyword) || (param.value && !is_esmtp_value(*param.value))) {
      return ParseError{501, "5.5.4", "Bad parameter syntax"};
    }
    if (auto err = on_param(param)) return err;
  }
  return std::nullopt;
}

ParseError unsupported(std::string_view keyword) {
  return {555, "5.5.4", "Unsupported parameter " + std::string(keyword)};
}

}  // namespace

const char* to_string(Verb v) {
  for (const auto& e : kVerbs) {
    if (e.verb == v) return e.name.data();
  }
  return "UNKNOWN";
}

Command parse_command(std::string_view line) {
  if (line.ends_with('\r')) line.remove_suffix(1);
  size_t sp = line.find(' ');
  std::string_view word = line.substr(0, sp);
  Command cmd;
  if (sp != std::string_view::npos) cmd.arg = line.substr(sp + 1);
  for (const auto& e : kVerbs) {
    if (iequals(word, e.name)) {
      cmd.verb = e.verb;
      break;
    }
  }
  return cmd;
}

Parsed<MailFrom> parse_mail_from(std::string_view arg) {
  auto parts = split_path(arg, "FROM:");
  if (!parts) return {.value = {}, .error = syntax_error(true)};
  MailFrom mf;
  std::string_view path = parts->path;
  if (!path.empty()) {
    if (!strip_source_route(path) || !is_valid_mailbox(path)) {
      return {.value = {}, .error = address_error(true)};
    }
    mf.address = path;
  }
  bool seen_size = false;
  bool seen_body = false;
  bool seen_auth = false;
  auto err = for_each_param(parts->params, [&](const Param& p) -> std::optional<ParseError> {
    if (iequals(p.keyword, "SIZE")) {
      auto n = p.value ? parse_size(*p.value) : std::nullopt;
      if (seen_size || !n) return ParseError{501, "5.5.4", "Bad SIZE parameter"};
      seen_size = true;
      mf.size = n;
    } else if (iequals(p.keyword, "BODY")) {
      if (seen_body || !p.value) return ParseError{501, "5.5.4", "Bad BODY parameter"};
      seen_body = true;
      if (iequals(*p.value, "7BIT")) {
        mf.body = Body::k7Bit;
      } else if (iequals(*p.value, "8BITMIME")) {
        mf.body = Body::k8BitMime;
      } else {
        return ParseError{501, "5.5.4", "Bad BODY parameter"};
      }
    } else if (iequals(p.keyword, "AUTH")) {
      // RFC 4954 5: a server offering AUTH must take AUTH=<mailbox>|<> on
      // MAIL; we trust nobody's claim, so the value is checked and dropped.
      if (seen_auth || !p.value) return ParseError{501, "5.5.4", "Bad AUTH parameter"};
      seen_auth = true;
    } else {
      return unsupported(p.keyword);
    }
    return std::nullopt;
  });
  if (err) return {.value = {}, .error = std::move(err)};
  return {.value = std::move(mf), .error = {}};
}

Parsed<RcptTo> parse_rcpt_to(std::string_view arg) {
  auto parts = split_path(arg, "TO:");
  if (!parts) return {.value = {}, .error = syntax_error(false)};
  RcptTo rt;
  std::string_view path = parts->path;
  if (!strip_source_route(path)) return {.value = {}, .error = address_error(false)};
  if (iequals(path, "postmaster")) {
    // RFC 5321 4.5.1: "<Postmaster>" without a domain must be accepted.
    rt.address = "postmaster";
  } else if (is_valid_mailbox(path)) {
    rt.address = path;
  } else {
    return {.value = {}, .error = address_error(false)};  // includes the null path <>
  }
  auto err = for_each_param(parts->params, [](const Param& p) -> std::optional<ParseError> {
    return unsupported(p.keyword);
  });
  if (err) return {.value = {}, .error = std::move(err)};
  return {.value = std::move(rt), .error = {}};
}

bool is_valid_mailbox(std::string_view address) {
  size_t local_size = address.starts_with('"') ? quoted_string_size(address) : address.find('@');
  if (local_size == 0 || local_size == std::string_view::npos || local_size > 64) return false;
  std::string_view local = address.substr(0, local_size);
  if (local[0] != '"' && !is_dot_string(local)) return false;
  if (local_size >= address.size() || address[local_size] != '@') return false;
  std::string_view domain = address.substr(local_size + 1);
  return domain.starts_with('[') ? is_address_literal(domain) : is_domain_name(domain);
}

std::string domain_of(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos) return {};
  std::string d(address.substr(at + 1));
  for (char& c : d) c = ascii::to_lower(c);
  return d;
}

}  // namespace mta::protocol
