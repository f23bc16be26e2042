#include "mta/feedback/arf.hpp"

#include <array>

#include "mta/core/base64.hpp"
#include "mta/core/text.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/message.hpp"

namespace mta::feedback {
namespace {

// Reports nest a few levels at most (multipart/report, sometimes inside a
// forwarding multipart/mixed); anything deeper is not worth walking.
constexpr int kMaxDepth = 4;

char lower_char(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  return true;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  c = lower_char(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// LF and lone CR -> CRLF, so the RFC 5322 helpers see one kind of line end.
std::string to_crlf(std::string_view in) {
  std::string out;
  out.reserve(in.size() + in.size() / 32);
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The mailboxes of an address-list header value ("A <a@x>, b@y"): each
// comma-separated element (commas inside quotes do not count) gives the
// address in its <...>, or the element itself when it has none.
std::vector<std::string> addresses(std::string_view v) {
  std::vector<std::string> out;
  auto take = [&](std::string_view element) {
    size_t lt = element.find('<');
    size_t gt = lt == std::string_view::npos ? lt : element.find('>', lt);
    auto a = trim(gt == std::string_view::npos ? element : element.substr(lt + 1, gt - lt - 1));
    if (protocol::is_valid_mailbox(a)) out.emplace_back(a);
  };
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '"') quoted = !quoted;
    if (v[i] == ',' && !quoted) {
      take(v.substr(start, i - start));
      start = i + 1;
    }
  }
  take(v.substr(start));
  return out;
}

std::string field(const std::vector<protocol::HeaderField>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (iequals(f.name, name)) return f.value();
  return {};
}

std::string decode_body(std::string_view body, std::string_view transfer_encoding) {
  std::string cte = core::ascii_lower(trim(transfer_encoding));
  if (cte == "base64") {
    if (auto d = core::base64_decode(body)) return to_crlf(*d);
    return std::string(body);
  }
  if (cte == "quoted-printable") return to_crlf(quoted_printable_decode(body));
  return std::string(body);
}

// The body parts of a multipart body (RFC 2046 5.1.1): what lies between
// "--boundary" lines, without the CRLF that belongs to the next delimiter.
std::vector<std::string_view> split_multipart(std::string_view body, std::string_view boundary) {
  std::vector<std::string_view> parts;
  std::string delim = "--" + std::string(boundary);
  // A delimiter starts a line and ends it (but for white space), or is the
  // close delimiter "--boundary--": "--b1" is no delimiter of boundary "b".
  auto delim_at = [&](size_t p) {
    if (p != 0 && body[p - 1] != '\n') return false;
    std::string_view rest = body.substr(p + delim.size());
    if (rest.starts_with("--")) return true;
    size_t end = rest.find('\n');
    return trim(rest.substr(0, end)).empty();
  };
  auto find_delim = [&](size_t from) {
    for (;;) {
      size_t p = body.find(delim, from);
      if (p == std::string_view::npos || delim_at(p)) return p;
      from = p + 1;
    }
  };
  size_t d = find_delim(0);
  while (d != std::string_view::npos) {
    size_t after = d + delim.size();
    if (body.substr(after, 2) == "--") break;  // the close delimiter
    size_t eol = body.find('\n', after);
    if (eol == std::string_view::npos) break;
    size_t start = eol + 1;
    size_t next = find_delim(start);
    size_t end = next == std::string_view::npos ? body.size() : next;
    if (next != std::string_view::npos) {
      if (end > start && body[end - 1] == '\n') --end;
      if (end > start && body[end - 1] == '\r') --end;
    }
    parts.push_back(body.substr(start, end - start));
    d = next;
  }
  return parts;
}

// Walks the MIME tree for the two parts a report is made of.
struct Walk {
  std::optional<std::string> feedback;  // the message/feedback-report fields
  std::optional<std::string> original;  // the reported message or its header
  std::string top_type, top_report_type;

  void visit(std::string_view entity, int depth) {
    size_t hb = protocol::header_block_size(entity);
    auto fields = protocol::header_fields(entity.substr(0, hb));
    std::string_view body = entity.substr(hb);
    std::string ct_text = field(fields, "Content-Type");
    ContentType ct = parse_content_type(ct_text.empty() ? "text/plain" : ct_text);
    if (depth == 0) {
      top_type = ct.type;
      top_report_type = core::ascii_lower(ct.param("report-type"));
    }
    if (ct.type.starts_with("multipart/")) {
      std::string boundary = ct.param("boundary");
      if (boundary.empty() || depth >= kMaxDepth) return;
      for (auto part : split_multipart(body, boundary)) visit(part, depth + 1);
      return;
    }
    std::string cte = field(fields, "Content-Transfer-Encoding");
    if (ct.type == "message/feedback-report") {
      if (!feedback) feedback = decode_body(body, cte);
    } else if (ct.type == "message/rfc822" || ct.type == "text/rfc822-headers" ||
               ct.type == "message/rfc822-headers") {
      if (!original) original = decode_body(body, cte);
    }
  }
};

void read_feedback_fields(std::string_view text, Report& r) {
  while (text.starts_with("\r\n")) text.remove_prefix(2);
  std::string arrival, received;
  for (const auto& f : protocol::header_fields(text)) {
    std::string v = f.value();
    if (iequals(f.name, "Feedback-Type")) {
      if (r.feedback_type.empty()) r.feedback_type = core::ascii_lower(trim(v));
    } else if (iequals(f.name, "User-Agent")) {
      if (r.user_agent.empty()) r.user_agent = v;
    } else if (iequals(f.name, "Version")) {
      if (r.version.empty()) r.version = v;
    } else if (iequals(f.name, "Arrival-Date")) {
      if (arrival.empty()) arrival = v;
    } else if (iequals(f.name, "Received-Date")) {
      if (received.empty()) received = v;
    } else if (iequals(f.name, "Source-IP")) {
      if (r.source_ip.empty()) r.source_ip = v;
    } else if (iequals(f.name, "Original-Mail-From")) {
      if (r.original_mail_from.empty()) {
        auto a = trim(v);
        if (a.starts_with('<') && a.ends_with('>')) a = trim(a.substr(1, a.size() - 2));
        r.original_mail_from = a;
      }
    } else if (iequals(f.name, "Original-Rcpt-To") || iequals(f.name, "Removal-Recipient")) {
      for (auto& a : addresses(v)) r.original_rcpt_to.push_back(std::move(a));
    } else if (iequals(f.name, "Reported-Domain")) {
      if (r.reported_domain.empty()) r.reported_domain = v;
    }
  }
  r.arrival_date = arrival.empty() ? received : arrival;
}

void read_original(std::string_view text, Report& r) {
  r.has_original = true;
  while (text.starts_with("\r\n")) text.remove_prefix(2);
  for (const auto& f : protocol::header_fields(text)) {
    if (iequals(f.name, "X-MTA-Message-ID")) {
      std::string v = core::ascii_lower(trim(f.value()));
      bool hex = v.size() == 32;
      for (char c : v) hex = hex && hex_value(c) >= 0;
      if (hex && r.mta_message_id.empty()) r.mta_message_id = v;
    } else if (iequals(f.name, "Message-ID")) {
      if (r.message_id.empty()) r.message_id = f.value();
    } else if (iequals(f.name, "X-HmXmrOriginalRecipient")) {
      for (auto& a : addresses(f.value())) r.original_recipients.push_back(std::move(a));
    } else if (iequals(f.name, "To") || iequals(f.name, "Cc")) {
      for (auto& a : addresses(f.value())) r.to_cc.push_back(std::move(a));
    }
  }
}

bool has_jmrp_stamp(std::string_view headers) {
  for (const auto& f : protocol::header_fields(headers))
    if (iequals(f.name, "X-HmXmrOriginalRecipient")) return true;
  return false;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

std::optional<int> number(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  int n = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

std::string ContentType::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

ContentType parse_content_type(std::string_view value) {
  ContentType ct;
  size_t semi = value.find(';');
  ct.type = core::ascii_lower(trim(value.substr(0, semi)));
  size_t i = semi == std::string_view::npos ? value.size() : semi;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ';' || is_space(value[i]))) ++i;
    size_t eq = value.find_first_of("=;", i);
    if (eq == std::string_view::npos || value[eq] == ';') {
      i = eq == std::string_view::npos ? value.size() : eq;
      continue;
    }
    std::string name = core::ascii_lower(trim(value.substr(i, eq - i)));
    i = eq + 1;
    while (i < value.size() && is_space(value[i])) ++i;
    std::string v;
    if (i < value.size() && value[i] == '"') {
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        v += value[i];
      }
      ++i;  // the closing quote
    } else {
      size_t end = value.find(';', i);
      if (end == std::string_view::npos) end = value.size();
      v = trim(value.substr(i, end - i));
      i = end;
    }
    if (!name.empty()) ct.params.emplace_back(std::move(name), std::move(v));
  }
  return ct;
}

std::string quoted_printable_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '=') {
      out += c;
      continue;
    }
    if (in.substr(i + 1, 2) == "\r\n") {  // soft line break
      i += 2;
    } else if (in.substr(i + 1, 1) == "\n") {
      i += 1;
    } else if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Parsed parse_report(std::string_view message) {
  std::string msg = to_crlf(message);
  Walk walk;
  walk.visit(msg, 0);
  Report r;
  if (walk.feedback) {
    read_feedback_fields(*walk.feedback, r);
    if (r.feedback_type.empty())
      return {std::nullopt, "the message/feedback-report part has no Feedback-Type field"};
    if (walk.original) read_original(*walk.original, r);
    return {std::move(r), {}};
  }
  // Microsoft's JMRP before ARF: the reported message, stamped with
  // X-HmXmrOriginalRecipient, attached (or forwarded as the mail itself).
  std::string_view top_head = std::string_view(msg).substr(0, protocol::header_block_size(msg));
  std::optional<std::string_view> stamped;
  if (walk.original && has_jmrp_stamp(*walk.original))
    stamped = *walk.original;
  else if (has_jmrp_stamp(top_head))
    stamped = top_head;
  if (stamped) {
    r.format = Report::Format::kLegacyJmrp;
    r.feedback_type = "abuse";
    read_original(*stamped, r);
    return {std::move(r), {}};
  }
  if (walk.top_type == "multipart/report" && walk.top_report_type != "feedback-report")
    return {std::nullopt,
            "a multipart/report of type \"" + walk.top_report_type + "\", not a feedback report"};
  return {std::nullopt, "no message/feedback-report part (not an ARF report)"};
}

