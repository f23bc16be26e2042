#include <doctest/doctest.h>

#include <map>

#include "mta/warmup/router.hpp"
#include "test_util.hpp"

using namespace mta::warmup;
using namespace mta::warmup::test;
using namespace std::chrono_literals;

namespace {

IpWarmup warming(const char* ip, std::vector<uint64_t> limits, const char* started) {
  return IpWarmup{ip, Schedule{"test", std::move(limits), false}, date(started), 0, {}};
}
IpWarmup warm(const char* ip, uint64_t per_hour = 0) {
  return IpWarmup{ip, std::nullopt, Date{}, per_hour, {}};
}

std::vector<std::string> picks(Router& r, const std::vector<Candidate>& c, int n, SysTime t,
                               const char* provider = "gmail") {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    Pick p = r.pick(c, provider, t);
    out.push_back(p ? *p.ip : "-");
  }
  return out;
}

std::map<std::string, int> count(const std::vector<std::string>& v) {
  std::map<std::string, int> m;
  for (auto& s : v) ++m[s];
  return m;
}

}  // namespace

TEST_SUITE("warmup") {
  TEST_CASE("two warm IPs share the traffic evenly, alternating") {
    Limiter l;
    REQUIRE(l.configure({warm("10.0.0.1"), warm("10.0.0.2")}));
    Router r(l);
    auto got = picks(r, {{"10.0.0.1", {}}, {"10.0.0.2", {}}}, 1000, utc(2024, 5, 1, 10));
    auto n = count(got);
    CHECK(n["10.0.0.1"] == 500);
    CHECK(n["10.0.0.2"] == 500);
    for (size_t i = 1; i < got.size(); ++i) {
      INFO("pick ", i);
      CHECK(got[i] != got[i - 1]);
    }
  }

  TEST_CASE("configured weights of warm IPs are honoured smoothly") {
    Limiter l;
    Router r(l);
    auto got = picks(r, {{"a", 3}, {"b", 1}}, 400, utc(2024, 5, 1, 10));
    auto n = count(got);
    CHECK(n["a"] == 300);
    CHECK(n["b"] == 100);
    // Smooth: never two b in a row, never more than three a in a row.
    int run_a = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      run_a = got[i] == "a" ? run_a + 1 : 0;
      CHECK(run_a <= 3);
      if (i > 0) CHECK_FALSE((got[i] == "b" && got[i - 1] == "b"));
    }
  }

  TEST_CASE("a warming IP gets only its paced share, spread over the hour") {
    Limiter l;
    // 240/day: 10 in the first hour. The warm IP has the default weight.
    REQUIRE(l.configure({warm("warm"), warming("new", {240, 480}, "2024-05-01")}));
    Router r(l);
    // 4000 messages over the first hour, one every 0.9 s.
    std::vector<std::string> got;
    for (int i = 0; i < 4000; ++i) {
      SysTime t = utc(2024, 5, 1, 0) + std::chrono::milliseconds(900 * i);
      Pick p = r.pick({{"warm", {}}, {"new", {}}}, "gmail", t);
      got.push_back(p ? *p.ip : "-");
    }
    auto n = count(got);
    CHECK(n["new"] == 10);  // all of its hour, no more
    CHECK(n["warm"] + n["new"] == 4000);
    // Its picks are spread over the hour (about one per 400), not a burst.
    std::vector<size_t> at;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] == "new") at.push_back(i);
    INFO("warming IP picked at ", at.size(), " places");
    REQUIRE(at.size() == 10);
    for (size_t i = 1; i < at.size(); ++i) CHECK(at[i] - at[i - 1] >= 300);
    // What it did not use this hour moves to the next hours; it never
    // exceeds the day's limit.
    uint64_t total_new = 0;
    for (int h = 0; h < 24; ++h) {
      auto g = picks(r, {{"warm", {}}, {"new", {}}}, 4000, utc(2024, 5, 1, h, 30));
      total_new += static_cast<uint64_t>(count(g)["new"]);
    }
    CHECK(total_new + static_cast<uint64_t>(n["new"]) <= 240);
    CHECK(l.allowance("new", "gmail", utc(2024, 5, 1, 23, 59)).sent_today <= 240);
  }

  TEST_CASE("with light traffic a warming IP still gets its allowance, warm IPs the rest") {
    Limiter l;
    REQUIRE(l.configure({warm("warm"), warming("new", {240, 480}, "2024-05-01")}));
    Router r(l);
    // 30 messages at 00:30: the warming IP is behind its pace (5 of its 10
    // due by now), so it takes those first.
    auto got = picks(r, {{"warm", {}}, {"new", {}}}, 30, utc(2024, 5, 1, 0, 30));
    auto n = count(got);
    CHECK(n["new"] == 5);
    CHECK(n["warm"] == 25);
  }

  TEST_CASE("a warming IP with all the room it needs takes its full allowance") {
    Limiter l;
    REQUIRE(l.configure({warming("a", {240}, "2024-05-01"), warming("b", {480}, "2024-05-01")}));
    Router r(l);
    SysTime t = utc(2024, 5, 1, 0, 10);  // a: 10 this hour, b: 20
    auto got = picks(r, {{"a", {}}, {"b", {}}}, 40, t);
    auto n = count(got);
    CHECK(n["a"] == 10);
    CHECK(n["b"] == 20);
    CHECK(n["-"] == 10);
  }

  TEST_CASE("the same calls give the same picks") {
    auto run = [] {
      Limiter l;
      REQUIRE(l.configure({warm("w1"), warm("w2", 50), warming("n1", {480}, "2024-05-01")}));
      Router r(l);
      std::vector<std::string> all;
      for (int h = 0; h < 3; ++h) {
        auto g = picks(r, {{"w1", 100}, {"w2", {}}, {"n1", {}}}, 300, utc(2024, 5, 1, h, 5),
                       h % 2 ? "yahoo" : "gmail");
        all.insert(all.end(), g.begin(), g.end());
      }
      return all;
    };
    auto a = run();
    auto b = run();
    CHECK(a == b);
    CHECK(count(a).count("n1") == 1);
  }

  TEST_CASE("when no IP has room the answer says when the first one will") {
    Limiter l;
    REQUIRE(l.configure({warming("a", {14, 48}, "2024-05-01"), warm("b", 2),
                         warming("c", {24}, "2024-06-01"), warming("d", {1, 2}, "2024-05-01")}));
    Router r(l);
    SysTime t = utc(2024, 5, 1, 10, 20);  // a: ceil(14 / 14 hours left) = 1; b: 2
    std::vector<Candidate> pool = {{"a", {}}, {"b", {}}, {"c", {}}};
    auto got = picks(r, pool, 3, t);
    CHECK(count(got)["a"] == 1);
    CHECK(count(got)["b"] == 2);
    Pick p = r.pick(pool, "gmail", t);
    CHECK_FALSE(p);
    CHECK(p.next_room == utc(2024, 5, 1, 11));
    // Not started yet: room when its day 1 begins.
    Pick q = r.pick({{"c", {}}}, "gmail", t);
    CHECK_FALSE(q);
    CHECK(q.next_room == utc(2024, 6, 1));
    // The day's limit used up: room at the next local midnight.
    CHECK(r.pick({{"d", {}}}, "gmail", t));
    Pick e = r.pick({{"d", {}}}, "gmail", t);
    CHECK_FALSE(e);
    CHECK(e.next_room == utc(2024, 5, 2));
    CHECK_FALSE(r.pick({}, "gmail", t));
  }

  TEST_CASE("overflow is defer or pool:NAME") {
    struct Case {
      const char* in;
      bool ok;
      Overflow::Kind kind;
      const char* pool;
    } cases[] = {
        {"defer", true, Overflow::Kind::kDefer, ""},
        {"pool:warm", true, Overflow::Kind::kPool, "warm"},
        {"pool:", false, {}, ""},
        {"Defer", false, {}, ""},
        {"", false, {}, ""},
        {"bounce", false, {}, ""},
    };
    for (auto& c : cases) {
      auto o = Overflow::parse(c.in);
      INFO("input \"", c.in, "\" want ok=", c.ok);
      REQUIRE(o.ok() == c.ok);
      if (!o) continue;
      CHECK(o->kind == c.kind);
      CHECK(o->pool == c.pool);
      CHECK(o->to_string() == c.in);
    }
  }
}
