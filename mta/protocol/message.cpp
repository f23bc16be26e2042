#include "mta/protocol/message.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "mta/protocol/ascii.hpp"

namespace mta::protocol {

namespace {

using ascii::is_wsp;
using ascii::trim_wsp;

// RFC 5322 3.6.8 field-name: printable ASCII except ':'.
bool is_field_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c < 33 || c > 126 || c == ':') return false;
  }
  return true;
}

bool is_tag_char(char c) {
  return ascii::is_alnum(c) || c == '_' || c == '-' || c == '.' || c == '@';
}

// Checks one tag name or value; returns the reason it is bad, or "".
std::string check_tag_part(std::string_view what, std::string_view s) {
  if (s.empty()) return std::string(what) + " is empty";
  if (s.size() > 256) return std::string(what) + " is longer than 256 characters";
  for (char c : s) {
    if (!is_tag_char(c)) return std::string(what) + " has a character outside [A-Za-z0-9_.@-]";
  }
  return {};
}

constexpr size_t kFoldAt = 78;

}  // namespace

size_t header_block_size(std::string_view message) {
  if (message.starts_with("\r\n")) return 2;
  size_t blank = message.find("\r\n\r\n");
  return blank == std::string_view::npos ? message.size() : blank + 4;
}

std::string HeaderField::value() const {
  std::string_view v = raw.substr(raw.find(':') + 1);
  std::string out;
  out.reserve(v.size());
  // Within a field CRLF only occurs before WSP (a fold) and at the end, so
  // dropping every line end unfolds it.
  for (char c : v) {
    if (c != '\r' && c != '\n') out += c;
  }
  std::string_view t = trim_wsp(out);
  return std::string(t);
}

std::vector<HeaderField> header_fields(std::string_view message) {
  std::vector<HeaderField> fields;
  std::string_view h = message.substr(0, header_block_size(message));
  bool in_field = false;
  size_t pos = 0;
  while (pos < h.size()) {
    size_t nl = h.find('\n', pos);
    size_t end = nl == std::string_view::npos ? h.size() : nl + 1;
    std::string_view line = h.substr(pos, end - pos);
    if (line == "\r\n" || line == "\n") break;  // the blank line ending the header
    if (is_wsp(line[0])) {
      if (in_field) {
        HeaderField& f = fields.back();
        f.raw = std::string_view(f.raw.data(), f.raw.size() + line.size());
      }
    } else {
      size_t colon = line.find(':');
      std::string_view name;
      if (colon != std::string_view::npos) name = trim_wsp(line.substr(0, colon));
      in_field = is_field_name(name);
      if (in_field) fields.push_back(HeaderField{name, line});
    }
    pos = end;
  }
  return fields;
}

std::optional<std::string> header_value(std::string_view message, std::string_view name) {
  for (const auto& f : header_fields(message)) {
    if (ascii::iequals(f.name, name)) return f.value();
  }
  return std::nullopt;
}

size_t remove_headers(std::string& message, const std::vector<std::string_view>& names) {
  struct Range {
    size_t offset;
    size_t size;
  };
  std::vector<Range> doomed;
  for (const auto& f : header_fields(message)) {
    for (auto n : names) {
      if (ascii::iequals(f.name, n)) {
        doomed.push_back({static_cast<size_t>(f.raw.data() - message.data()), f.raw.size()});
        break;
      }
    }
  }
  if (doomed.empty()) return 0;
  // One pass: each kept stretch moves down once, whatever the number of
  // removed fields.
  char* data = message.data();
  size_t write = doomed[0].offset;
  for (size_t i = 0; i < doomed.size(); ++i) {
    size_t from = doomed[i].offset + doomed[i].size;
    size_t to = i + 1 < doomed.size() ? doomed[i + 1].offset : message.size();
    std::memmove(data + write, data + from, to - from);
    write += to - from;
  }
  message.resize(write);
  return doomed.size();
}

TagsResult parse_tags(std::string_view value) {
  TagsResult r;
  std::string_view rest = trim_wsp(value);
  if (rest.empty()) return r;
  for (size_t n = 1;; ++n) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t eq = item.find('=');
    std::string err;
    if (eq == std::string_view::npos) {
      err = "is not name=value";
    } else {
      std::string_view name = trim_wsp(item.substr(0, eq));
      std::string_view val = trim_wsp(item.substr(eq + 1));
      err = check_tag_part("name", name);
      if (err.empty()) err = check_tag_part("value", val);
      if (err.empty()) {
        for (const auto& t : r.tags) {
          if (t.first == name) err = "repeats the name " + std::string(name);
        }
      }
      if (err.empty()) r.tags.emplace_back(name, val);
    }
    if (!err.empty()) {
      r.tags.clear();
      r.error = "tag " + std::to_string(n) + " " + err;
      return r;
    }
    if (comma == std::string_view::npos) return r;
    rest.remove_prefix(comma + 1);
  }
}

std::string format_header(std::string_view name, std::string_view value) {
  // Unfold what the caller may have folded and turn any other CR or LF into
  // a space: a line end inside a value would inject a header field.
  std::string v;
  v.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '\r' && value[i] != '\n') {
      v += value[i];
      continue;
    }
    size_t j = i;
    while (j < value.size() && (value[j] == '\r' || value[j] == '\n')) ++j;
    if (j == value.size() || !is_wsp(value[j])) v += ' ';
    i = j - 1;
  }
  std::string_view rest = trim_wsp(v);

  std::string out;
  out.reserve(name.size() + rest.size() + 2 + 3 * (rest.size() / kFoldAt + 1));
  out += name;
  out += ':';
  size_t line_size = out.size();
  bool first = true;
  while (!rest.empty() || first) {
    size_t word_at = 0;
    while (word_at < rest.size() && is_wsp(rest[word_at])) ++word_at;
    size_t word_end = word_at;
    while (word_end < rest.size() && !is_wsp(rest[word_end])) ++word_end;
    // The separator is kept as written, so unfolding gives back the value;
    // the first word follows "Name:" with one space.
    std::string_view sep = first ? std::string_view(" ") : rest.substr(0, word_at);
    std::string_view word = rest.substr(word_at, word_end - word_at);
    // Fold before a word that would overflow the line, unless it is the
    // first: a word is never broken, however long.
    if (!first && line_size + sep.size() + word.size() > kFoldAt) {
      out += "\r\n";
      line_size = 0;
    }
    out += sep;
    out += word;
    line_size += sep.size() + word.size();
    rest.remove_prefix(word_end);
    first = false;
  }
  out += "\r\n";
  return out;
}

std::string rfc5322_date(int64_t unix_seconds) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  sys_seconds tp{seconds{unix_seconds}};
  sys_days day = floor<days>(tp);
  year_month_day ymd{day};
  hh_mm_ss hms{tp - day};
  char buf[64];
  int n = std::snprintf(
      buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d +0000", kDays[weekday{day}.c_encoding()],
      static_cast<unsigned>(ymd.day()), kMonths[static_cast<unsigned>(ymd.month()) - 1],
      static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
      static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace mta::protocol

namespace mta::protocol {

std::string dot_stuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 64 + 8);
  size_t pos = 0;
  while (pos < message.size()) {
    if (message[pos] == '.') out.push_back('.');
    size_t nl = message.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.append(message.substr(pos));
      break;
    }
    out.append(message.substr(pos, nl + 1 - pos));
    pos = nl + 1;
  }
  if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0)) {
    if (out.back() == '\r')
      out.push_back('\n');
    else
      out.append("\r\n");
  }
  out.append(".\r\n");
  return out;
}

}  // namespace mta::protocol
