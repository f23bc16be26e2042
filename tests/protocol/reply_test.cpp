#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mta/protocol/reply.hpp"

using namespace mta::protocol;

namespace {

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

TEST_SUITE("protocol") {
  TEST_CASE("replies format to the wire with the enhanced code on every line") {
    struct Case {
      int code;
      const char* enhanced;
      const char* text;
      const char* want;
    } cases[] = {
        {250, "2.0.0", "ok", "250 2.0.0 ok\r\n"},
        {250, "", "ok", "250 ok\r\n"},
        {250, "2.0.0", "", "250 2.0.0\r\n"},
        {250, "", "", "250\r\n"},
        {250, "", "mx.example\nPIPELINING\nSIZE 1000",
         "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"},
        {550, "5.1.1", "no such user\nreally", "550-5.1.1 no such user\r\n550 5.1.1 really\r\n"},
        {451, "4.3.0", "a\n\nb", "451-4.3.0 a\r\n451-4.3.0\r\n451 4.3.0 b\r\n"},
        {451, "", "a\n", "451-a\r\n451\r\n"},
        {250, "", "bad\rtext", "250 badtext\r\n"},
    };
    for (auto& c : cases) {
      Reply r{c.code, c.enhanced, c.text};
      INFO("reply: ", c.code, " ", c.enhanced, " \"", escape(c.text), "\" got \"",
           escape(r.format()), "\" want \"", escape(c.want), "\"");
      CHECK(r.format() == c.want);
    }
  }

  TEST_CASE("replies print on one line for logs") {
    struct Case {
      int code;
      const char* enhanced;
      const char* text;
      const char* want;
    } cases[] = {
        {550, "5.1.1", "no such user\nin this domain", "550 5.1.1 no such user in this domain"},
        {250, "", "ok", "250 ok"},
        {250, "2.0.0", "", "250 2.0.0"},
        {221, "", "", "221"},
        {250, "", "a\n\nb", "250 a b"},
    };
    for (auto& c : cases) {
      Reply r{c.code, c.enhanced, c.text};
      INFO("got \"", r.to_string(), "\" want \"", c.want, "\"");
      CHECK(r.to_string() == c.want);
    }
  }

  TEST_CASE("reply classes follow the first digit") {
    CHECK(Reply{250, "", ""}.positive());
    CHECK(Reply{354, "", ""}.positive());
    CHECK(Reply{421, "", ""}.transient());
    CHECK(Reply{554, "", ""}.permanent());
    CHECK_FALSE(Reply{450, "", ""}.positive());
    CHECK_FALSE(Reply{550, "", ""}.transient());
    CHECK_FALSE(Reply{250, "", ""}.permanent());
  }

  TEST_CASE("the reply parser joins lines and lifts the enhanced code") {
    struct Case {
      std::vector<const char*> lines;
      int want_code;
      const char* want_enhanced;
      const char* want_text;
    } cases[] = {
        {{"250 ok"}, 250, "", "ok"},
        {{"250 2.1.0 ok"}, 250, "2.1.0", "ok"},
        {{"250 2.0.0"}, 250, "2.0.0", ""},
        {{"250"}, 250, "", ""},
        {{"250 ok\r"}, 250, "", "ok"},
        {{"220 mx.example ESMTP ready"}, 220, "", "mx.example ESMTP ready"},
        {{"250-mx.example", "250-PIPELINING", "250 SIZE 10"},
         250,
         "",
         "mx.example\nPIPELINING\nSIZE 10"},
        {{"550-5.1.1 no such", "550-5.1.1 user here", "550 5.1.1 see the docs"},
         550,
         "5.1.1",
         "no such\nuser here\nsee the docs"},
        {{"550-5.1.1 a", "550 b"}, 550, "5.1.1", "a\nb"},
        {{"550-5.1.1 a", "550 5.1.2 b"}, 550, "5.1.1", "a\n5.1.2 b"},
        {{"550-5.1.1 a", "550-5.1.1", "550 5.1.1 c"}, 550, "5.1.1", "a\n\nc"},
        {{"250-", "250 2.0.0 b"}, 250, "", "\n2.0.0 b"},
        {{"250 5.0.0 odd"}, 250, "", "5.0.0 odd"},
        {{"250 2.0.0x"}, 250, "", "2.0.0x"},
        {{"250  two spaces"}, 250, "", " two spaces"},
    };
    for (auto& c : cases) {
      ReplyParser p;
      for (size_t i = 0; i + 1 < c.lines.size(); ++i) {
        INFO("line: ", c.lines[i]);
        REQUIRE(p.feed_line(c.lines[i]) == ReplyParser::Status::kNeedMore);
      }
      INFO("last line: ", c.lines.back());
      REQUIRE(p.feed_line(c.lines.back()) == ReplyParser::Status::kDone);
      Reply r = p.take();
      INFO("got ", r.code, " \"", r.enhanced, "\" \"", escape(r.text), "\" want ", c.want_code,
           " \"", c.want_enhanced, "\" \"", escape(c.want_text), "\"");
      CHECK(r.code == c.want_code);
      CHECK(r.enhanced == c.want_enhanced);
      CHECK(r.text == c.want_text);
    }
  }

  TEST_CASE("the reply parser refuses malformed lines and changing codes") {
    struct Case {
      std::vector<const char*> lines;  // the last one must give kError
    } cases[] = {
        {{""}},
        {{"25"}},
        {{"25 ok"}},
        {{"250ok"}},
        {{"2500 ok"}},
        {{"abc ok"}},
        {{"2a0 ok"}},
        {{"650 x"}},
        {{"150 x"}},
        {{"260 x"}},
        {{" 250 ok"}},
        {{"250\tok"}},
        {{"250-a", "251 b"}},
        {{"250-a", "bogus"}},
        {{"250-a", "550-b"}},
    };
    for (auto& c : cases) {
      ReplyParser p;
      for (size_t i = 0; i + 1 < c.lines.size(); ++i) {
        REQUIRE(p.feed_line(c.lines[i]) == ReplyParser::Status::kNeedMore);
      }
      INFO("line: \"", c.lines.back(), "\"");
      CHECK(p.feed_line(c.lines.back()) == ReplyParser::Status::kError);
      // After an error the parser starts afresh.
      CHECK(p.feed_line("250 ok") == ReplyParser::Status::kDone);
      CHECK(p.take().text == "ok");
    }
  }

  TEST_CASE("the reply parser is reusable after take and after an untaken reply") {
    ReplyParser p;
    CHECK(p.feed_line("250-a") == ReplyParser::Status::kNeedMore);
    CHECK(p.feed_line("250 b") == ReplyParser::Status::kDone);
    Reply first = p.take();
    CHECK(first.text == "a\nb");
    CHECK(p.feed_line("354 go ahead") == ReplyParser::Status::kDone);
    // Not taken: the next line starts a new reply.
    CHECK(p.feed_line("221 2.0.0 bye") == ReplyParser::Status::kDone);
    Reply r = p.take();
    CHECK(r.code == 221);
    CHECK(r.enhanced == "2.0.0");
    CHECK(r.text == "bye");
  }

  TEST_CASE("a formatted reply parses back to itself") {
    const Reply replies[] = {
        {250, "2.0.0", "ok"},
        {250, "", "mx.example\nPIPELINING\n8BITMIME"},
        {550, "5.7.1", "line one\nline two\n\nline four"},
        {421, "", ""},
    };
    for (const auto& want : replies) {
      std::string wire = want.format();
      INFO("wire: ", escape(wire));
      ReplyParser p;
      ReplyParser::Status st = ReplyParser::Status::kNeedMore;
      size_t pos = 0;
      while (pos < wire.size()) {
        size_t end = wire.find("\r\n", pos);
        REQUIRE(end != std::string::npos);
        REQUIRE(st == ReplyParser::Status::kNeedMore);
        st = p.feed_line(std::string_view(wire).substr(pos, end - pos));
        pos = end + 2;
      }
      REQUIRE(st == ReplyParser::Status::kDone);
      Reply got = p.take();
      CHECK(got.code == want.code);
      CHECK(got.enhanced == want.enhanced);
      CHECK(got.text == want.text);
    }
  }

  TEST_CASE("enhanced status codes") {
    struct Case {
      const char* s;
      bool want;
    } cases[] = {
        {"2.0.0", true},     {"4.7.1", true},    {"5.1.1", true},   {"5.999.999", true},
        {"2.01.0", true},    {"3.0.0", false},   {"1.0.0", false},  {"5.1000.1", false},
        {"5.1.1000", false}, {"5.1", false},     {"5..1", false},   {"5.1.", false},
        {"", false},         {"55.1.1", false},  {"5.1.1 ", false}, {"5.a.1", false},
        {".5.1.1", false},   {"5.1.1.1", false},
    };
    for (auto& c : cases) {
      INFO("code: \"", c.s, "\" want ", c.want);
      CHECK(is_enhanced_code(c.s) == c.want);
    }
  }
}
