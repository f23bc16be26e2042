// The HTML side of the rewriter (internal to mta/rewrite): a scanner that
// follows the WHATWG tokenizer closely enough to find the same <a>/<area>
// start tags, href attributes and </body> end tags a browser would (comments,
// bogus comments, raw-text elements such as <script> and <style>, quoted and
// unquoted attribute values, a tag left open at the end of the input is no
// tag), working on bytes so any ASCII-compatible charset passes through; the
// attribute-value character-reference decoder; and the test for URLs that
// may be tracked. Positions are offsets into the scanned text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mta::rewrite::detail {

// One <a> or <area> start tag.
struct LinkTag {
  bool has_href = false;  // the first href attribute (a browser ignores repeats)
  bool href_has_value = false;
  size_t name_begin = 0;   // the "h" of href
  size_t value_begin = 0;  // value bytes, quotes excluded
  size_t value_end = 0;
  size_t attr_end = 0;  // after the closing quote (== value_end when unquoted)
  char quote = 0;       // '"', '\'' or 0 (unquoted)
  bool no_track = false;
  // The raw value of a ses:tags attribute ("k:v;k2:v2"), entities not yet
  // decoded; empty when there is none.
  std::string_view tags;
  // The ses:no-track and ses:tags attributes to delete: [begin, end),
  // including the white space before each.
  std::vector<std::pair<size_t, size_t>> removals;
};

struct HtmlScan {
  std::vector<LinkTag> links;  // document order
  // The '<' of the last </body> end tag outside comments and raw text.
  std::optional<size_t> last_body_end;
};

HtmlScan scan_html(std::string_view html);

// An attribute value with its character references decoded the way the
// HTML tokenizer does inside attribute values (numeric references, named
// ones, legacy names without ";" unless followed by "=" or an alphanumeric).
// Non-ASCII characters come out as UTF-8. nullopt when the value holds a
// "&name;" this decoder does not know (then a browser might open something
// else, so the link is not offered).
std::optional<std::string> decode_attribute(std::string_view raw);

// What a browser would open for an href value already decoded: ASCII tab
// and newlines removed, leading and trailing C0 controls and spaces trimmed.
std::string clean_url(std::string_view decoded);

// An absolute http:// or https:// URL (any case) that is not a template
// placeholder ({{ }}, {% %}, *| |*, %%...%%, $name$; or starting with "[",
// "{").
bool is_trackable(std::string_view url);

}  // namespace mta::rewrite::detail
