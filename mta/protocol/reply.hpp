// SMTP replies (RFC 5321 4.2) with enhanced status codes (RFC 3463).
// A reply is kept whole: code, enhanced code and text, so that what a
// remote server said can be logged, classified and published unchanged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mta::protocol {

struct Reply {
  int code = 0;          // 220, 250, 451, 550 ...
  std::string enhanced;  // "2.0.0"; empty when none
  std::string text;      // lines joined with '\n'; no CRLF

  // Wire form: each line "CODE-ENH text\r\n", the last "CODE ENH text\r\n".
  // Without an enhanced code: "CODE text". An empty text gives "CODE ENH\r\n".
  std::string format() const;
  // One line for logs and events: "550 5.1.1 text line1 text line2".
  std::string to_string() const;
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
};

// Incremental parser for replies read from a server (the client side).
// Feed it lines without CRLF; it returns a Reply when the final line
// ("CODE " or just "CODE") of a possibly multi-line reply has been seen.
// The enhanced code is taken from the first line when present
// ("250-2.1.0 ok"), and removed from the text of every line that repeats it;
// an enhanced code whose class differs from the reply's first digit
// ("250 5.0.0") is left as text (RFC 3463 2). kError, after which the parser
// starts afresh, is for a line that is not Reply-code (RFC 5321 4.2: [2-5]
// [0-5][0-9]) followed by ' ', '-' or the end, and for a code that changes
// between the lines of one reply. A line fed after kDone without take()
// starts a new reply.
class ReplyParser {
 public:
  enum class Status { kNeedMore, kDone, kError };
  Status feed_line(std::string_view line);
  Reply take();  // valid after kDone; resets the parser

 private:
  void reset();

  Reply cur_;
  bool started_ = false;
  bool done_ = false;
};

// "2.1.5" / "5.7.1": class 2/4/5, subject and detail 0..999.
bool is_enhanced_code(std::string_view s);

}  // namespace mta::protocol
