#include "mta/protocol/data_reader.hpp"

#include <cstring>

namespace mta::protocol {

DataReader::DataReader(size_t max_bytes, size_t max_line)
    : max_bytes_(max_bytes), max_line_(max_line) {}

size_t DataReader::feed(std::string_view in) {
  if (done_) return 0;
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;
  while (p < end && !done_) {
    switch (state_) {
      case LineState::kStart:
        if (*p == '.') {
          state_ = LineState::kDot;
          ++p;
        } else {
          state_ = LineState::kText;
        }
        break;

      case LineState::kDot:
        if (*p == '\r') {
          state_ = LineState::kDotCr;
          ++p;
        } else if (*p == '\n') {
          // "." LF never ends the data: content, kept as "." (smuggling).
          ++p;
          store(".\r\n", 3);
          line_size_ = 1;
          end_line(false);
        } else {
          state_ = LineState::kText;  // the dot was stuffing: drop it
        }
        break;

      case LineState::kDotCr:
        if (*p == '\n') {
          ++p;
          if (prev_crlf_) {
            done_ = true;  // <CRLF>.<CRLF>
            break;
          }
          // LF "." CRLF: content, kept as "." (smuggling).
          store(".\r\n", 3);
          line_size_ = 2;
          end_line(true);
        } else {
          // ".\r" and more: a stuffed line whose content starts with a CR.
          store("\r", 1);
          line_size_ = 1;
          cr_ = true;
          state_ = LineState::kText;
        }
        break;

      case LineState::kText: {
        size_t avail = static_cast<size_t>(end - p);
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', avail));
        if (nl == nullptr) {
          // The line goes on in the next feed: store what is here.
          store(p, avail);
          line_size_ += avail;
          cr_ = end[-1] == '\r';
          p = end;
          break;
        }
        size_t n = static_cast<size_t>(nl - p);
        if (n > 0) cr_ = nl[-1] == '\r';  // else the CR, if any, came in an earlier feed
        line_size_ += n;
        if (cr_) {
          store(p, n + 1);
          end_line(true);
        } else {
          store(p, n);
          store("\r\n", 2);
          end_line(false);
        }
        p = nl + 1;
        break;
      }
    }
  }
  size_t consumed = static_cast<size_t>(p - begin);
  // The octets of the terminator, stuffing dots and line ends are neither NUL
  // nor 8-bit, so scanning the raw input is the same as scanning the content.
  scan_octets(in.substr(0, consumed));
  return consumed;
}

void DataReader::store(const char* p, size_t n) {
  uint64_t before = total_;
  total_ += n;
  if (too_big_) return;
  if (total_ <= max_bytes_) {
    body_.append(p, n);
    return;
  }
  too_big_ = true;
  body_.append(p, static_cast<size_t>(max_bytes_ - before));
}

void DataReader::end_line(bool crlf) {
  uint64_t content = line_size_ - (crlf ? 1 : 0);
  if (content > max_line_) long_line_ = true;
  if (!crlf) bare_lf_ = true;
  prev_crlf_ = crlf;
  line_size_ = 0;
  cr_ = false;
  state_ = LineState::kStart;
}

void DataReader::scan_octets(std::string_view s) {
  if (!has_nul_ && std::memchr(s.data(), '\0', s.size()) != nullptr) has_nul_ = true;
  if (eight_bit_) return;
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, u + i, 8);
    if ((w & 0x8080808080808080ull) != 0) {
      eight_bit_ = true;
      return;
    }
  }
  for (; i < s.size(); ++i) {
    if ((u[i] & 0x80) != 0) {
      eight_bit_ = true;
      return;
    }
  }
}

}  // namespace mta::protocol
