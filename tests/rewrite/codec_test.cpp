#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mta/core/base64.hpp"
#include "mta/rewrite/codec.hpp"

using namespace mta::rewrite::detail;

namespace {

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t e = s.find("\r\n", start);
    if (e == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, e - start));
    start = e + 2;
  }
}

std::string decode(const std::string& enc) {
  std::string dec;
  std::vector<QpLine> lines;
  qp_decode(enc, dec, lines);
  return dec;
}

}  // namespace

TEST_SUITE("rewrite") {
  TEST_CASE("quoted-printable decoding is lenient and maps logical lines") {
    struct Case {
      std::string enc, want;
    };
    Case cases[] = {
        {"a=3Db", "a=b"},
        {"a=3db", "a=b"},        // lower-case hex
        {"a=\r\nb", "ab"},       // soft break
        {"a= \t\r\nb", "ab"},    // soft break with transport padding
        {"a  \r\nb", "a\r\nb"},  // trailing white space dropped
        {"a=ZZb", "a=ZZb"},      // bad escape kept
        {"a=4", "a=4"},          // truncated escape at the end
        {"a=", "a"},             // soft break at the very end
        {"==3D", "=="},          // '=' before an escape
        {"x\ny", "x\r\ny"},      // bare LF as a hard break
        {"", ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.enc);
      CHECK(decode(c.enc) == c.want);
    }
    std::string dec;
    std::vector<QpLine> lines;
    qp_decode("ab=\r\ncd\r\nef\r\n\r\ngh", dec, lines);
    CHECK(dec == "abcd\r\nef\r\n\r\ngh");
    struct Want {
      size_t enc_end, dec_end;
      bool soft;
    };
    Want want[] = {{5, 2, true}, {9, 6, false}, {13, 10, false}, {15, 12, false}, {17, 14, false}};
    REQUIRE(lines.size() == 5);
    for (size_t i = 0; i < 5; ++i) {
      CAPTURE(i);
      CHECK(lines[i].enc_end == want[i].enc_end);
      CHECK(lines[i].dec_end == want[i].dec_end);
      CHECK(lines[i].soft == want[i].soft);
    }
  }

  TEST_CASE("quoted-printable encoding round-trips within 76 characters a line") {
    std::string long_url = "<a href=\"https://example.com/" + std::string(200, 'x') + "?a=1&b=2\">";
    std::string inputs[] = {
        "plain text",
        "tab\tand space \r\nbefore break",
        "ends in space ",
        "=== equals ===",
        "caf\xC3\xA9 8-bit",
        "bare\rcr and bare\nlf",
        long_url,
        std::string(300, '='),
        std::string(77, 'a') + "\r\n" + std::string(75, 'b') + " \r\n",
        std::string(75, 'a') + "=",
    };
    for (const auto& in : inputs) {
      CAPTURE(in);
      std::string enc;
      qp_encode(in, enc);
      for (const auto& l : split_lines(enc)) {
        CHECK(l.size() <= 76);
        CHECK((l.empty() || (l.back() != ' ' && l.back() != '\t')));
      }
      CHECK(decode(enc) == in);
      // Followed by a soft break, the last line keeps room for the "=".
      std::string soft;
      qp_encode(in, soft, true);
      soft += "=\r\n";
      for (const auto& l : split_lines(soft)) CHECK(l.size() <= 76);
      CHECK(decode(soft + "tail") == in + "tail");
    }
  }

  TEST_CASE("base64 lines are 76 characters and decode back") {
    for (size_t n : {0u, 1u, 2u, 3u, 56u, 57u, 58u, 114u, 1000u}) {
      std::string in;
      for (size_t i = 0; i < n; ++i) in += static_cast<char>(i * 7);
      std::string out;
      base64_lines(in, out);
      auto lines = split_lines(out);
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i + 1 < lines.size()) {
          CHECK(lines[i].size() == 76);
        } else {
          CHECK(lines[i].size() <= 76);
        }
      }
      CHECK(mta::core::base64_decode(out) == in);
      std::string back = "x";
      CHECK(base64_decode(out, back));
      CHECK(back == "x" + in);
    }
  }

  TEST_CASE("base64 decoding rejects what is not base64") {
    struct Case {
      std::string in;
      bool ok;
      std::string want;
    };
    Case cases[] = {
        {"PGE+", true, "<a>"},   {"PG\r\nE+\r\n", true, "<a>"},
        {"PGE=", true, "<a"},    {"PA==", true, "<"},
        {"", true, ""},          {"PGE+!!!*", false, ""},
        {"PA==PA==", false, ""},                    // data after the padding
        {"PA===", false, ""},    {"P", false, ""},  // 6 bits: no octet
        {"PGE+\x80", false, ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.in);
      std::string out = "keep";
      CHECK(base64_decode(c.in, out) == c.ok);
      CHECK(out == "keep" + c.want);
    }
  }
}
