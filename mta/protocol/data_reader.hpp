// DataReader: the server side of the DATA phase as an incremental state
// machine (RFC 5321 4.1.1.4, 4.5.2). Feed it whatever the socket returned;
// it removes dot-stuffing, finds the end of data, normalises line ends,
// enforces limits, and tells how many bytes it consumed, so bytes after the
// terminator (pipelined commands) stay with the caller.
//
// End of data is only "<CRLF>.<CRLF>": a "." line must be ended by CRLF and
// the line before it must have ended with CRLF (or it is the first line).
// This closes the SMTP smuggling hole (a "\n.\n" or "\r.\r" never ends
// the data). Lines ended by a bare LF are kept and stored with CRLF; a "."
// line that does not end the data (ended by a bare LF, or after a bare-LF
// line) is content and stored as "." (not unstuffed to an empty line). A CR
// not followed by LF is content. Limits:
//  - bytes stored beyond max_bytes are dropped (not buffered) and
//    too_big() is set; reading continues to the terminator so the session
//    can answer 552 and stay in sync;
//  - a line longer than max_line octets (without CRLF, after unstuffing)
//    sets long_line();
//  - a NUL octet sets has_nul().
// The stored body always ends with CRLF when it is non-empty, unless
// too_big() (it is then cut at exactly max_bytes).
//
// Cost: linear, and a constant amount of work per line plus a memchr and a
// block append per line segment. Nothing is carried between feeds but a
// few flags: a line split across feeds is appended as it arrives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mta::protocol {

class DataReader {
 public:
  DataReader(size_t max_bytes, size_t max_line = 998);

  // Consumes bytes of `in` up to and including the terminator; returns the
  // number consumed (== in.size() unless done() became true).
  size_t feed(std::string_view in);

  bool done() const { return done_; }
  bool too_big() const { return too_big_; }
  bool long_line() const { return long_line_; }
  bool has_nul() const { return has_nul_; }
  bool bare_lf() const { return bare_lf_; }
  bool eight_bit() const { return eight_bit_; }    // any octet >= 0x80
  uint64_t total_bytes() const { return total_; }  // unstuffed bytes seen, stored or not

  std::string& body() { return body_; }

 private:
  // Where in the current line the next byte falls. A line starting with "."
  // is held back (the dot is never stored as is) until it is known to be
  // "." CRLF, "." LF, or a stuffed line.
  enum class LineState {
    kStart,  // nothing of the line seen yet
    kDot,    // seen "."
    kDotCr,  // seen ".\r"
    kText,   // inside a line whose start has been stored
  };

  void store(const char* p, size_t n);
  void end_line(bool crlf);
  void scan_octets(std::string_view consumed);

  size_t max_bytes_;
  size_t max_line_;
  std::string body_;
  LineState state_ = LineState::kStart;
  uint64_t line_size_ = 0;  // content octets of the current line so far (a final CR included)
  bool cr_ = false;         // the last octet of the current line so far is CR
  bool prev_crlf_ = true;   // the previous line ended with CRLF (true before the first)
  bool done_ = false;
  bool too_big_ = false;
  bool long_line_ = false;
  bool has_nul_ = false;
  bool bare_lf_ = false;
  bool eight_bit_ = false;
  uint64_t total_ = 0;
};

}  // namespace mta::protocol
