#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "mta/protocol/command.hpp"

using namespace mta::protocol;

TEST_SUITE("protocol") {
  TEST_CASE("verbs are case-insensitive and must be followed by a space or the end") {
    struct Case {
      const char* line;
      Verb want;
      const char* want_arg;
    } cases[] = {
        {"HELO client.example", Verb::kHelo, "client.example"},
        {"ehlo client.example", Verb::kEhlo, "client.example"},
        {"MAIL FROM:<a@b.example> SIZE=10", Verb::kMail, "FROM:<a@b.example> SIZE=10"},
        {"mail from:<a@b.example>", Verb::kMail, "from:<a@b.example>"},
        {"MAIL  FROM:<a@b.example>", Verb::kMail, " FROM:<a@b.example>"},
        {"RCPT TO:<a@b.example>", Verb::kRcpt, "TO:<a@b.example>"},
        {"DATA", Verb::kData, ""},
        {"data ", Verb::kData, ""},
        {"RsEt", Verb::kRset, ""},
        {"NOOP anything at all", Verb::kNoop, "anything at all"},
        {"QUIT", Verb::kQuit, ""},
        {"QUIT\r", Verb::kQuit, ""},
        {"VRFY user", Verb::kVrfy, "user"},
        {"EXPN list", Verb::kExpn, "list"},
        {"HELP", Verb::kHelp, ""},
        {"StartTLS", Verb::kStarttls, ""},
        {"AUTH PLAIN AGFAYgBj", Verb::kAuth, "PLAIN AGFAYgBj"},
        {"BDAT 100 LAST", Verb::kBdat, "100 LAST"},
        {"MAILX FROM:<a@b.example>", Verb::kUnknown, "FROM:<a@b.example>"},
        {"MAIL\tFROM:<a@b.example>", Verb::kUnknown, ""},
        {" QUIT", Verb::kUnknown, "QUIT"},
        {"", Verb::kUnknown, ""},
        {"QUI", Verb::kUnknown, ""},
    };
    for (auto& c : cases) {
      Command got = parse_command(c.line);
      INFO("line: \"", c.line, "\" got ", to_string(got.verb), " \"", std::string(got.arg),
           "\" want ", to_string(c.want), " \"", c.want_arg, "\"");
      CHECK(got.verb == c.want);
      CHECK(got.arg == c.want_arg);
    }
  }

  TEST_CASE("the argument is a view into the line") {
    std::string line = "RCPT TO:<a@b.example>";
    Command cmd = parse_command(line);
    CHECK(cmd.arg.data() == line.data() + 5);
  }

  TEST_CASE("verbs have their wire names") {
    CHECK(std::string(to_string(Verb::kMail)) == "MAIL");
    CHECK(std::string(to_string(Verb::kStarttls)) == "STARTTLS");
    CHECK(std::string(to_string(Verb::kBdat)) == "BDAT");
    CHECK(std::string(to_string(Verb::kUnknown)) == "UNKNOWN");
  }

  TEST_CASE("MAIL FROM paths and parameters") {
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    struct Case {
      const char* arg;
      const char* want_address;  // nullptr: an error is wanted
      std::optional<uint64_t> want_size;
      Body want_body;
      int want_code;
      const char* want_enhanced;
    } cases[] = {
        {"FROM:<a@b.example>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"from:<a@b.example>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM: <a@b.example>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<>", "", {}, Body::k7Bit, 0, ""},
        {"FROM:<> SIZE=0", "", 0, Body::k7Bit, 0, ""},
        {"FROM:<a@b.example> SIZE=12345 BODY=8BITMIME", "a@b.example", 12345, Body::k8BitMime, 0,
         ""},
        {"FROM:<a@b.example> size=1 body=7bit", "a@b.example", 1, Body::k7Bit, 0, ""},
        {"FROM:<a@b.example> body=8bitmime", "a@b.example", {}, Body::k8BitMime, 0, ""},
        {"FROM:<a@b.example>  SIZE=1  ", "a@b.example", 1, Body::k7Bit, 0, ""},
        {"FROM:<a@b.example> SIZE=18446744073709551615", "a@b.example", kMax, Body::k7Bit, 0, ""},
        {"FROM:<a@b.example> AUTH=<>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<a@b.example> AUTH=x+2By@c.example", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<@r1.example,@r2.example:a@b.example>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<@r1.example:a@b.example>", "a@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<\"john doe\"@b.example>", "\"john doe\"@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<\"a>b\"@b.example>", "\"a>b\"@b.example", {}, Body::k7Bit, 0, ""},
        {"FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]", {}, Body::k7Bit, 0, ""},
        // Framing: 501 5.5.4.
        {"", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:a@b.example", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example>>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<<a@b.example>>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example>SIZE=1", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:  <a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM <a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"TO:<a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<\"a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        // The address: 501 5.1.7.
        {"FROM:<a>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<postmaster>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<a@>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<@b.example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<a b@c.example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<a@b..example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<@r1.example:>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<@r_1.example:a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<@r1.example,r2.example:a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        {"FROM:<@r1.example,:a@b.example>", nullptr, {}, Body::k7Bit, 501, "5.1.7"},
        // Parameters.
        {"FROM:<a@b.example> SIZE=", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE=12a", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE=-1", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE=18446744073709551616", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE=1 SIZE=2", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SIZE==1", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> BODY=BINARYMIME", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> BODY", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> =x", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> -X=1", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> AUTH", nullptr, {}, Body::k7Bit, 501, "5.5.4"},
        {"FROM:<a@b.example> SMTPUTF8", nullptr, {}, Body::k7Bit, 555, "5.5.4"},
        {"FROM:<a@b.example> RET=HDRS", nullptr, {}, Body::k7Bit, 555, "5.5.4"},
        {"FROM:<a@b.example> SIZE=1 X-FOO=bar", nullptr, {}, Body::k7Bit, 555, "5.5.4"},
    };
    for (auto& c : cases) {
      auto got = parse_mail_from(c.arg);
      INFO("arg: \"", c.arg, "\" got ",
           got.value ? "address \"" + got.value->address + "\""
                     : (got.error ? std::to_string(got.error->code) + " " + got.error->enhanced +
                                        " " + got.error->text
                                  : std::string("nothing")));
      if (c.want_address != nullptr) {
        REQUIRE(got.value);
        CHECK_FALSE(got.error);
        CHECK(got.value->address == c.want_address);
        CHECK(got.value->size == c.want_size);
        CHECK(got.value->body == c.want_body);
      } else {
        REQUIRE(got.error);
        CHECK_FALSE(got.value);
        CHECK(got.error->code == c.want_code);
        CHECK(got.error->enhanced == c.want_enhanced);
        CHECK_FALSE(got.error->text.empty());
      }
    }
  }

  TEST_CASE("RCPT TO paths and parameters") {
    struct Case {
      const char* arg;
      const char* want_address;  // nullptr: an error is wanted
      int want_code;
      const char* want_enhanced;
    } cases[] = {
        {"TO:<a@b.example>", "a@b.example", 0, ""},
        {"to: <a@b.example>", "a@b.example", 0, ""},
        {"TO:<a@b.example> ", "a@b.example", 0, ""},
        {"TO:<postmaster>", "postmaster", 0, ""},
        {"TO:<PostMaster>", "postmaster", 0, ""},
        {"TO:<Postmaster@b.example>", "Postmaster@b.example", 0, ""},
        {"TO:<@r1.example:a@b.example>", "a@b.example", 0, ""},
        {"TO:<@r1.example:postmaster>", "postmaster", 0, ""},
        {"TO:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", 0, ""},
        {"TO:<>", nullptr, 501, "5.1.3"},
        {"TO:<a>", nullptr, 501, "5.1.3"},
        {"TO:<a@b..example>", nullptr, 501, "5.1.3"},
        {"TO:<@r1.example>", nullptr, 501, "5.1.3"},
        {"TO:<postmaster@>", nullptr, 501, "5.1.3"},
        {"TO:a@b.example", nullptr, 501, "5.5.4"},
        {"TO:<a@b.example", nullptr, 501, "5.5.4"},
        {"FROM:<a@b.example>", nullptr, 501, "5.5.4"},
        {"TO:<a@b.example> bad_keyword", nullptr, 501, "5.5.4"},
        {"TO:<a@b.example> NOTIFY=NEVER", nullptr, 555, "5.5.4"},
        {"TO:<a@b.example> SIZE=1", nullptr, 555, "5.5.4"},
    };
    for (auto& c : cases) {
      auto got = parse_rcpt_to(c.arg);
      INFO("arg: \"", c.arg, "\" got ",
           got.value ? "address \"" + got.value->address + "\""
                     : (got.error ? std::to_string(got.error->code) + " " + got.error->enhanced +
                                        " " + got.error->text
                                  : std::string("nothing")));
      if (c.want_address != nullptr) {
        REQUIRE(got.value);
        CHECK_FALSE(got.error);
        CHECK(got.value->address == c.want_address);
      } else {
        REQUIRE(got.error);
        CHECK_FALSE(got.value);
        CHECK(got.error->code == c.want_code);
        CHECK(got.error->enhanced == c.want_enhanced);
      }
    }
  }

  TEST_CASE("mailbox syntax follows RFC 5321 4.1.2") {
    const std::string local64(64, 'l');
    const std::string label63(63, 'd');
    // 4 labels of 63 and one of 1, with dots: 63*4 + 3 + 1 + 1 = 257; trim to 255 and 256.
    const std::string domain255 =
        label63 + "." + label63 + "." + label63 + "." + label63.substr(0, 61) + ".x";
    const std::string domain256 =
        label63 + "." + label63 + "." + label63 + "." + label63.substr(0, 62) + ".x";
    REQUIRE(domain255.size() == 255);
    REQUIRE(domain256.size() == 256);
    struct Case {
      std::string address;
      bool want;
    } cases[] = {
        {"a@b", true},
        {"a@b.example", true},
        {"first.last@example.com", true},
        {"a+tag@example.com", true},
        {"!#$%&'*+-/=?^_`{|}~@x.example", true},
        {"\"john doe\"@x.example", true},
        {"\"a\\\"b\"@x.example", true},
        {"\"a@b\"@x.example", true},
        {"\"\"@x.example", true},
        {"a@1.2.3.4", true},
        {"a@xn--bcher-kva.example", true},
        {"a@a-b--c.example", true},
        {"a@[192.0.2.1]", true},
        {"a@[IPv6:2001:db8::1]", true},
        {"a@[ipv6:::1]", true},
        {"a@[IPv6:::]", true},
        {"a@[IPv6:1:2:3:4:5:6:7:8]", true},
        {"a@[IPv6:1::8]", true},
        {"a@[IPv6:::ffff:192.0.2.1]", true},
        {"a@[IPv6:1:2:3:4:5:6:192.0.2.1]", true},
        {local64 + "@x.example", true},
        {"a@" + label63 + ".example", true},
        {"a@" + domain255, true},
        {"", false},
        {"a", false},
        {"@b.example", false},
        {"a@", false},
        {"a@b@c.example", false},
        {".a@b.example", false},
        {"a.@b.example", false},
        {"a..b@b.example", false},
        {"a b@c.example", false},
        {"a@b c.example", false},
        {"a@-b.example", false},
        {"a@b-.example", false},
        {"a@b..example", false},
        {"a@.b.example", false},
        {"a@b.example.", false},
        {"a@b_c.example", false},
        {"a(comment)@b.example", false},
        {"a\x01@b.example", false},
        {"\"a\x01\"@b.example", false},
        {"\"a\nb\"@b.example", false},
        {"\xc3\xa9@b.example", false},
        {"a@\xc3\xa9.example", false},
        {"\"\xc3\xa9\"@b.example", false},
        {"\"unterminated@b.example", false},
        {"\"a\"b@c.example", false},
        {"a\"b\"@c.example", false},
        {"\"a\\\"@c.example", false},
        {"a@[192.0.2.256]", false},
        {"a@[192.0.2]", false},
        {"a@[192.0.2.1.5]", false},
        {"a@[192.0.2.1", false},
        {"a@[]", false},
        {"a@[foo]", false},
        {"a@[IPv6:1::2::3]", false},
        {"a@[IPv6:1:2:3:4:5:6:7]", false},
        {"a@[IPv6:1:2:3:4:5:6:7:8:9]", false},
        {"a@[IPv6:1:2:3:4:5:6:7::8]", false},
        {"a@[IPv6:12345::]", false},
        {"a@[IPv6:1:]", false},
        {"a@[IPv6::1]", false},
        {"a@[IPv6:g::1]", false},
        {"a@[IPv6:192.0.2.1]", false},
        {"a@[IPv6:1:2:3:4:5:6:7:192.0.2.1]", false},
        {"a@[IPv6:::192.0.2.256]", false},
        {"a@[x-tag:content]", false},
        {local64 + "l@x.example", false},
        {"a@" + label63 + "d.example", false},
        {"a@" + domain256, false},
    };
    for (auto& c : cases) {
      INFO("address: \"", c.address, "\" want ", c.want);
      CHECK(is_valid_mailbox(c.address) == c.want);
    }
  }

  TEST_CASE("the domain of a mailbox is what follows the last @, lowercased") {
    struct Case {
      const char* address;
      const char* want;
    } cases[] = {
        {"a@Example.COM", "example.com"},
        {"\"x@y\"@B.example", "b.example"},
        {"a@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]"},
        {"postmaster", ""},
        {"a@", ""},
    };
    for (auto& c : cases) {
      INFO("address: ", c.address, " got ", domain_of(c.address), " want ", c.want);
      CHECK(domain_of(c.address) == c.want);
    }
  }
}
