#include <doctest/doctest.h>

#include "mta/api/form.hpp"

using namespace mta::api;

TEST_SUITE("api") {
  TEST_CASE("percent-decoding, with and without '+' as space") {
    CHECK(*percent_decode("a%40b.test", false) == "a@b.test");
    CHECK(*percent_decode("Hello%2C+World%21", true) == "Hello, World!");
    CHECK(*percent_decode("a+b", false) == "a+b");
    CHECK(*percent_decode("%e2%82%AC", false) == "€");
    CHECK_FALSE(percent_decode("%4", false));
    CHECK_FALSE(percent_decode("%zz", false));
    CHECK_FALSE(percent_decode("abc%", true));
  }

  TEST_CASE("RFC 3986 encoding keeps only unreserved characters") {
    CHECK(uri_encode("AZaz09-._~") == "AZaz09-._~");
    CHECK(uri_encode("a b/c@d+") == "a%20b%2Fc%40d%2B");
    CHECK(uri_encode("/a b/", true) == "/a%20b/");
    CHECK(uri_encode("€") == "%E2%82%AC");
  }

  TEST_CASE("a boto3 SendEmail form parses into ordered, decoded pairs") {
    auto p = parse_form(
        "Action=SendEmail&Version=2010-12-01&Source=a%40x.test&"
        "Destination.ToAddresses.member.1=b%40y.test&Message.Subject.Data=Hello%2C+World%21&"
        "Message.Body.Text.Data=Hello%2C+World%21&Empty=&Flag");
    REQUIRE(p);
    CHECK(p->size() == 8);
    CHECK(*find_param(*p, "Action") == "SendEmail");
    CHECK(*find_param(*p, "Source") == "a@x.test");
    CHECK(*find_param(*p, "Message.Subject.Data") == "Hello, World!");
    CHECK(*find_param(*p, "Empty") == "");
    CHECK(*find_param(*p, "Flag") == "");
    CHECK(find_param(*p, "Nope") == nullptr);
    CHECK(parse_form("")->empty());
    CHECK_FALSE(parse_form("a=%zz"));
  }

  TEST_CASE("member lists come back in index order; gaps and junk are errors naming the key") {
    Params p = {{"D.member.2", "b"}, {"D.member.1", "a"}, {"D.member.3", "c"}, {"Other", "x"}};
    auto l = member_list(p, "D");
    REQUIRE(std::holds_alternative<std::vector<std::string>>(l));
    CHECK(std::get<0>(l) == std::vector<std::string>{"a", "b", "c"});
    CHECK(std::get<0>(member_list(p, "E")).empty());
    CHECK(std::get<1>(member_list({{"D.member.1", "a"}, {"D.member.3", "c"}}, "D")) ==
          "D.member.2: missing");
    CHECK(std::get<1>(member_list({{"D.member.x", "a"}}, "D")) ==
          "D.member.x: expected D.member.N");
    CHECK(std::get<1>(member_list({{"D.member.1", "a"}, {"D.member.1", "b"}}, "D")) ==
          "D.member.1: given twice");
    CHECK(std::get<1>(member_list({{"D.members.1", "a"}}, "D")) ==
          "D.members.1: expected D.member.N");
    // A longer name with the same start is not part of the list.
    CHECK(std::get<0>(member_list({{"DD.member.1", "a"}}, "D")).empty());
  }

  TEST_CASE("member structs: Tags.member.N.Name / .Value") {
    Params p = {{"Tags.member.1.Name", "k1"},
                {"Tags.member.1.Value", "v1"},
                {"Tags.member.2.Value", "v2"},
                {"Tags.member.2.Name", "k2"}};
    auto s = member_structs(p, "Tags");
    REQUIRE(std::holds_alternative<std::vector<std::map<std::string, std::string>>>(s));
    const auto& v = std::get<0>(s);
    REQUIRE(v.size() == 2);
    CHECK(v[0].at("Name") == "k1");
    CHECK(v[1].at("Value") == "v2");
    CHECK(std::get<1>(member_structs({{"Tags.member.1", "x"}}, "Tags")) ==
          "Tags.member.1: expected Tags.member.N.Field");
  }
}
