// Per-recipient HTML rewriting for open and click tracking (issue 8).
//
// Template::parse() reads a spooled message once: it finds the text/html
// parts (nested multiparts, 7bit/8bit/binary, quoted-printable and base64;
// not message/rfc822 attachments, not Content-Disposition: attachment, not
// charsets whose octets are not ASCII-compatible), decodes them, and finds
// the links a browser would see (<a href> and <area href> outside comments,
// <script>, <style> and other raw-text elements). render() then writes one
// recipient's copy: each offered link's href value replaced by what the
// caller's click_url returns, `ses:no-track` and `ses:tags` attributes
// removed (the tags go to Link::tags), and an
// optional 1x1 pixel <img> added. The module knows nothing of tokens or
// base URLs: the caller (delivery's render step) supplies them.
//
// Invariants:
//  - Only the bytes of text/html parts' bodies change. Headers, other parts,
//    preamble, epilogue and delimiters are copied byte for byte.
//  - Inside an HTML part, the decoded text changes only where an href value
//    is replaced, a ses:no-track or ses:tags attribute is removed, or the
//    pixel is inserted (plus, for 7bit/8bit parts, a line break at white
//    space inside a tag when a line would otherwise exceed 998 octets). A
//    part is re-encoded with its own transfer encoding: quoted-printable
//    lines that hold no change are copied as they were, changed ones are
//    re-encoded (76-character lines); a base64 part is re-encoded whole
//    (76-character lines) when anything in it changed.
//  - With click_url always returning nullopt, no ses:no-track or ses:tags
//    attribute and an empty pixel_url, render() returns the message
//    unchanged.
//  - A part the module cannot decode (bad base64, unknown encoding, UTF-16,
//    NUL octets) is left as it is; parse() never fails and never reads out
//    of bounds, whatever the input.
//
// The pixel goes into every rewritable text/html part (a client shows one
// alternative of a multipart/alternative; when a multipart/mixed shows two
// HTML parts, both carry the same URL, so the image is fetched once).
//
// A Template is immutable after parse(): concurrent render() calls are safe,
// and copies share the parsed data.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::rewrite {

// One rewritable link of the message, in document order over all text/html
// parts.
struct Link {
  uint32_t index;
  // The href value as a browser would open it: character references
  // decoded (&amp; -> &; non-ASCII ones as UTF-8), tabs and line breaks
  // removed, leading and trailing spaces and controls trimmed. Always an
  // absolute http:// or https:// URL that is not a template placeholder.
  std::string url;
  // SES's ses:tags attribute of the link ("name:value;name2:value2",
  // entities decoded; the attribute itself is removed like ses:no-track):
  // the Click event's linkTags. Empty when absent.
  std::string tags;
};

// Returns the absolute replacement URL for link `index` (whose url is
// `url`), or nullopt to leave that link as it is. Called once per link, in
// index order, during each render().
using ClickUrl = std::function<std::optional<std::string>(uint32_t index, std::string_view url)>;

class Template final {
 public:
  // `message`: a whole RFC 5322 message (header + body, CRLF line ends, not
  // dot-stuffed) as stored in the spool. The Template keeps its own copy.
  static Template parse(std::string_view message);
  // The same, taking the caller's string instead of copying it.
  static Template parse_owned(std::string&& message);

  // Whether some text/html part can be rewritten (when false, render()
  // returns the message unchanged and need not be called).
  bool has_html() const;
  // The links that will be offered to click_url.
  const std::vector<Link>& links() const;
  // Decoded bytes of the rewritable HTML parts (for throughput figures).
  size_t html_bytes() const;
  const std::string& message() const;

  // The message for one recipient. A replacement URL is written
  // entity-escaped for its attribute (& -> &amp;, and the quote in use;
  // quoted with '"' when the original value was unquoted and the URL holds
  // characters an unquoted value cannot; CR, LF and NUL dropped).
  // `pixel_url` (escaped the same way), when not empty, adds
  //   <img src="PIXEL" width="1" height="1" alt="" border="0" style="..." />
  // before the last </body> of each rewritable HTML part, or, when there is
  // none, at the end of the part's decoded content (before its final line
  // break).
  std::string render(const ClickUrl& click_url, std::string_view pixel_url) const;

 private:
  struct Impl;
  explicit Template(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mta::rewrite
