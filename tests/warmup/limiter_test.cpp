#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "mta/store/store.hpp"
#include "mta/warmup/limiter.hpp"
#include "test_util.hpp"

using namespace mta;
using namespace mta::warmup;
using namespace mta::warmup::test;
using namespace std::chrono_literals;

namespace {

IpWarmup warming(const char* ip, std::vector<uint64_t> limits, const char* started,
                 bool per_provider = false) {
  return IpWarmup{ip, Schedule{"test", std::move(limits), per_provider}, date(started), 0, {}};
}

IpWarmup warm(const char* ip, uint64_t per_hour = 0) {
  return IpWarmup{ip, std::nullopt, Date{}, per_hour, {}};
}

LimiterOptions in_zone(const char* tz) {
  LimiterOptions o;
  o.time_zone = *TimeZone::parse(tz);
  return o;
}

// Takes until refused; returns how many were taken.
uint64_t drain(Limiter& l, const char* ip, const char* provider, SysTime t, uint64_t max = 100000) {
  uint64_t n = 0;
  while (n < max && l.try_take(ip, provider, t)) ++n;
  return n;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-warmup-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

const IpStatus& find(const std::vector<IpStatus>& all, const std::string& ip) {
  for (auto& s : all)
    if (s.ip == ip) return s;
  FAIL("no status for ", ip);
  static IpStatus none;
  return none;
}

}  // namespace

TEST_SUITE("warmup") {
  TEST_CASE("pacing spreads the day's limit over the hours left") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {240, 480}, "2024-05-01")}));
    // Each row: at this hour the cap must be `cap`; then `send` are sent.
    // cap = ceil((240 - sent before the hour) / hours left including it).
    struct Row {
      int hour;
      uint64_t cap;
      uint64_t send;
    } rows[] = {
        {0, 10, 4},      // 240/24
        {1, 11, 11},     // ceil(236/23): the unsent 6 spread over the rest
        {2, 11, 0},      // ceil(225/22)
        {12, 19, 19},    // ceil(225/12)
        {13, 19, 3},     // ceil(206/11) = 19
        {23, 203, 203},  // the last hour may send all that is left
    };
    uint64_t total = 0;
    for (auto& r : rows) {
      SysTime t = utc(2024, 5, 1, r.hour, 30);
      Allowance a = l.allowance("10.0.0.1", "gmail", t);
      INFO("hour ", r.hour, " want cap ", r.cap, " got ", a.hour_limit, " (sent today ",
           a.sent_today, ")");
      CHECK(a.warming);
      CHECK(a.state == WarmupState::kInProgress);
      CHECK(a.day == 1);
      CHECK(a.daily_limit == 240);
      CHECK(a.hour_limit == r.cap);
      CHECK(a.hour_allowance_left == r.cap);
      for (uint64_t i = 0; i < r.send; ++i) REQUIRE(l.try_take("10.0.0.1", "gmail", t));
      total += r.send;
      if (r.send == r.cap) {
        // Hour used up: no room until the next hour (or day).
        CHECK_FALSE(l.try_take("10.0.0.1", "gmail", t));
        Allowance b = l.allowance("10.0.0.1", "gmail", t);
        CHECK_FALSE(b.room_now);
        CHECK(b.hour_allowance_left == 0);
        CHECK(b.next_room == (r.hour == 23 ? utc(2024, 5, 2) : utc(2024, 5, 1, r.hour + 1)));
      }
    }
    CHECK(total == 240);
    Allowance a = l.allowance("10.0.0.1", "gmail", utc(2024, 5, 1, 23, 59, 59));
    CHECK(a.sent_today == 240);
    // Day 2: a fresh day with its own limit, paced again from midnight.
    Allowance d2 = l.allowance("10.0.0.1", "gmail", utc(2024, 5, 2));
    CHECK(d2.day == 2);
    CHECK(d2.sent_today == 0);
    CHECK(d2.hour_limit == 20);
  }

  TEST_CASE("a daily limit of 5 is reached, and the next day has room again") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {5, 10}, "2024-05-01")}));
    FakeClock clock{utc(2024, 5, 1)};
    // At midnight only ceil(5/24) = 1 may go: no burst.
    CHECK(l.allowance("10.0.0.1", "x", clock.now()).hour_limit == 1);
    CHECK(drain(l, "10.0.0.1", "x", clock.now()) == 1);
    clock.advance(22h + 30min);  // 22:30, two hours left: ceil(4/2) = 2
    CHECK(drain(l, "10.0.0.1", "x", clock.now()) == 2);
    clock.advance(1h);  // 23:30, the last hour: the rest
    CHECK(drain(l, "10.0.0.1", "x", clock.now()) == 2);
    Allowance a = l.allowance("10.0.0.1", "x", clock.now());
    CHECK(a.sent_today == 5);
    CHECK_FALSE(a.room_now);
    CHECK(a.next_room == utc(2024, 5, 2));
    clock.advance(30min);  // midnight: day 2
    Allowance b = l.allowance("10.0.0.1", "x", clock.now());
    CHECK(b.room_now);
    CHECK(b.day == 2);
    CHECK(b.daily_limit == 10);
    CHECK(l.try_take("10.0.0.1", "x", clock.now()));
  }

  TEST_CASE("before its start date an IP has no room until day 1 begins") {
    Limiter l(in_zone("+02:00"));
    REQUIRE(l.configure({warming("10.0.0.1", {5, 10}, "2024-05-03")}));
    Allowance a = l.allowance("10.0.0.1", "x", utc(2024, 5, 1, 12));
    CHECK(a.state == WarmupState::kNotStarted);
    CHECK(a.warming);
    CHECK(a.day == -1);
    CHECK_FALSE(a.room_now);
    CHECK(a.daily_limit == 0);
    CHECK(a.next_room == utc(2024, 5, 2, 22));  // 2024-05-03 00:00 +02:00
    CHECK_FALSE(l.try_take("10.0.0.1", "x", utc(2024, 5, 1, 12)));
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 5, 2, 22)).room_now);
  }

  TEST_CASE("after the last day the IP is warm and unlimited") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {5, 10}, "2024-05-01")}));
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 5, 2, 23, 59, 59)).state ==
          WarmupState::kInProgress);
    SysTime t = utc(2024, 5, 3);
    Allowance a = l.allowance("10.0.0.1", "x", t);
    CHECK(a.state == WarmupState::kDone);
    CHECK_FALSE(a.warming);
    CHECK(a.day == 3);
    CHECK(a.room_now);
    CHECK(a.daily_limit == kUnlimited);
    CHECK(a.hour_allowance_left == kUnlimited);
    CHECK(drain(l, "10.0.0.1", "x", t, 5000) == 5000);
    CHECK(l.allowance("10.0.0.1", "x", t).sent_today == 5000);
  }

  TEST_CASE("warm IPs are unlimited unless they have an hourly ceiling") {
    Limiter l;
    REQUIRE(l.configure({warm("10.0.0.1"), warm("10.0.0.2", 3)}));
    SysTime t = utc(2024, 5, 1, 10, 15);
    CHECK(drain(l, "10.0.0.1", "x", t, 1000) == 1000);
    CHECK(drain(l, "10.0.0.9", "x", t, 1000) == 1000);  // not configured: warm
    CHECK(l.allowance("10.0.0.9", "x", t).state == WarmupState::kNone);
    CHECK(drain(l, "10.0.0.2", "x", t) == 3);
    Allowance a = l.allowance("10.0.0.2", "x", t);
    CHECK_FALSE(a.room_now);
    CHECK(a.next_room == utc(2024, 5, 1, 11));
    CHECK(drain(l, "10.0.0.2", "y", t) == 3);  // the ceiling is per (IP, provider)
    CHECK(drain(l, "10.0.0.2", "x", utc(2024, 5, 1, 11)) == 3);
  }

  TEST_CASE("days and hours follow the configured time zone") {
    Limiter l(in_zone("+02:00"));
    REQUIRE(l.configure({warming("10.0.0.1", {48, 96}, "2024-05-01")}));
    // 2024-04-30 22:00Z is local midnight of day 1.
    Allowance a = l.allowance("10.0.0.1", "x", utc(2024, 4, 30, 22, 30));
    CHECK(a.day == 1);
    CHECK(a.hour_limit == 2);
    CHECK(drain(l, "10.0.0.1", "x", utc(2024, 4, 30, 22, 30)) == 2);
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 4, 30, 22, 59)).next_room == utc(2024, 4, 30, 23));
    Allowance b = l.allowance("10.0.0.1", "x", utc(2024, 5, 1, 21, 59, 59));
    CHECK(b.day == 1);
    CHECK(b.sent_today == 2);
    Allowance c = l.allowance("10.0.0.1", "x", utc(2024, 5, 1, 22));
    CHECK(c.day == 2);
    CHECK(c.sent_today == 0);
    CHECK(c.hour_limit == 4);
  }

  TEST_CASE("pacing uses 23 and 25 hour slots on Berlin's DST days") {
    Limiter l(in_zone("Europe/Berlin"));
    REQUIRE(l.configure(
        {warming("10.0.0.1", {230}, "2024-03-31"), warming("10.0.0.2", {250}, "2024-10-27")}));
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 3, 30, 23)).hour_limit == 10);   // 230/23
    CHECK(l.allowance("10.0.0.2", "x", utc(2024, 10, 26, 22)).hour_limit == 10);  // 250/25
    // The last slot of the short day takes everything left, and ends at
    // local midnight (22:00Z).
    Allowance last = l.allowance("10.0.0.1", "x", utc(2024, 3, 31, 21, 30));
    CHECK(last.hour_limit == 230);
    CHECK(drain(l, "10.0.0.1", "x", utc(2024, 3, 31, 21, 30)) == 230);
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 3, 31, 21, 30)).next_room == utc(2024, 3, 31, 22));
  }

  TEST_CASE("give_back returns units to the hour and day they were taken in") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {240, 480}, "2024-05-01")}));
    SysTime h0 = utc(2024, 5, 1, 0, 10);
    REQUIRE(l.try_take("10.0.0.1", "x", h0, 3));
    CHECK(l.allowance("10.0.0.1", "x", h0).hour_allowance_left == 7);
    l.give_back("10.0.0.1", "x", h0);
    CHECK(l.allowance("10.0.0.1", "x", h0).hour_allowance_left == 8);
    CHECK(l.allowance("10.0.0.1", "x", h0).sent_today == 2);
    // A unit taken in hour 0 and returned during hour 1 credits the day.
    SysTime h1 = utc(2024, 5, 1, 1, 10);
    REQUIRE(l.try_take("10.0.0.1", "x", h1));
    l.give_back("10.0.0.1", "x", h0);
    Allowance a = l.allowance("10.0.0.1", "x", h1);
    CHECK(a.sent_today == 2);
    // This hour still counts its own unit: cap ceil((240 - 1) / 23) = 11, 1 used.
    CHECK(a.hour_limit == 11);
    CHECK(a.hour_allowance_left == 10);
    // Units of yesterday are not returned to today.
    SysTime next_day = utc(2024, 5, 2, 0, 5);
    REQUIRE(l.try_take("10.0.0.1", "x", next_day, 2));
    l.give_back("10.0.0.1", "x", utc(2024, 5, 1, 23, 59), 2);
    CHECK(l.allowance("10.0.0.1", "x", next_day).sent_today == 2);
    // Taking more than the hour's room takes nothing.
    CHECK_FALSE(l.try_take("10.0.0.1", "x", next_day, 1000));
    CHECK(l.allowance("10.0.0.1", "x", next_day).sent_today == 2);
  }

  TEST_CASE("per-provider schedules count each provider separately") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {5, 10}, "2024-05-01", true),
                         warming("10.0.0.2", {5, 10}, "2024-05-01", false)}));
    SysTime t = utc(2024, 5, 1, 23, 30);
    CHECK(drain(l, "10.0.0.1", "gmail", t) == 5);
    CHECK(drain(l, "10.0.0.1", "yahoo", t) == 5);
    CHECK(l.allowance("10.0.0.1", "gmail", t).sent_today == 5);
    // Per IP: providers share the IP's limit.
    CHECK(drain(l, "10.0.0.2", "gmail", t, 3) == 3);
    CHECK(drain(l, "10.0.0.2", "yahoo", t) == 2);
    CHECK(l.allowance("10.0.0.2", "gmail", t).sent_today == 5);
    auto st = l.status(t);
    const IpStatus& s1 = find(st, "10.0.0.1");
    CHECK(s1.sent_today == 10);
    REQUIRE(s1.providers.size() == 2);
    CHECK(s1.providers[0].provider == "gmail");
    CHECK(s1.providers[0].daily_limit == 5);
    CHECK(s1.providers[0].sent_today == 5);
  }

  TEST_CASE("throttling halves the rate at most once per window, down to the floor") {
    LimiterOptions o;
    o.aimd.floor = 0.1;
    Limiter l(o);
    REQUIRE(l.configure({warm("10.0.0.1", 1000)}));
    SysTime t0 = utc(2024, 5, 1, 10);
    struct Row {
      std::chrono::minutes at;
      double want;
    } rows[] = {
        {0min, 0.5},                   // first throttle
        {1min, 0.5},                   // same window: one signal
        {9min, 0.5},                   //
        {10min, 0.25},                 // a window later
        {20min, 0.125}, {30min, 0.1},  // 0.0625 clamps to the floor
        {40min, 0.1},
    };
    for (auto& r : rows) {
      l.on_result("10.0.0.1", "gmail", true, t0 + r.at);
      double got = l.allowance("10.0.0.1", "gmail", t0 + r.at).multiplier;
      INFO("+", r.at.count(), "min want ", r.want, " got ", got);
      CHECK(got == doctest::Approx(r.want));
    }
    CHECK(l.allowance("10.0.0.1", "yahoo", t0).multiplier == 1.0);  // per provider
    // The ceiling is scaled: 1000 * 0.1 = 100 this hour.
    CHECK(l.allowance("10.0.0.1", "gmail", t0 + 40min).hour_limit == 100);
  }

  TEST_CASE("clean windows raise the rate additively, up to 1.0") {
    Limiter l;
    REQUIRE(l.configure({warm("10.0.0.1")}));
    SysTime t0 = utc(2024, 5, 1, 10);
    auto m = [&](SysTime t) { return l.allowance("10.0.0.1", "gmail", t).multiplier; };
    l.on_result("10.0.0.1", "gmail", true, t0);
    CHECK(m(t0) == doctest::Approx(0.5));
    // Plenty of clean results, but the window (10 min) has not passed.
    for (int i = 1; i <= 9; ++i) l.on_result("10.0.0.1", "gmail", false, t0 + i * 1min);
    CHECK(m(t0 + 9min) == doctest::Approx(0.5));
    l.on_result("10.0.0.1", "gmail", false, t0 + 10min);
    CHECK(m(t0 + 10min) == doctest::Approx(0.6));
    // The window has passed but only 4 results: no evidence yet.
    for (int i = 21; i <= 24; ++i) l.on_result("10.0.0.1", "gmail", false, t0 + i * 1min);
    CHECK(m(t0 + 24min) == doctest::Approx(0.6));
    l.on_result("10.0.0.1", "gmail", false, t0 + 25min);  // the 5th
    CHECK(m(t0 + 25min) == doctest::Approx(0.7));
    // A throttle inside a window resets it and halves again.
    l.on_result("10.0.0.1", "gmail", false, t0 + 26min);
    l.on_result("10.0.0.1", "gmail", true, t0 + 27min);
    CHECK(m(t0 + 27min) == doctest::Approx(0.35));
    // Recover to the ceiling, and stay there.
    SysTime t = t0 + 27min;
    for (int w = 0; w < 20; ++w) {
      for (int i = 0; i < 5; ++i) {
        t += 2min + 30s;
        l.on_result("10.0.0.1", "gmail", false, t);
      }
    }
    CHECK(m(t) == doctest::Approx(1.0));
  }

  TEST_CASE("backoff scales a warming IP's paced hour cap for that provider") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {2400, 4800}, "2024-05-01")}));
    SysTime t = utc(2024, 5, 1, 0, 5);
    CHECK(l.allowance("10.0.0.1", "gmail", t).hour_limit == 100);
    l.on_result("10.0.0.1", "gmail", true, t);
    Allowance g = l.allowance("10.0.0.1", "gmail", t);
    CHECK(g.multiplier == doctest::Approx(0.5));
    CHECK(g.hour_limit == 50);
    CHECK(drain(l, "10.0.0.1", "gmail", t) == 50);
    // The IP's other providers share what is left of its hour.
    CHECK(l.allowance("10.0.0.1", "yahoo", t).hour_allowance_left == 50);
    CHECK(drain(l, "10.0.0.1", "yahoo", t, 20) == 20);
    // The unsent volume is not lost: later hours get more, ceil(2330 / 23).
    CHECK(l.allowance("10.0.0.1", "yahoo", utc(2024, 5, 1, 1)).hour_limit == 102);
    // Gmail's later hours are scaled too, until clean windows restore it.
    CHECK(l.allowance("10.0.0.1", "gmail", utc(2024, 5, 1, 1)).hour_limit == 51);
  }

  TEST_CASE("a warming IP throttled today does not advance until it delivers cleanly") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {10, 20, 30, 40, 50}, "2024-05-01")}));
    auto day = [&](SysTime t) { return l.allowance("10.0.0.1", "gmail", t).day; };
    CHECK(day(utc(2024, 5, 2, 9)) == 2);
    l.on_result("10.0.0.1", "gmail", true, utc(2024, 5, 2, 10, 42));
    // A clean result the same day does not lift the hold.
    l.on_result("10.0.0.1", "yahoo", false, utc(2024, 5, 2, 11));
    auto st = find(l.status(utc(2024, 5, 2, 12)), "10.0.0.1");
    CHECK(st.held);
    CHECK(st.status_reason == "held at day 2: throttled by gmail at 10:42");
    CHECK(st.day == 2);
    // Day 3 on the calendar, day 2 for the limit.
    Allowance a = l.allowance("10.0.0.1", "gmail", utc(2024, 5, 3, 9));
    CHECK(a.day == 2);
    CHECK(a.daily_limit == 20);
    // No traffic on the 3rd: still held on the 4th.
    CHECK(day(utc(2024, 5, 4, 9)) == 2);
    // A clean delivery on the 4th lifts the hold: the 5th is day 3.
    l.on_result("10.0.0.1", "yahoo", false, utc(2024, 5, 4, 10));
    CHECK(day(utc(2024, 5, 4, 11)) == 2);
    auto st2 = find(l.status(utc(2024, 5, 4, 11)), "10.0.0.1");
    CHECK_FALSE(st2.held);
    CHECK(st2.held_days == 2);
    CHECK(st2.status_reason.empty());
    CHECK(day(utc(2024, 5, 5, 9)) == 3);
    CHECK(day(utc(2024, 5, 7, 9)) == 5);
    // Warm two days later than the calendar says.
    CHECK(l.allowance("10.0.0.1", "gmail", utc(2024, 5, 7, 23)).state == WarmupState::kInProgress);
    CHECK(l.allowance("10.0.0.1", "gmail", utc(2024, 5, 8)).state == WarmupState::kDone);
    auto st3 = find(l.status(utc(2024, 5, 5, 9)), "10.0.0.1");
    REQUIRE(st3.warm_on);
    CHECK(st3.warm_on->to_string() == "2024-05-08");
  }

  TEST_CASE("a per-provider schedule holds only the throttled provider") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {10, 20, 30}, "2024-05-01", true)}));
    l.on_result("10.0.0.1", "gmail", true, utc(2024, 5, 1, 10));
    l.on_result("10.0.0.1", "yahoo", false, utc(2024, 5, 1, 10));
    CHECK(l.allowance("10.0.0.1", "gmail", utc(2024, 5, 2, 1)).day == 1);
    CHECK(l.allowance("10.0.0.1", "yahoo", utc(2024, 5, 2, 1)).day == 2);
    auto st = find(l.status(utc(2024, 5, 2, 1)), "10.0.0.1");
    CHECK(st.day == 1);  // the least advanced provider
    CHECK(st.held);
    CHECK(st.status_reason == "gmail: held at day 1: throttled by gmail at 10:00");
  }

  TEST_CASE("status reports state, day, limit, use and progress") {
    Limiter l;
    REQUIRE(l.configure({
        IpWarmup{"10.0.0.1", standard_schedule(), date("2024-05-01"), 0, {}},
        IpWarmup{"10.0.0.2", standard_schedule(), date("2024-06-01"), 0, {}},
        IpWarmup{"10.0.0.3", standard_schedule(), date("2024-01-01"), 0, {}},
        warm("10.0.0.4"),
    }));
    SysTime t = utc(2024, 5, 10, 12);  // day 10 of 10.0.0.1
    REQUIRE(l.try_take("10.0.0.1", "gmail", t, 3));
    REQUIRE(l.try_take("10.0.0.4", "gmail", t, 7));
    auto st = l.status(t);
    REQUIRE(st.size() == 4);
    struct Want {
      const char* ip;
      WarmupState state;
      int day;
      uint64_t limit;
      uint64_t sent;
      int percent;
    } wants[] = {
        {"10.0.0.1", WarmupState::kInProgress, 10, 205, 3, 20},
        {"10.0.0.2", WarmupState::kNotStarted, -21, 0, 0, 0},
        {"10.0.0.3", WarmupState::kDone, 131, kUnlimited, 0, 100},
        {"10.0.0.4", WarmupState::kNone, 0, kUnlimited, 7, 0},
    };
    for (auto& w : wants) {
      const IpStatus& s = find(st, w.ip);
      INFO(w.ip, " want ", to_string(w.state), " day ", w.day, " limit ", w.limit, " sent ", w.sent,
           " ", w.percent, "% got ", to_string(s.state), " day ", s.day, " limit ", s.daily_limit,
           " sent ", s.sent_today, " ", s.percent, "%");
      CHECK(s.state == w.state);
      CHECK(s.day == w.day);
      CHECK(s.daily_limit == w.limit);
      CHECK(s.sent_today == w.sent);
      CHECK(s.percent == w.percent);
    }
    CHECK(find(st, "10.0.0.1").schedule == "standard");
    CHECK(find(st, "10.0.0.1").days == 45);
    CHECK(find(st, "10.0.0.1").warm_on->to_string() == "2024-06-15");
    CHECK(std::string(to_string(WarmupState::kInProgress)) == "IN_PROGRESS");
    CHECK(std::string(to_string(WarmupState::kNotStarted)) == "NOT_STARTED");
    CHECK(std::string(to_string(WarmupState::kDone)) == "DONE");
  }

  TEST_CASE("counters, holds and backoff survive a flush and a reload into a new limiter") {
    TempDir dir;
    std::vector<IpWarmup> cfg = {warming("10.0.0.1", {240, 480, 960}, "2024-05-01"),
                                 warm("10.0.0.2", 100)};
    SysTime t = utc(2024, 5, 2, 10, 15);
    {
      auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
      REQUIRE(store);
      Limiter l;
      REQUIRE(l.configure(cfg));
      CHECK(l.pending() == 0);
      REQUIRE(l.try_take("10.0.0.1", "gmail", t, 7));
      REQUIRE(l.try_take("10.0.0.2", "gmail", t, 9));
      l.on_result("10.0.0.1", "gmail", true, t);
      CHECK(l.pending() > 0);
      REQUIRE(l.flush(**store));
      CHECK(l.pending() == 0);
      CHECK(l.flush(**store));  // nothing changed: nothing written
    }
    // A new process: open the store again, load, then configure (either
    // order works).
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store);
    Limiter l;
    REQUIRE(l.load(**store));
    REQUIRE(l.configure(cfg));
    SysTime later = t + 20min;
    Allowance a = l.allowance("10.0.0.1", "gmail", later);
    CHECK(a.sent_today == 7);
    CHECK(a.multiplier == doctest::Approx(0.5));
    CHECK(a.hour_limit == 18);  // ceil(ceil((480 - 0) / 14) * 0.5) = ceil(35 * 0.5)
    CHECK(a.hour_allowance_left == 11);
    Allowance b = l.allowance("10.0.0.2", "gmail", later);
    CHECK(b.hour_allowance_left == 91);
    auto st = find(l.status(later), "10.0.0.1");
    CHECK(st.held);
    CHECK(st.status_reason == "held at day 2: throttled by gmail at 10:15");
    // The hold carries into tomorrow after the restart.
    CHECK(l.allowance("10.0.0.1", "gmail", utc(2024, 5, 3, 9)).day == 2);
    // A corrupt entry is skipped, not fatal.
    store::Batch junk;
    junk.put(store::Cf::kMeta, std::string("warmup/t/10.0.0.9\0", 18), "garbage");
    junk.put(store::Cf::kMeta, "warmup/zz", "x");
    REQUIRE((*store)->commit_sync(std::move(junk)));
    Limiter l2;
    CHECK(l2.load(**store));
  }

  TEST_CASE("reconfiguring keeps counters; a new start date restarts the hold") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {10, 20, 30}, "2024-05-01")}));
    SysTime t = utc(2024, 5, 2, 23, 10);
    REQUIRE(l.try_take("10.0.0.1", "x", t, 4));
    l.on_result("10.0.0.1", "x", true, t);
    // SIGHUP with the same config (or a new time zone / policy): nothing lost.
    REQUIRE(l.configure({warming("10.0.0.1", {10, 20, 30}, "2024-05-01")}));
    CHECK(l.allowance("10.0.0.1", "x", t).sent_today == 4);
    CHECK(l.allowance("10.0.0.1", "x", t).multiplier == doctest::Approx(0.5));
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 5, 3, 1)).day == 2);  // held
    // A new start date is a new warm-up: today's count stays, the hold goes.
    REQUIRE(l.configure({warming("10.0.0.1", {10, 20, 30}, "2024-05-02")}));
    Allowance a = l.allowance("10.0.0.1", "x", t);
    CHECK(a.day == 1);
    CHECK(a.sent_today == 4);
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 5, 3, 1)).day == 2);
    CHECK(find(l.status(t), "10.0.0.1").held_days == 0);
  }

  TEST_CASE("bad configuration is refused and changes nothing") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {5}, "2024-05-01")}));
    LimiterOptions bad_floor;
    bad_floor.aimd.floor = 0;
    struct Case {
      const char* name;
      std::vector<IpWarmup> ips;
      LimiterOptions opts;
      const char* want;
    } cases[] = {
        {"duplicate", {warm("10.0.0.2"), warm("10.0.0.2")}, {}, "configured twice"},
        {"empty schedule", {warming("10.0.0.2", {}, "2024-05-01")}, {}, "no days"},
        {"zero day", {warming("10.0.0.2", {5, 0}, "2024-05-01")}, {}, "limit of 0"},
        {"empty ip", {warm("")}, {}, "invalid IP"},
        {"floor", {warm("10.0.0.2")}, bad_floor, "floor"},
    };
    for (auto& c : cases) {
      auto s = l.configure(c.ips, c.opts);
      INFO(c.name, " want error containing \"", c.want, "\"");
      REQUIRE_FALSE(s);
      CHECK(s.error().message.find(c.want) != std::string::npos);
    }
    // The first configuration still applies.
    CHECK(l.allowance("10.0.0.1", "x", utc(2024, 5, 1, 23)).daily_limit == 5);
  }

  TEST_CASE("concurrent takes never exceed the hour's allowance") {
    Limiter l;
    REQUIRE(l.configure({warming("10.0.0.1", {24000}, "2024-05-01")}));
    SysTime t = utc(2024, 5, 1, 0, 30);  // 1000 this hour
    std::atomic<uint64_t> taken{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
      threads.emplace_back([&, i] {
        const char* provider = i % 2 ? "gmail" : "yahoo";
        for (int j = 0; j < 400; ++j)
          if (l.try_take("10.0.0.1", provider, t)) ++taken;
      });
    for (auto& th : threads) th.join();
    CHECK(taken.load() == 1000);
    CHECK(l.allowance("10.0.0.1", "gmail", t).sent_today == 1000);
  }
}
