// Transfer encodings for the rewriter (internal to mta/rewrite): a
// quoted-printable decoder that also reports where each logical line (the
// text up to a hard line break) lies in both the encoded and the decoded
// text, so the renderer can re-encode only the lines it changes and copy the
// others byte for byte; and encoders that append to the caller's output
// string (RFC 2045: QP lines of at most 76 characters with "=" soft breaks,
// base64 lines of 76 characters, CRLF).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mta::rewrite::detail {

// End of one encoded QP line: `enc_end` just past its line end in the
// encoded text (or the end of the text), `dec_end` the same point in the
// decoded text; `soft` when it ends in a soft break ("=" CRLF), so the next
// line continues the same decoded line.
struct QpLine {
  size_t enc_end;
  size_t dec_end;
  bool soft;
};

// Decodes `enc` into `dec` (appending; CRLF hard breaks, a bare LF is taken
// as a hard break too and decodes to CRLF). Lenient like RFC 2045 6.7 asks:
// "=" not followed by two hex digits is kept literally, trailing white space
// of encoded lines is dropped, "=" + white space + line end is a soft break.
// `lines` gets one entry per encoded line (at least one); the last one ends
// at enc.size().
void qp_decode(std::string_view enc, std::string& dec, std::vector<QpLine>& lines);

// Appends `data` quoted-printable encoded. CRLF in `data` is a hard line
// break; bare CR or LF, "=", controls and 8-bit octets become =XX; a space
// or tab before a line break or at the end becomes =20 / =09. No line is
// longer than 76 characters (the soft-break "=" included). With
// `soft_end`, the caller appends a soft break after the data, so the last
// line keeps room for its "=".
void qp_encode(std::string_view data, std::string& out, bool soft_end = false);

// Appends `data` base64 encoded in lines of 76 characters separated by CRLF
// (no CRLF after the last line).
void base64_lines(std::string_view data, std::string& out);

// Appends the decoded octets of a base64 body (CR, LF, space and tab
// ignored). False, leaving `out` as it was, on any other character outside
// the alphabet, data after the padding or a bad length.
bool base64_decode(std::string_view in, std::string& out);

}  // namespace mta::rewrite::detail
