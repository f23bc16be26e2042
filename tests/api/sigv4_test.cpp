#include <doctest/doctest.h>

#include "mta/api/sigv4.hpp"

using namespace mta::api::sigv4;

namespace {

// AWS's published SigV4 test suite (aws-sig-v4-test-suite, 2015-08-30):
// credentials, date, region and service of every case.
constexpr const char* kKeyId = "AKIDEXAMPLE";
constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr const char* kDate = "20150830T123600Z";
constexpr int64_t kNow = 1440938160;  // 2015-08-30T12:36:00Z

Authorization auth(std::vector<std::string> signed_headers, std::string sig,
                   std::string service = "service", std::string date = "20150830") {
  Authorization a;
  a.key_id = kKeyId;
  a.date = std::move(date);
  a.region = "us-east-1";
  a.service = std::move(service);
  a.terminator = "aws4_request";
  a.signed_headers = std::move(signed_headers);
  a.signature = std::move(sig);
  return a;
}

}  // namespace

TEST_SUITE("api") {
  TEST_CASE("signing key: AWS's documented example (IAM, 2012-02-15)") {
    CHECK(hex(signing_key(kSecret, "20120215", "us-east-1", "iam")) ==
          "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  }

  TEST_CASE(
      "test suite get-vanilla, post-x-www-form-urlencoded, get-vanilla-query-order-key-case") {
    struct Case {
      const char* name;
      const char* method;
      const char* path;
      const char* query;
      std::vector<std::pair<std::string, std::string>> headers;
      const char* body;
      std::vector<std::string> signed_headers;
      const char* signature;
    };
    const Case cases[] = {
        {"get-vanilla",
         "GET",
         "/",
         "",
         {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}},
         "",
         {"host", "x-amz-date"},
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        {"post-x-www-form-urlencoded",
         "POST",
         "/",
         "",
         {{"Content-Type", "application/x-www-form-urlencoded"},
          {"Host", "example.amazonaws.com"},
          {"X-Amz-Date", kDate}},
         "Param1=value1",
         {"content-type", "host", "x-amz-date"},
         "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
        {"get-vanilla-query-order-key-case",
         "GET",
         "/",
         "Param2=value2&Param1=value1",
         {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}},
         "",
         {"host", "x-amz-date"},
         "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      Request r{c.method, c.path, c.query, c.headers, c.body};
      auto v = verify(r, auth(c.signed_headers, c.signature), kSecret, kNow);
      CHECK(v.failure == Failure::kNone);
      CHECK(v.message == "");
      // Any change to what is signed breaks it.
      Request body_changed = r;
      body_changed.body = "Param1=value2";
      CHECK(verify(body_changed, auth(c.signed_headers, c.signature), kSecret, kNow).failure ==
            Failure::kMismatch);
      CHECK(verify(r, auth(c.signed_headers, c.signature), "wrong-secret", kNow).failure ==
            Failure::kMismatch);
    }
  }

  TEST_CASE("an SES path with an escaped '@' is encoded once more (as botocore signs it)") {
    CHECK(canonical_uri("/v2/email/suppression/addresses/bad%40y.test") ==
          "/v2/email/suppression/addresses/bad%2540y.test");
    // Signed by botocore 1.29.27 (sesv2 get_suppressed_destination shape).
    Request r{"GET",
              "/bad%40y.test",
              "",
              {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20261127T025724Z"}},
              ""};
    auto a =
        auth({"host", "x-amz-date"},
             "a138ff86b02205bf4d8d4d7f605d1d4736872bc0999d4c512d450765738986c1", "ses", "20261127");
    auto t = parse_amz_date("20261127T025724Z");
    REQUIRE(t);
    CHECK(verify(r, a, kSecret, *t).failure == Failure::kNone);
  }

  TEST_CASE("canonical pieces: dot segments, empty segments, query encoding and order") {
    CHECK(canonical_uri("") == "/");
    CHECK(canonical_uri("/a/./b/../c//d/") == "/a/c/d/");
    CHECK(canonical_uri("/a b") == "/a%20b");
    CHECK(*canonical_query("b=2&a=x%20y&a=1&c") == "a=1&a=x%20y&b=2&c=");
    CHECK(*canonical_query("k=a+b") == "k=a%2Bb");
    CHECK_FALSE(canonical_query("k=%zz"));
    Request r{"GET",
              "/",
              "",
              {{"Host", "h"}, {"X-Amz-Date", kDate}, {"X-Multi", "a"}, {"x-multi", "  b   c  "}},
              ""};
    auto creq = canonical_request(r, {"host", "x-amz-date", "x-multi"});
    REQUIRE(creq);
    CHECK(creq->find("\nx-multi:a,b c\n") != std::string::npos);
    CHECK_FALSE(canonical_request(r, {"host", "x-missing"}));
  }

  TEST_CASE("the clock-skew window is 5 minutes either way") {
    Request r{"GET", "/", "", {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}}, ""};
    auto a = auth({"host", "x-amz-date"},
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    CHECK(verify(r, a, kSecret, kNow + 300).failure == Failure::kNone);
    CHECK(verify(r, a, kSecret, kNow - 300).failure == Failure::kNone);
    auto late = verify(r, a, kSecret, kNow + 301);
    CHECK(late.failure == Failure::kExpired);
    CHECK(late.message.find("Signature expired") == 0);
    CHECK(verify(r, a, kSecret, kNow - 301).failure == Failure::kExpired);
  }

  TEST_CASE("malformed signing: unsigned host or date, wrong scope date or terminator") {
    Request r{"GET", "/", "", {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}}, ""};
    const char* sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    CHECK(verify(r, auth({"x-amz-date"}, sig), kSecret, kNow).failure == Failure::kMalformed);
    CHECK(verify(r, auth({"host"}, sig), kSecret, kNow).failure == Failure::kMalformed);
    CHECK(verify(r, auth({"host", "x-amz-date"}, sig, "service", "20150831"), kSecret, kNow)
              .failure == Failure::kMalformed);
    auto a = auth({"host", "x-amz-date"}, sig);
    a.terminator = "aws5_request";
    CHECK(verify(r, a, kSecret, kNow).failure == Failure::kMalformed);
    Request no_date{"GET", "/", "", {{"Host", "example.amazonaws.com"}}, ""};
    CHECK(verify(no_date, auth({"host", "x-amz-date"}, sig), kSecret, kNow).failure ==
          Failure::kMalformed);
  }

  TEST_CASE("Authorization header parsing") {
    auto a = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/eu-west-1/ses/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    REQUIRE(a);
    CHECK(a->key_id == "AKIDEXAMPLE");
    CHECK(a->date == "20261127");
    CHECK(a->region == "eu-west-1");
    CHECK(a->service == "ses");
    CHECK(a->terminator == "aws4_request");
    CHECK(a->signed_headers == std::vector<std::string>{"content-type", "host", "x-amz-date"});
    const char* bad[] = {
        "",
        "Bearer abc",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=A/20261127/r/ses/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=A/2026112/r/ses/aws4_request, SignedHeaders=host, "
        "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "AWS4-HMAC-SHA256 Credential=A/20261127/r/ses, SignedHeaders=host, "
        "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "AWS4-HMAC-SHA256 Credential=A/20261127/r/ses/aws4_request, SignedHeaders=host, "
        "Signature=short",
        "AWS4-HMAC-SHA256 Credential=A/20261127/r/ses/aws4_request, SignedHeaders=host;;x, "
        "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (auto b : bad) {
      CAPTURE(b);
      CHECK_FALSE(parse_authorization(b));
    }
  }

  TEST_CASE("X-Amz-Date parsing") {
    CHECK(parse_amz_date("19700101T000000Z") == 0);
    CHECK(parse_amz_date(kDate) == kNow);
    CHECK_FALSE(parse_amz_date("20150830T123600"));
    CHECK_FALSE(parse_amz_date("20151330T123600Z"));
    CHECK_FALSE(parse_amz_date("20150830T253600Z"));
    CHECK_FALSE(parse_amz_date("2015-08-30T12:36"));
  }
}
