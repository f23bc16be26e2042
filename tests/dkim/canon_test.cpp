#include <doctest/doctest.h>

#include <string>

#include "mta/dkim/canon.hpp"

using namespace mta::dkim;

namespace {

std::string header(std::string_view raw, bool crlf = true) {
  std::string out;
  relaxed_header(raw, out, crlf);
  return out;
}

std::string body(std::string_view in) {
  std::string out;
  relaxed_body(in, [&](std::string_view p) { out += p; });
  return out;
}

}  // namespace

TEST_SUITE("dkim") {
  TEST_CASE("relaxed header canonicalization (RFC 6376 3.4.2)") {
    struct {
      const char* in;
      const char* want;
    } cases[] = {
        {"Subject: Hello", "subject:Hello\r\n"},
        {"SUBJECT :  a  \t b \t", "subject:a b\r\n"},
        {"Subject: a\r\n b\r\n\tc", "subject:a b c\r\n"},
        {"Subject:\r\n only folded", "subject:only folded\r\n"},
        {"X-Empty:", "x-empty:\r\n"},
        {"X-Empty:   \t", "x-empty:\r\n"},
        {"From: \"A  B\" <a@example.com>", "from:\"A B\" <a@example.com>\r\n"},
        {"X: a\rb\nc", "x:a\rb\nc\r\n"},  // bare CR and LF are kept
    };
    for (const auto& c : cases) {
      CAPTURE(c.in);
      CHECK(header(c.in) == c.want);
    }
    CHECK(header("DKIM-Signature: v=1; b=", false) == "dkim-signature:v=1; b=");
  }

  TEST_CASE("relaxed body canonicalization (RFC 6376 3.4.4)") {
    struct {
      std::string in;
      std::string want;
    } cases[] = {
        {"", ""},
        {"\r\n", ""},
        {"\r\n\r\n \r\n\t\r\n", ""},
        {"a", "a\r\n"},
        {"a\r\n", "a\r\n"},
        {"a  \t b \r\n", "a b\r\n"},
        {"  lead\r\n", " lead\r\n"},
        {"a\r\n\r\n\r\nb\r\n\r\n\r\n", "a\r\n\r\n\r\nb\r\n"},
        {"a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n"},
        {"x\ny\r\n", "x\ny\r\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.in);
      CHECK(body(c.in) == c.want);
    }
    // Long bodies come out in several pieces that add up.
    std::string big;
    for (int i = 0; i < 2000; ++i) big += "line " + std::to_string(i) + "  \r\n";
    std::string want;
    for (int i = 0; i < 2000; ++i) want += "line " + std::to_string(i) + "\r\n";
    int pieces = 0;
    std::string got;
    relaxed_body(big, [&](std::string_view p) {
      ++pieces;
      got += p;
    });
    CHECK(got == want);
    CHECK(pieces > 1);
  }

  TEST_CASE("parse_message splits fields and body and rejects malformed header lines") {
    std::string error;
    auto p = parse_message("From: a\r\nSubject: b\r\n  c\r\nX : y\r\n\r\nbody\r\n\r\n", &error);
    REQUIRE(p);
    REQUIRE(p->fields.size() == 3);
    CHECK(p->fields[0].name == "From");
    CHECK(p->fields[1].raw == "Subject: b\r\n  c");
    CHECK(p->fields[2].name == "X");
    CHECK(p->body == "body\r\n\r\n");

    auto no_body = parse_message("From: a\r\nTo: b", &error);
    REQUIRE(no_body);
    CHECK(no_body->fields.size() == 2);
    CHECK(no_body->body == "");
    auto only_body = parse_message("\r\nbody", &error);
    REQUIRE(only_body);
    CHECK(only_body->fields.empty());
    CHECK(only_body->body == "body");

    for (const char* bad : {"From: a\r\nno colon\r\n\r\nx", " leading: space\r\n\r\n",
                            ": empty name\r\n\r\n", "Bad Name: x\r\n\r\n"}) {
      CAPTURE(bad);
      error.clear();
      CHECK_FALSE(parse_message(bad, &error));
      CHECK(error.find("malformed header line") == 0);
    }
  }

  TEST_CASE("h= lists present signed fields then the over-signed names and selects bottom-up") {
    std::string error;
    auto p = parse_message("To: 1\r\nFrom: f\r\nX: x\r\nto: 2\r\nSubject: s\r\n\r\n", &error);
    REQUIRE(p);
    auto h = header_list(p->fields, {"From", "To", "Cc"}, {"From", "To", "Cc"});
    CHECK(h == std::vector<std::string>{"To", "From", "To", "From", "To", "Cc"});
    auto sel = select_fields(p->fields, h);
    REQUIRE(sel.size() == 3);
    CHECK(sel[0]->raw == "to: 2");  // the first "To" is the bottom-most
    CHECK(sel[1]->raw == "From: f");
    CHECK(sel[2]->raw == "To: 1");
  }
}
