// The MIME side of the rewriter (internal to mta/rewrite): finds the
// text/html parts of a message that may be rewritten, walking nested
// multiparts (RFC 2046 5.1.1: delimiters are "--boundary" lines, with
// optional transport padding; the CRLF before a delimiter belongs to it; a
// missing close delimiter ends the multipart at the end of its body). Never
// descends into message/rfc822 (someone else's mail). Skips HTML parts that
// are attachments, have a transfer encoding other than
// 7bit/8bit/binary/quoted-printable/base64, or a charset that is not
// ASCII-compatible (UTF-16/32, UTF-7, ISO-2022-*, ...).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace mta::rewrite::detail {

enum class Cte { kIdentity, kQuotedPrintable, kBase64 };

struct HtmlPartRef {
  size_t body_begin;  // offsets into the message
  size_t body_end;    // excludes the CRLF that belongs to the next delimiter
  Cte cte;
  bool line_limit;  // 7bit/8bit: lines must stay within 998 octets
};

std::vector<HtmlPartRef> find_html_parts(std::string_view message);

}  // namespace mta::rewrite::detail
