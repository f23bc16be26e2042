#include <doctest/doctest.h>

#include "mta/api/auth.hpp"

using namespace mta;
using namespace mta::api;

namespace {

config::Http keys() {
  config::Http h;
  h.api_keys = {{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", {}, false},
                {"AKIDBULK", "bulk-secret", {"bulk", "news"}, false}};
  return h;
}

// get-vanilla of AWS's SigV4 test suite, signed for service "ses".
sigv4::Request signed_request(const std::string& authorization) {
  return sigv4::Request{"GET",
                        "/",
                        "",
                        {{"Host", "example.amazonaws.com"},
                         {"X-Amz-Date", "20150830T123600Z"},
                         {"Authorization", authorization}},
                        ""};
}

std::string sign(const std::string& key_id, const std::string& secret,
                 const std::string& service = "ses") {
  auto r = signed_request("");
  auto creq = *sigv4::canonical_request(r, {"host", "x-amz-date"});
  std::string scope = "20150830/us-east-1/" + service + "/aws4_request";
  auto sig = sigv4::signature(sigv4::signing_key(secret, "20150830", "us-east-1", service),
                              sigv4::string_to_sign("20150830T123600Z", scope, creq));
  return "AWS4-HMAC-SHA256 Credential=" + key_id + "/" + scope +
         ", SignedHeaders=host;x-amz-date, Signature=" + sig;
}

constexpr int64_t kNow = 1440938160;

std::string code_of(const std::variant<const config::ApiKey*, ApiError>& r) {
  if (auto* e = std::get_if<ApiError>(&r)) {
    CHECK(e->status == 403);
    return e->code;
  }
  return "ok:" + std::get<const config::ApiKey*>(r)->id;
}

}  // namespace

TEST_SUITE("api") {
  TEST_CASE("authenticate: SigV4 and Bearer against the configured keys, 403 otherwise") {
    auto h = keys();
    const std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    struct Case {
      const char* name;
      sigv4::Request req;
      int64_t now;
      std::string want;
    };
    const Case cases[] = {
        {"sigv4", signed_request(sign("AKIDEXAMPLE", secret)), kNow, "ok:AKIDEXAMPLE"},
        {"sigv4 other key", signed_request(sign("AKIDBULK", "bulk-secret")), kNow, "ok:AKIDBULK"},
        {"wrong secret", signed_request(sign("AKIDEXAMPLE", "nope")), kNow,
         "SignatureDoesNotMatch"},
        {"unknown key", signed_request(sign("AKIDNOPE", secret)), kNow, "InvalidClientTokenId"},
        {"other service", signed_request(sign("AKIDEXAMPLE", secret, "s3")), kNow,
         "SignatureDoesNotMatch"},
        {"expired", signed_request(sign("AKIDEXAMPLE", secret)), kNow + 600,
         "SignatureDoesNotMatch"},
        {"bearer", signed_request("Bearer bulk-secret"), kNow, "ok:AKIDBULK"},
        {"wrong bearer", signed_request("Bearer bulk-secre"), kNow, "InvalidClientTokenId"},
        {"garbage", signed_request("Basic dXNlcjpwYXNz"), kNow, "IncompleteSignature"},
        {"none", sigv4::Request{"GET", "/", "", {{"Host", "h"}}, ""}, kNow,
         "MissingAuthenticationToken"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(code_of(authenticate(h, c.req, c.now)) == c.want);
    }
  }

  TEST_CASE("a key restricted to configuration sets may use only those") {
    auto h = keys();
    CHECK(may_use_set(h.api_keys[0], "anything"));
    CHECK(may_use_set(h.api_keys[1], "news"));
    CHECK_FALSE(may_use_set(h.api_keys[1], "transactional"));
  }
}
