#include "mta/protocol/reply.hpp"

#include "mta/protocol/ascii.hpp"

namespace mta::protocol {

namespace {

// Calls `f` for each '\n'-separated line of `text` (one empty line for "").
template <class F>
void for_each_line(std::string_view text, F f) {
  for (;;) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      f(text, true);
      return;
    }
    f(text.substr(0, nl), false);
    text.remove_prefix(nl + 1);
  }
}

// A digit run of 1..3 at the start of `s`; returns its length, 0 if none.
size_t digits_1_to_3(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && n < 4 && ascii::is_digit(s[n])) ++n;
  return n >= 1 && n <= 3 ? n : 0;
}

// The enhanced code at the start of `text` when it is followed by a space or
// the end; empty otherwise.
std::string_view leading_enhanced(std::string_view text) {
  std::string_view token = text.substr(0, text.find(' '));
  return is_enhanced_code(token) ? token : std::string_view{};
}

}  // namespace

std::string Reply::format() const {
  std::string out;
  std::string code_str = std::to_string(code);
  for_each_line(text, [&](std::string_view line, bool last) {
    out += code_str;
    std::string body = enhanced;
    if (!line.empty()) {
      if (!body.empty()) body += ' ';
      body += line;
    }
    // A CR inside the text would end the line early on the wire.
    std::erase(body, '\r');
    if (last) {
      if (!body.empty()) out += ' ';
    } else {
      out += '-';
    }
    out += body;
    out += "\r\n";
  });
  return out;
}

std::string Reply::to_string() const {
  std::string out = std::to_string(code);
  if (!enhanced.empty()) out += ' ' + enhanced;
  for_each_line(text, [&](std::string_view line, bool) {
    if (line.empty()) return;
    out += ' ';
    out += line;
  });
  return out;
}

void ReplyParser::reset() {
  cur_ = Reply{};
  started_ = false;
  done_ = false;
}

ReplyParser::Status ReplyParser::feed_line(std::string_view line) {
  if (done_) reset();
  if (line.ends_with('\r')) line.remove_suffix(1);
  bool valid = line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
               line[1] <= '5' && ascii::is_digit(line[2]) &&
               (line.size() == 3 || line[3] == ' ' || line[3] == '-');
  if (!valid) {
    reset();
    return Status::kError;
  }
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  bool last = line.size() == 3 || line[3] == ' ';
  std::string_view text = line.size() > 3 ? line.substr(4) : std::string_view{};

  if (!started_) {
    started_ = true;
    cur_.code = code;
    std::string_view enh = leading_enhanced(text);
    if (!enh.empty() && enh[0] == line[0]) {
      cur_.enhanced = enh;
      text.remove_prefix(enh.size());
      if (!text.empty()) text.remove_prefix(1);
    }
  } else {
    if (code != cur_.code) {
      reset();
      return Status::kError;
    }
    if (!cur_.enhanced.empty() && leading_enhanced(text) == cur_.enhanced) {
      text.remove_prefix(cur_.enhanced.size());
      if (!text.empty()) text.remove_prefix(1);
    }
    cur_.text += '\n';
  }
  cur_.text += text;
  if (!last) return Status::kNeedMore;
  done_ = true;
  return Status::kDone;
}

Reply ReplyParser::take() {
  Reply r = std::move(cur_);
  reset();
  return r;
}

bool is_enhanced_code(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  s.remove_prefix(2);
  size_t n = digits_1_to_3(s);
  if (n == 0 || n >= s.size() || s[n] != '.') return false;
  s.remove_prefix(n + 1);
  n = digits_1_to_3(s);
  return n != 0 && n == s.size();
}

}  // namespace mta::protocol
