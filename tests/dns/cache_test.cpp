#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "mta/dns/cache.hpp"

using mta::dns::TtlCache;
using namespace std::chrono_literals;

TEST_SUITE("dns") {
  TEST_CASE("cache entries expire at their time") {
    TtlCache<int> c(10);
    auto t0 = std::chrono::system_clock::now();
    c.put("a", 1, t0 + 10s);
    REQUIRE(c.find("a", t0 + 9s) != nullptr);
    CHECK(*c.find("a", t0 + 9s) == 1);
    CHECK(c.find("a", t0 + 10s) == nullptr);
    CHECK(c.size() == 0);
    CHECK(c.find("missing", t0) == nullptr);
  }

  TEST_CASE("the cache evicts the least recently used entry when full") {
    TtlCache<int> c(2);
    auto t0 = std::chrono::system_clock::now();
    c.put("a", 1, t0 + 60s);
    c.put("b", 2, t0 + 60s);
    CHECK(c.find("a", t0) != nullptr);  // now b is the least recently used
    c.put("c", 3, t0 + 60s);
    CHECK(c.size() == 2);
    CHECK(c.find("b", t0) == nullptr);
    CHECK(c.find("a", t0) != nullptr);
    CHECK(c.find("c", t0) != nullptr);
  }

  TEST_CASE("putting an existing key replaces its value and expiry") {
    TtlCache<std::string> c(2);
    auto t0 = std::chrono::system_clock::now();
    c.put("a", "old", t0 + 1s);
    c.put("a", "new", t0 + 60s);
    CHECK(c.size() == 1);
    REQUIRE(c.find("a", t0 + 30s) != nullptr);
    CHECK(*c.find("a", t0 + 30s) == "new");
  }

  TEST_CASE("a cache of size zero stores nothing") {
    TtlCache<int> c(0);
    auto t0 = std::chrono::system_clock::now();
    c.put("a", 1, t0 + 60s);
    CHECK(c.size() == 0);
    CHECK(c.find("a", t0) == nullptr);
  }
}
