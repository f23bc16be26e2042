#include <doctest/doctest.h>

#include "mta/core/base64.hpp"

using namespace mta::core;

TEST_SUITE("core") {
  TEST_CASE("base64 matches RFC 4648 test vectors both ways") {
    struct Case {
      const char* plain;
      const char* encoded;
    } cases[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"foob", "Zm9vYg=="},
                 {"fooba", "Zm9vYmE="},
                 {"foobar", "Zm9vYmFy"}};
    for (auto& c : cases) {
      INFO(c.plain, " <-> ", c.encoded);
      CHECK(base64_encode(c.plain) == c.encoded);
      auto d = base64_decode(c.encoded);
      REQUIRE(d);
      CHECK(*d == c.plain);
    }
  }

  TEST_CASE("base64 decoding skips MIME line breaks and refuses garbage") {
    CHECK(base64_decode("Zm9v\r\nYmFy").value() == "foobar");
    CHECK(base64_decode(std::string("\0AHVzZXIAcGFzcw==", 17)) == std::nullopt);
    CHECK(base64_decode("AHVzZXIAcGFzcw==").value() == std::string("\0user\0pass", 10));
    for (auto* bad : {"Zm9v!", "Zg==Zg==", "Z===", "Zm9vY"}) {
      INFO("input: ", bad);
      CHECK_FALSE(base64_decode(bad));
    }
  }
}
