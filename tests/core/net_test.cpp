#include <doctest/doctest.h>

#include "mta/core/net.hpp"

using namespace mta::core;

TEST_SUITE("core") {
  TEST_CASE("CIDR matching") {
    struct Case {
      const char* cidr;
      const char* ip;
      bool want;
    } cases[] = {
        {"127.0.0.0/8", "127.0.0.1", true},
        {"127.0.0.0/8", "127.255.1.2", true},
        {"127.0.0.0/8", "128.0.0.1", false},
        {"10.1.2.0/23", "10.1.3.255", true},
        {"10.1.2.0/23", "10.1.4.0", false},
        {"0.0.0.0/0", "8.8.8.8", true},
        {"::1/128", "::1", true},
        {"::1", "::2", false},
        {"2001:db8::/32", "2001:db8:1::5", true},
        {"2001:db8::/32", "2001:db9::", false},
        {"127.0.0.0/8", "::ffff:127.0.0.1", true},
        {"192.0.2.7", "192.0.2.7", true},
        {"127.0.0.0/8", "::1", false},
    };
    for (auto& c : cases) {
      INFO(c.cidr, " contains ", c.ip, " want ", c.want);
      auto cidr = Cidr::parse(c.cidr);
      auto ip = IpAddress::parse(c.ip);
      REQUIRE(cidr);
      REQUIRE(ip);
      CHECK(cidr->contains(*ip) == c.want);
    }
  }

  TEST_CASE("malformed CIDRs and addresses are refused") {
    for (auto* s : {"", "1.2.3", "1.2.3.4/33", "::1/129", "1.2.3.4/x", "example.com", "1.2.3.4/"}) {
      INFO("input: ", s);
      CHECK_FALSE(Cidr::parse(s));
    }
  }

  TEST_CASE("host:port parsing") {
    auto a = HostPort::parse("127.0.0.1:2525");
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 2525);
    auto b = HostPort::parse("[::1]:587");
    REQUIRE(b);
    CHECK(b->host == "::1");
    CHECK(b->to_string() == "[::1]:587");
    for (auto* s : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "host:25", "::1:25", "[::1]25"}) {
      INFO("input: ", s);
      CHECK_FALSE(HostPort::parse(s));
    }
  }

  TEST_CASE("loopback detection") {
    CHECK(IpAddress::parse("127.0.0.9")->is_loopback());
    CHECK(IpAddress::parse("::1")->is_loopback());
    CHECK(IpAddress::parse("::ffff:127.0.0.1")->is_loopback());
    CHECK_FALSE(IpAddress::parse("10.0.0.1")->is_loopback());
  }
}
