#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <vector>

#include "mta/rewrite/html.hpp"

using namespace mta::rewrite::detail;

namespace {

// The raw href values of the <a>/<area> tags the scanner reports ("-" for
// a tag without href, "(none)" for href without value).
std::vector<std::string> hrefs(std::string_view html) {
  std::vector<std::string> out;
  for (const auto& l : scan_html(html).links) {
    if (!l.has_href) {
      out.push_back("-");
    } else if (!l.href_has_value) {
      out.push_back("(none)");
    } else {
      out.push_back(std::string(html.substr(l.value_begin, l.value_end - l.value_begin)));
    }
  }
  return out;
}

using V = std::vector<std::string>;

}  // namespace

TEST_SUITE("rewrite") {
  TEST_CASE("the scanner finds the hrefs a browser would") {
    struct Case {
      std::string html;
      V want;
    };
    Case cases[] = {
        {R"(<a href="x">)", {"x"}},
        {R"(<a href='x'>)", {"x"}},
        {R"(<a href=x>)", {"x"}},
        {R"(<A HREF="x">)", {"x"}},
        {"<a\thref \r\n= \"x\" >", {"x"}},
        {R"(<area shape="rect" href="x">)", {"x"}},
        {R"(<a id="1"href="x">)", {"x"}},     // no space between attributes
        {R"(<a href="x" href="y">)", {"x"}},  // first one wins
        {R"(<a name="n">)", {"-"}},
        {R"(<a href>)", {"(none)"}},
        {R"(<a href=>)", {""}},
        {R"(<a/href="x">)", {"x"}},                       // '/' acts as a separator
        {R"(<a title="<a href='y'>" href="x">)", {"x"}},  // markup inside a value
        {R"(<abbr href="x"><b href="y">)", {}},           // not a or area
        {R"(<a href="x>y">)", {"x>y"}},
        {R"(<a href=x>y>)", {"x"}},
        {R"(<!-- <a href="x"> --><a href="y">)", {"y"}},
        {R"(<!-- a -- b --!><a href="y">)", {"y"}},
        {R"(<!--><a href="y">)", {"y"}},  // abrupt empty comment
        {R"(<!---><a href="y">)", {"y"}},
        {R"(<!--[if mso]><a href="x"><![endif]--><a href="y">)", {"y"}},
        {R"(<!--[if !mso]><!--><a href="y"><!--<![endif]-->)", {"y"}},
        {R"(<!DOCTYPE html><a href="y">)", {"y"}},
        {R"(<?xml version="1.0"?><a href="y">)", {"y"}},
        {R"(<script>document.write('<a href="x">')</script><a href="y">)", {"y"}},
        {R"(<script>if (a </scriptx> b) '<a href="x">'</SCRIPT ><a href="y">)", {"y"}},
        {R"(<style>a[href="<a href='x'>"]{}</style><a href="y">)", {"y"}},
        {R"(<textarea><a href="x"></textarea><a href="y">)", {"y"}},
        {R"(<title><a href="x"></title><a href="y">)", {"y"}},
        {R"(<noscript><a href="y"></noscript>)", {"y"}},
        {R"(<script><a href="x">)", {}},  // unterminated raw text
        {R"(<!-- <a href="x">)", {}},     // unterminated comment
        {R"(<a href="x)", {}},            // unterminated quote: no tag
        {R"(<a href="x")", {}},           // tag cut off: no tag
        {R"(<a href=x)", {}},
        {"<", {}},
        {"<a", {}},
        {"</", {}},
        {"a < b <a href=y>", {"y"}},
        {"</ a><a href=y>", {"y"}},
        {"<plaintext><a href=x>", {}},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      CHECK(hrefs(c.html) == c.want);
    }
  }

  TEST_CASE("the scanner finds the last </body> outside comments and scripts") {
    struct Case {
      std::string html;
      std::optional<size_t> want;
    };
    Case cases[] = {
        {"<body>x</body>", 7},
        {"<body>x</BODY >y</body\n>", 16},
        {"<body>x</body><!-- </body> -->", 7},
        {"<body><script>'</body>'</script>", std::nullopt},
        {"<body>x</bodyx>", std::nullopt},
        {"<body>x</body", std::nullopt},
        {"<body>x", std::nullopt},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      CHECK(scan_html(c.html).last_body_end == c.want);
    }
  }

  TEST_CASE("ses:no-track is reported with the range to delete") {
    struct Case {
      std::string html, want_after_removal;
    };
    Case cases[] = {
        {R"(<a ses:no-track href="x">)", R"(<a href="x">)"},
        {R"(<a href="x" ses:no-track>)", R"(<a href="x">)"},
        {R"(<a href="x" SES:NO-TRACK="true" class="c">)", R"(<a href="x" class="c">)"},
        {"<a href=\"x\"\n  ses:no-track = 'yes'\n>", "<a href=\"x\"\n>"},
        {R"(<a ses:no-track="1"href="x">)", R"(<a href="x">)"},
        {R"(<a ses:no-track/>)", R"(<a/>)"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      auto scan = scan_html(c.html);
      REQUIRE(scan.links.size() == 1);
      CHECK(scan.links[0].no_track);
      std::string got = c.html;
      for (auto it = scan.links[0].removals.rbegin(); it != scan.links[0].removals.rend(); ++it) {
        got.erase(it->first, it->second - it->first);
      }
      CHECK(got == c.want_after_removal);
    }
  }

  TEST_CASE("attribute values decode character references like a browser") {
    struct Case {
      std::string raw;
      std::optional<std::string> want;
    };
    Case cases[] = {
        {"a&amp;b", "a&b"},
        {"a&#38;b", "a&b"},
        {"a&#x26;b", "a&b"},
        {"a&#38b", "a&b"},  // numeric without ';'
        {"a&AMP;b", "a&b"},
        {"?a=1&amp;b=2", "?a=1&b=2"},
        {"?a=1&b=2", "?a=1&b=2"},           // not a reference
        {"?a=1&copy=2", "?a=1&copy=2"},     // legacy name followed by '=': text
        {"?a=1&copyx", "?a=1&copyx"},       // followed by an alphanumeric: text
        {"?a=1&copy-x", "?a=1\xC2\xA9-x"},  // legacy name decoded without ';'
        {"?a&lang=en", "?a&lang=en"},
        {"&amp", "&"},
        {"&equals;&quest;&sol;&colon;&num;&percnt;", "=?/:#%"},
        {"&#0;", "\xEF\xBF\xBD"},
        {"&#x110000;", "\xEF\xBF\xBD"},
        {"&#xD800;", "\xEF\xBF\xBD"},
        {"&#x80;", "\xE2\x82\xAC"},  // windows-1252 euro
        {"&#99999999999999999999;", "\xEF\xBF\xBD"},
        {"&#;", "&#;"},
        {"&#x;", "&#x;"},
        {"& x", "& x"},
        {"&", "&"},
        {"&unknownentity;", std::nullopt},  // might be one we do not know
        {"", ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.raw);
      CHECK(decode_attribute(c.raw) == c.want);
    }
  }

  TEST_CASE("only absolute http(s) URLs that are not placeholders are trackable") {
    struct Case {
      std::string url;
      bool want;
    };
    Case cases[] = {
        {"http://example.com/", true},
        {"https://example.com/a?b=c#d", true},
        {"HTTPS://EXAMPLE.COM", true},
        {"hTtP://x", true},
        {"https://", false},
        {"mailto:a@example.com", false},
        {"tel:+15551234", false},
        {"#top", false},
        {"/relative/path", false},
        {"relative.html", false},
        {"//example.com/x", false},
        {"javascript:alert(1)", false},
        {"ftp://example.com/", false},
        {"{{unsubscribe_url}}", false},
        {"https://x.test/{{id}}", false},
        {"https://x.test/?u={% raw %}", false},
        {"https://x.test/?e=*|EMAIL|*", false},
        {"https://x.test/?e=%%email%%", false},
        {"https://x.test/?e=$email$", false},
        {"https://x.test/?price=$5", true},
        {"[unsubscribe]", false},
        {"{link}", false},
        {"%%view_online%%", false},
    };
    for (const auto& c : cases) {
      CAPTURE(c.url);
      CHECK(is_trackable(c.url) == c.want);
    }
    CHECK(clean_url(" \t https://x.test/a\nb\r\n ") == "https://x.test/ab");
  }
}
