#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mta/tracking/token.hpp"

using namespace mta::tracking;

namespace {

const std::string kSecret = "0123456789abcdef-current";
const std::string kOld = "0123456789abcdef-previous";

mta::core::MessageId some_id() {
  return *mta::core::MessageId::from_hex("0006613bb0d8761e0000ea3321954545");
}

Claims open_claims() {
  Claims c;
  c.kind = Kind::kOpen;
  c.message_id = some_id();
  c.recipient = "alice@example.org";
  c.configuration_set = "marketing";
  c.sent_ms = 1795000000123;
  return c;
}

Claims click_claims() {
  Claims c = open_claims();
  c.kind = Kind::kClick;
  c.link_index = 7;
  c.url = "https://shop.example.com/p?a=1&b=%20x#frag";
  c.link_tags = "campaign:winter;variant:b";
  return c;
}

Claims unsubscribe_claims() {
  Claims c = open_claims();
  c.kind = Kind::kUnsubscribe;
  c.list_name = "newsletter";
  c.list_topic = "weekly";
  return c;
}

bool url_safe(const std::string& t) {
  for (char ch : t)
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_'))
      return false;
  return true;
}

}  // namespace

TEST_SUITE("tracking") {
  TEST_CASE("sign and verify round-trip every kind") {
    for (const Claims& c : {open_claims(), click_claims(), unsubscribe_claims()}) {
      CAPTURE(to_string(c.kind));
      std::string t = sign(c, kSecret);
      CHECK(url_safe(t));
      auto got = verify(t, {kSecret});
      REQUIRE(got.has_value());
      CHECK(*got == c);
    }
  }

  TEST_CASE("the token format is stable: mail already sent keeps working") {
    // Golden token; its MAC was checked against Python's
    // hmac.new(key, b"mta-tracking-v1\0" + payload, sha256).digest()[:16].
    Claims c;
    c.kind = Kind::kClick;
    c.message_id = some_id();
    c.recipient = "alice@example.org";
    c.url = "https://x/";
    c.sent_ms = 5;
    const std::string golden =
        "AQIABmE7sNh2HgAA6jMhlUVFBRFhbGljZUBleGFtcGxlLm9yZwAACmh0dHBzOi8veC8A5VuRv-"
        "zdQmiQuFAgpP4rCA";
    CHECK(sign(c, "0123456789abcdef0123") == golden);
    auto got = verify(golden, {"0123456789abcdef0123"});
    REQUIRE(got.has_value());
    CHECK(*got == c);
  }

  TEST_CASE("fields of other kinds are not encoded and verify as empty") {
    Claims c = open_claims();
    c.url = "https://ignored.example/";
    c.link_index = 3;
    c.list_name = "x";
    auto got = verify(sign(c, kSecret), {kSecret});
    REQUIRE(got.has_value());
    CHECK(got->url.empty());
    CHECK(got->link_index == 0);
    CHECK(got->list_name.empty());
  }

  TEST_CASE("empty strings, zero times and long URLs round-trip") {
    Claims c = click_claims();
    c.recipient.clear();
    c.configuration_set.clear();
    c.link_tags.clear();
    c.sent_ms = 0;
    c.link_index = 0xffffffffu;
    c.url = "https://example.com/" + std::string(3000, 'x');
    auto got = verify(sign(c, kSecret), {kSecret});
    REQUIRE(got.has_value());
    CHECK(*got == c);
  }

  TEST_CASE("a short click token stays under 130 characters") {
    Claims c = click_claims();
    c.url = "https://example.com/";
    c.link_tags.clear();
    std::string t = sign(c, kSecret);
    CHECK(t.size() < 130);
  }

  TEST_CASE("changing any character of a token fails verification") {
    for (const Claims& c : {open_claims(), click_claims(), unsubscribe_claims()}) {
      std::string t = sign(c, kSecret);
      for (size_t i = 0; i < t.size(); ++i) {
        std::string bad = t;
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        CAPTURE(i);
        CHECK_FALSE(verify(bad, {kSecret}).has_value());
      }
    }
  }

  TEST_CASE("flipping any bit of the decoded token fails verification") {
    std::string raw = *base64url_decode(sign(click_claims(), kSecret));
    for (size_t i = 0; i < raw.size(); ++i)
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = raw;
        bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
        CAPTURE(i);
        CAPTURE(bit);
        CHECK_FALSE(verify(base64url_encode(bad), {kSecret}).has_value());
      }
  }

  TEST_CASE("a wrong secret fails; a previous secret is accepted") {
    std::string t = sign(click_claims(), kOld);
    CHECK_FALSE(verify(t, {kSecret}).has_value());
    CHECK_FALSE(verify(t, {}).has_value());
    CHECK_FALSE(verify(t, {""}).has_value());
    auto got = verify(t, {kSecret, kOld});
    REQUIRE(got.has_value());
    CHECK(got->url == click_claims().url);
  }

  TEST_CASE("truncated, extended, oversized and garbage tokens fail") {
    std::string t = sign(click_claims(), kSecret);
    for (size_t n = 0; n < t.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(verify(t.substr(0, n), {kSecret}).has_value());
    }
    CHECK_FALSE(verify(t + "A", {kSecret}).has_value());
    CHECK_FALSE(verify(t + "AAAA", {kSecret}).has_value());
    CHECK_FALSE(verify(std::string(kMaxTokenChars + 4, 'A'), {kSecret}).has_value());
    const std::vector<std::string> garbage = {
        "", "x", "....", "not a token", "a/b", "abc=", std::string(64, '\0'), "%41%42%43%44"};
    for (const auto& g : garbage) CHECK_FALSE(verify(g, {kSecret}).has_value());
    // A token with '.' appended (the pixel's ".gif" left on) is not valid.
    CHECK_FALSE(verify(t + ".gif", {kSecret}).has_value());
  }

  TEST_CASE("a token of the maximum length is still verified") {
    Claims c = click_claims();
    std::string t = sign(c, kSecret);
    // Grow the URL until the token is just under the limit.
    c.url += std::string((kMaxTokenChars - t.size()) * 3 / 4 - 8, 'u');
    t = sign(c, kSecret);
    REQUIRE(t.size() <= kMaxTokenChars);
    CHECK(verify(t, {kSecret}).has_value());
    c.url += std::string(64, 'u');
    CHECK_FALSE(verify(sign(c, kSecret), {kSecret}).has_value());
  }

  TEST_CASE("the version and kind bytes are under the MAC") {
    std::string raw = *base64url_decode(sign(open_claims(), kSecret));
    raw[0] = 2;  // version
    CHECK_FALSE(verify(base64url_encode(raw), {kSecret}).has_value());
    raw[0] = 1;
    raw[1] = static_cast<char>(Kind::kClick);  // an open token used as a click
    CHECK_FALSE(verify(base64url_encode(raw), {kSecret}).has_value());
  }

  TEST_CASE("base64url") {
    struct Case {
      std::string in, want;
    };
    const std::vector<Case> cases = {
        {"", ""},        {"f", "Zg"},        {"fo", "Zm8"},
        {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {std::string("\xfb\xff\xbf", 3), "-_-_"},
    };
    for (const auto& c : cases) {
      CHECK(base64url_encode(c.in) == c.want);
      auto back = base64url_decode(c.want);
      REQUIRE(back.has_value());
      CHECK(*back == c.in);
    }
    CHECK_FALSE(base64url_decode("Zg==").has_value());  // padding
    CHECK_FALSE(base64url_decode("Z").has_value());     // impossible length
    CHECK_FALSE(base64url_decode("Zh").has_value());    // non-zero leftover bits
    CHECK_FALSE(base64url_decode("Zm+v").has_value());  // standard alphabet
    CHECK_FALSE(base64url_decode("Zm/v").has_value());
  }
}
