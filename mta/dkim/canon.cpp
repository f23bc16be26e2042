#include "mta/dkim/canon.hpp"
#include "mta/core/text.hpp"

#include <algorithm>
#include <map>

namespace mta::dkim {
namespace {

bool wsp(char c) {
  return c == ' ' || c == '\t';
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && wsp(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::optional<ParsedMessage> parse_message(std::string_view m, std::string* error) {
  ParsedMessage out;
  size_t pos = 0;
  while (pos < m.size()) {
    if (m.compare(pos, 2, "\r\n") == 0) {
      out.body = m.substr(pos + 2);
      return out;
    }
    size_t start = pos, end;
    for (;;) {
      size_t eol = m.find("\r\n", pos);
      if (eol == std::string_view::npos) {
        end = pos = m.size();
        break;
      }
      pos = eol + 2;
      if (pos < m.size() && wsp(m[pos])) continue;  // a continuation line
      end = eol;
      break;
    }
    std::string_view raw = m.substr(start, end - start);
    size_t colon = raw.find(':');
    std::string_view name =
        colon == std::string_view::npos ? raw : trim_right(raw.substr(0, colon));
    bool ok = colon != std::string_view::npos && !name.empty();
    for (char c : name)
      if (c <= ' ' || c >= 0x7f) ok = false;
    if (!ok) {
      if (error) {
        std::string line(raw.substr(0, std::min<size_t>(raw.find("\r\n"), 60)));
        *error = "malformed header line: \"" + line + "\"";
      }
      return std::nullopt;
    }
    out.fields.push_back(HeaderField{name, raw});
  }
  return out;
}

void relaxed_header(std::string_view raw, std::string& out, bool crlf) {
  size_t colon = raw.find(':');
  for (char c : trim_right(raw.substr(0, colon))) out += lower(c);
  out += ':';
  bool space = false, any = false;
  std::string_view value = raw.substr(colon + 1);
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') {
      ++i;  // unfold
    } else if (wsp(c)) {
      space = true;
    } else {
      if (space && any) out += ' ';
      space = false;
      any = true;
      out += c;
    }
  }
  if (crlf) out += "\r\n";
}

void relaxed_body(std::string_view body, const std::function<void(std::string_view)>& sink) {
  std::string buf, line;
  buf.reserve(16384);
  size_t blank = 0, pos = 0;
  while (pos < body.size()) {
    size_t eol = body.find("\r\n", pos);
    std::string_view in =
        eol == std::string_view::npos ? body.substr(pos) : body.substr(pos, eol - pos);
    pos = eol == std::string_view::npos ? body.size() : eol + 2;
    line.clear();
    bool space = false;
    for (char c : in) {
      if (wsp(c)) {
        space = true;
        continue;
      }
      if (space) line += ' ';
      space = false;
      line += c;
    }
    if (line.empty()) {
      ++blank;  // kept only if a non-empty line follows
      continue;
    }
    for (; blank > 0; --blank) buf += "\r\n";
    buf += line;
    buf += "\r\n";
    if (buf.size() >= 8192) {
      sink(buf);
      buf.clear();
    }
  }
  if (!buf.empty()) sink(buf);
}

std::vector<std::string> header_list(const std::vector<HeaderField>& fields,
                                     const std::vector<std::string>& sign,
                                     const std::vector<std::string>& oversign) {
  std::vector<std::string> h;
  for (const auto& f : fields)
    for (const auto& s : sign)
      if (iequals(f.name, s)) {
        h.push_back(s);
        break;
      }
  for (const auto& o : oversign) h.push_back(o);
  return h;
}

std::vector<const HeaderField*> select_fields(const std::vector<HeaderField>& fields,
                                              const std::vector<std::string>& h) {
  std::map<std::string, size_t> used;  // lowercase name -> instances taken from the bottom
  std::vector<const HeaderField*> out;
  for (const auto& name : h) {
    size_t& n = used[core::ascii_lower(name)];
    size_t seen = 0;
    for (auto it = fields.rbegin(); it != fields.rend(); ++it)
      if (iequals(it->name, name) && seen++ == n) {
        out.push_back(&*it);
        break;
      }
    ++n;
  }
  return out;
}

}  // namespace mta::dkim