Complained complained_recipients(const Report& r, const std::vector<std::string>& recipients) {
  auto matching = [&](const std::vector<std::string>& evidence) {
    std::vector<std::string> out;
    for (const auto& rcpt : recipients) {
      bool named = false;
      for (const auto& e : evidence) named = named || iequals(rcpt, e);
      bool seen = false;
      for (const auto& o : out) seen = seen || iequals(o, rcpt);
      if (named && !seen) out.push_back(rcpt);
    }
    return out;
  };
  std::vector<std::string> strong = r.original_rcpt_to;
  strong.insert(strong.end(), r.original_recipients.begin(), r.original_recipients.end());
  if (auto m = matching(strong); !m.empty()) return {std::move(m), true};
  if (auto m = matching(r.to_cc); m.size() == 1) return {std::move(m), true};
  if (recipients.size() == 1) return {recipients, true};
  return {recipients, false};
}

bool suppresses(std::string_view feedback_type) {
  return feedback_type != "not-spam" && feedback_type != "auth-failure";
}

std::optional<int64_t> parse_date(std::string_view text) {
  // Drop comments and commas, then read the words in order.
  std::string clean;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (depth == 0) clean += c == ',' ? ' ' : c;
    if (c == ')' && depth > 0) --depth;
  }
  std::vector<std::string_view> words;
  std::string_view rest = clean;
  while (!(rest = trim(rest)).empty()) {
    size_t sp = rest.find_first_of(" \t\r\n");
    words.push_back(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp);
  }
  size_t i = 0;
  if (i < words.size() && !words[i].empty() && !is_digit(words[i][0])) ++i;  // day of week
  if (words.size() < i + 4) return std::nullopt;
  auto day = number(words[i]);
  static constexpr std::array<const char*, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
  unsigned month = 0;
  for (unsigned m = 0; m < kMonths.size(); ++m)
    if (iequals(words[i + 1], kMonths[m])) month = m + 1;
  auto year = number(words[i + 2]);
  if (!day || !year || month == 0 || *day < 1 || *day > 31) return std::nullopt;
  int y = *year;
  if (words[i + 2].size() == 2) y += y < 50 ? 2000 : 1900;
  if (words[i + 2].size() == 3) y += 1900;
  // hh:mm[:ss]
  std::string_view t = words[i + 3];
  size_t c1 = t.find(':');
  if (c1 == std::string_view::npos) return std::nullopt;
  size_t c2 = t.find(':', c1 + 1);
  auto hh = number(t.substr(0, c1));
  auto mm = number(t.substr(c1 + 1, c2 == std::string_view::npos ? t.npos : c2 - c1 - 1));
  std::optional<int> ss = 0;
  if (c2 != std::string_view::npos) ss = number(t.substr(c2 + 1));
  if (!hh || !mm || !ss || *hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;
  int offset_min = 0;
  if (i + 4 < words.size()) {
    std::string_view z = words[i + 4];
    if ((z[0] == '+' || z[0] == '-') && z.size() == 5) {
      auto n = number(z.substr(1));
      if (!n) return std::nullopt;
      offset_min = (*n / 100) * 60 + *n % 100;
      if (z[0] == '-') offset_min = -offset_min;
    } else {
      struct Zone {
        const char* name;
        int hours;
      };
      static constexpr Zone kZones[] = {{"UT", 0},   {"UTC", 0},  {"GMT", 0},  {"Z", 0},
                                        {"EST", -5}, {"EDT", -4}, {"CST", -6}, {"CDT", -5},
                                        {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
      for (const auto& zone : kZones)
        if (iequals(z, zone.name)) offset_min = zone.hours * 60;
      // Other names (military letters) mean -0000: no known offset.
    }
  }
  int64_t days = days_from_civil(y, month, static_cast<unsigned>(*day));
  int64_t secs = days * 86400 + *hh * 3600 + *mm * 60 + *ss - offset_min * 60;
  return secs * 1000;
}

}  // namespace mta::feedback
