#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "mta/protocol/message.hpp"

using namespace mta::protocol;

namespace {

std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out;
}

// Splits "a\r\nb\r\n" into its lines without CRLF.
std::vector<std::string> lines_of(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\r\n", pos);
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(s.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

}  // namespace

TEST_SUITE("protocol") {
  TEST_CASE("the header block ends after the first blank line") {
    struct Case {
      const char* message;
      size_t want;
    } cases[] = {
        {"A: b\r\n\r\nbody\r\n", 8},
        {"A: b\r\nC: d\r\n\r\nbody\r\n\r\nmore\r\n", 14},
        {"A: b\r\n\r\n", 8},
        {"\r\nbody only\r\n", 2},
        {"A: b\r\n", 6},
        {"A: b", 4},
        {"", 0},
    };
    for (auto& c : cases) {
      INFO("message: \"", escape(c.message), "\" got ", header_block_size(c.message), " want ",
           c.want);
      CHECK(header_block_size(c.message) == c.want);
    }
  }

  TEST_CASE("header fields keep their folded lines and skip what is not a field") {
    const std::string msg =
        "  orphan continuation\r\n"
        "Subject: hello\r\n"
        "\tworld\r\n"
        "not a field\r\n"
        " its continuation\r\n"
        "X-Empty:\r\n"
        "Obsolete : spaced name\r\n"
        ": no name\r\n"
        "To: a@b.example,\r\n"
        "  c@d.example\r\n"
        "\r\n"
        "Body-Line: not a header\r\n";
    auto fields = header_fields(msg);
    struct Want {
      const char* name;
      const char* raw;
      const char* value;
    } want[] = {
        {"Subject", "Subject: hello\r\n\tworld\r\n", "hello\tworld"},
        {"X-Empty", "X-Empty:\r\n", ""},
        {"Obsolete", "Obsolete : spaced name\r\n", "spaced name"},
        {"To", "To: a@b.example,\r\n  c@d.example\r\n", "a@b.example,  c@d.example"},
    };
    REQUIRE(fields.size() == std::size(want));
    for (size_t i = 0; i < fields.size(); ++i) {
      INFO("field ", i, ": got name \"", std::string(fields[i].name), "\" raw \"",
           escape(fields[i].raw), "\" value \"", escape(fields[i].value()), "\"");
      CHECK(fields[i].name == want[i].name);
      CHECK(fields[i].raw == want[i].raw);
      CHECK(fields[i].value() == want[i].value);
    }
  }

  TEST_CASE("a message that is all header, without a final CRLF, still has fields") {
    auto fields = header_fields("A: 1\r\nB: 2");
    REQUIRE(fields.size() == 2);
    CHECK(fields[1].raw == "B: 2");
    CHECK(fields[1].value() == "2");
  }

  TEST_CASE("header values are found case-insensitively, first one wins, never in the body") {
    const std::string msg =
        "From: a@b.example\r\n"
        "subject:   first  \r\n"
        " folded\r\n"
        "Subject: second\r\n"
        "\r\n"
        "X-Body: in the body\r\n";
    struct Case {
      const char* name;
      std::optional<std::string> want;
    } cases[] = {
        {"Subject", "first   folded"}, {"SUBJECT", "first   folded"}, {"from", "a@b.example"},
        {"X-Body", std::nullopt},      {"To", std::nullopt},          {"Subjec", std::nullopt},
    };
    for (auto& c : cases) {
      auto got = header_value(msg, c.name);
      INFO("name: ", c.name, " got ", got ? "\"" + *got + "\"" : std::string("nullopt"), " want ",
           c.want ? "\"" + *c.want + "\"" : std::string("nullopt"));
      CHECK(got == c.want);
    }
  }

  TEST_CASE("removing headers takes folded lines along and leaves the body alone") {
    struct Case {
      std::string message;
      std::vector<std::string_view> names;
      std::string want;
      size_t want_count;
    } cases[] = {
        {"A: 1\r\nBcc: x@y.example\r\nC: 3\r\n\r\nBcc: body\r\n",
         {"bcc"},
         "A: 1\r\nC: 3\r\n\r\nBcc: body\r\n",
         1},
        {"Bcc: x,\r\n y\r\nA: 1\r\nBCC: z\r\n\r\nbody\r\n", {"Bcc"}, "A: 1\r\n\r\nbody\r\n", 2},
        {"X-SES-MESSAGE-TAGS: a=b\r\nX-SES-CONFIGURATION-SET: cs\r\n\tmore\r\nSubject: "
         "s\r\n\r\nb\r\n",
         {"x-ses-message-tags", "x-ses-configuration-set"},
         "Subject: s\r\n\r\nb\r\n",
         2},
        {"A: 1\r\n\r\nbody\r\n", {"B"}, "A: 1\r\n\r\nbody\r\n", 0},
        {"A: 1\r\nB: 2", {"B"}, "A: 1\r\n", 1},
        {"A: 1\r\nB: 2\r\n", {"A", "B"}, "", 2},
        {"A: 1\r\n\r\n", {}, "A: 1\r\n\r\n", 0},
        {"Ab: 1\r\nA: 2\r\n\r\n", {"A"}, "Ab: 1\r\n\r\n", 1},
    };
    for (auto& c : cases) {
      std::string msg = c.message;
      size_t n = remove_headers(msg, c.names);
      INFO("message: \"", escape(c.message), "\" got \"", escape(msg), "\" (", n, ") want \"",
           escape(c.want), "\" (", c.want_count, ")");
      CHECK(msg == c.want);
      CHECK(n == c.want_count);
    }
  }

  TEST_CASE("SES message tags") {
    using Tags = std::vector<std::pair<std::string, std::string>>;
    struct Case {
      const char* value;
      bool want_ok;
      Tags want;
    } cases[] = {
        {"", true, {}},
        {"   ", true, {}},
        {"campaign=spring", true, {{"campaign", "spring"}}},
        {"k1=v1, k2=v2", true, {{"k1", "v1"}, {"k2", "v2"}}},
        {" k1 = v1 ,k2=v2 ", true, {{"k1", "v1"}, {"k2", "v2"}}},
        {"user=a@b.example,ver=1.2_3-x", true, {{"user", "a@b.example"}, {"ver", "1.2_3-x"}}},
        {"k", false, {}},
        {"k=", false, {}},
        {"=v", false, {}},
        {"k=v,", false, {}},
        {",k=v", false, {}},
        {"k=v,,k2=v2", false, {}},
        {"k=v=w", false, {}},
        {"k=v w", false, {}},
        {"k=v;x", false, {}},
        {"k\xc3\xa9=v", false, {}},
        {"k=v, k=w", false, {}},
    };
    for (auto& c : cases) {
      auto got = parse_tags(c.value);
      INFO("value: \"", c.value, "\" error ", got.error ? *got.error : std::string("none"));
      CHECK(got.error.has_value() == !c.want_ok);
      CHECK(got.tags == c.want);
    }
    const std::string name256(256, 'n');
    const std::string value257(257, 'v');
    CHECK_FALSE(parse_tags(name256 + "=v").error);
    CHECK(parse_tags("k=" + value257).error);
  }

  TEST_CASE("short header fields are not folded") {
    struct Case {
      const char* name;
      const char* value;
      const char* want;
    } cases[] = {
        {"Subject", "hello world", "Subject: hello world\r\n"},
        {"Subject", "  padded  ", "Subject: padded\r\n"},
        {"X-Empty", "", "X-Empty: \r\n"},
        {"Subject", "a\r\nBcc: evil@x.example", "Subject: a Bcc: evil@x.example\r\n"},
        {"Subject", "already\r\n folded", "Subject: already folded\r\n"},
        {"Subject", "tab\tseparated", "Subject: tab\tseparated\r\n"},
    };
    for (auto& c : cases) {
      std::string got = format_header(c.name, c.value);
      INFO("value: \"", escape(c.value), "\" got \"", escape(got), "\" want \"", escape(c.want),
           "\"");
      CHECK(got == c.want);
    }
  }

  TEST_CASE("long header fields fold at whitespace and never break a word") {
    // "word00 word01 ... word29" is 209 octets.
    std::string words;
    for (int i = 0; i < 30; ++i) {
      if (i > 0) words += ' ';
      words += "word" + std::string(i < 10 ? "0" : "") + std::to_string(i);
    }
    const std::string long_word(100, 'w');
    const std::string huge_word(1200, 'h');
    struct Case {
      std::string value;
    } cases[] = {
        {words},
        {"short " + long_word + " tail words here"},
        {long_word + " after"},
        {"before " + huge_word + " after"},
        {words + "  two  spaces\tand tab " + words},
    };
    for (auto& c : cases) {
      std::string got = format_header("X-Long-Header", c.value);
      INFO("got: \"", escape(got), "\"");
      REQUIRE(got.ends_with("\r\n"));
      auto lines = lines_of(got);
      REQUIRE(lines.size() > 1);
      for (size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        INFO("line ", i, ": \"", escape(line), "\" (", line.size(), " octets)");
        if (i > 0) CHECK((line[0] == ' ' || line[0] == '\t'));
        // Over 78 only when the line holds a single word that is itself too long.
        if (line.size() > 78) {
          std::string_view rest = line;
          if (i == 0) rest.remove_prefix(std::string_view("X-Long-Header: ").size());
          while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
          CHECK(rest.find_first_of(" \t") == std::string_view::npos);
        }
      }
      // Unfolding (dropping the CRLFs) gives back the field as written.
      std::string unfolded;
      for (char ch : got.substr(0, got.size() - 2)) {
        if (ch != '\r' && ch != '\n') unfolded += ch;
      }
      CHECK(unfolded == "X-Long-Header: " + c.value);
    }
  }

  TEST_CASE("a word longer than 998 octets stays on its own line") {
    const std::string huge(1200, 'h');
    std::string got = format_header("Subject", "a " + huge + " b");
    CHECK(got == "Subject: a\r\n " + huge + "\r\n b\r\n");
    CHECK(format_header("Subject", huge) == "Subject: " + huge + "\r\n");
  }

  TEST_CASE("RFC 5322 dates are in UTC") {
    struct Case {
      int64_t t;
      const char* want;
    } cases[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 +0000"},
        {1795756291, "Fri, 27 Nov 2026 05:11:31 +0000"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 +0000"},
        {1704067199, "Sun, 31 Dec 2023 23:59:59 +0000"},
        {-1, "Wed, 31 Dec 1969 23:59:59 +0000"},
        {4102444800, "Fri, 01 Jan 2100 00:00:00 +0000"},
    };
    for (auto& c : cases) {
      INFO("t=", c.t, " got ", rfc5322_date(c.t), " want ", c.want);
      CHECK(rfc5322_date(c.t) == c.want);
    }
  }
}

TEST_SUITE("protocol") {
  TEST_CASE("dot_stuff doubles leading dots and terminates the data") {
    struct Case {
      const char* in;
      const char* want;
    } cases[] = {
        {"", ".\r\n"},
        {"a\r\n", "a\r\n.\r\n"},
        {".\r\n", "..\r\n.\r\n"},
        {"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n.\r\n"},
        {"no final crlf", "no final crlf\r\n.\r\n"},
        {"ends in cr\r", "ends in cr\r\n.\r\n"},
        {"x.y\r\n", "x.y\r\n.\r\n"},
    };
    for (auto& c : cases) {
      INFO("in: ", c.in);
      CHECK(mta::protocol::dot_stuff(c.in) == c.want);
    }
  }
}
