// Signatures (HMAC-SHA256 over "timestamp.body") and retry delays.
#include <doctest/doctest.h>

#include <string>

#include "mta/webhook/backoff.hpp"
#include "mta/webhook/signing.hpp"

using namespace mta::webhook;
using namespace std::chrono_literals;

TEST_SUITE("webhook") {
  TEST_CASE("HMAC-SHA256 matches the RFC 4231 test vectors") {
    struct {
      std::string key, data, want;
    } cases[] = {
        {"Jefe", "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {std::string(20, '\x0b'), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        // A key longer than the block size is hashed first.
        {std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (const auto& c : cases) {
      INFO("data: ", c.data);
      CHECK(hmac_sha256_hex(c.key, c.data) == c.want);
    }
  }

  TEST_CASE("the signature covers the timestamp, a dot and the exact body") {
    std::string body = R"({"eventType":"Send"})";
    auto sig = signature("s3cret", 1700000000, body);
    CHECK(sig == "sha256=" + hmac_sha256_hex("s3cret", "1700000000." + body));
    CHECK(sig.size() == 7 + 64);
    // Any change to the secret, the time or the body changes it.
    CHECK(signature("s3cret!", 1700000000, body) != sig);
    CHECK(signature("s3cret", 1700000001, body) != sig);
    CHECK(signature("s3cret", 1700000000, body + " ") != sig);
    // Binary-safe: a NUL in the body is signed, not a terminator.
    CHECK(signature("k", 1, std::string("a\0b", 3)) != signature("k", 1, "a"));
  }

  TEST_CASE("backoff doubles from 1 s, is capped, and jitters up to a quarter") {
    struct {
      uint32_t failures;
      double u;
      std::chrono::milliseconds want;
    } cases[] = {
        {1, 0.0, 1000ms},      {1, 0.5, 1125ms},   {2, 0.0, 2000ms},    {3, 0.0, 4000ms},
        {4, 0.999, 9998ms},    {9, 0.0, 256000ms}, {10, 0.0, 300000ms}, {10, 0.5, 337500ms},
        {1000, 0.0, 300000ms}, {0, 0.0, 1000ms},   {1, -1.0, 1000ms},   {1, 7.0, 1249ms},
    };
    for (const auto& c : cases) {
      INFO("failures=", c.failures, " u=", c.u);
      CHECK(backoff(c.failures, c.u).count() == c.want.count());
    }
    CHECK(backoff(3, 0.0, 3s) == 3s);  // a lower cap
  }
}
