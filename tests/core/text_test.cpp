#include "mta/core/text.hpp"

#include <doctest/doctest.h>

using namespace mta::core;

TEST_SUITE("core") {
  TEST_CASE("ascii_lower changes A-Z only") {
    CHECK(ascii_lower("") == "");
    CHECK(ascii_lower("Bob@Example.COM") == "bob@example.com");
    CHECK(ascii_lower("@[\\]^_`{Z}") == "@[\\]^_`{z}");
    CHECK(ascii_lower("\xc3\x89T\xc3\xa9") == "\xc3\x89t\xc3\xa9");  // UTF-8 octets untouched
  }

  TEST_CASE("trim_wsp drops spaces and tabs at both ends only") {
    CHECK(trim_wsp(" \t a b \t") == "a b");
    CHECK(trim_wsp("\r\nx\r\n") == "\r\nx\r\n");
    CHECK(trim_wsp("  ") == "");
  }

  TEST_CASE("escape_markup escapes the five markup characters") {
    CHECK(escape_markup("plain") == "plain");
    CHECK(escape_markup(R"(<a href="x?a=1&b='2'">)") ==
          "&lt;a href=&quot;x?a=1&amp;b=&#39;2&#39;&quot;&gt;");
    CHECK(escape_markup("&amp;") == "&amp;amp;");
  }
}
