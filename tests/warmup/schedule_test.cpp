#include <doctest/doctest.h>

#include <cmath>

#include "mta/warmup/schedule.hpp"
#include "test_util.hpp"

using namespace mta::warmup;
using namespace mta::warmup::test;

TEST_SUITE("warmup") {
  TEST_CASE("the standard schedule has 45 days, grows every day and ends at 50,000") {
    const Schedule& s = standard_schedule();
    CHECK(s.name == "standard");
    CHECK_FALSE(s.per_provider);
    REQUIRE(s.days() == 45);
    CHECK(s.daily_limits.front() == 50);
    CHECK(s.daily_limits.back() == 50000);
    CHECK(s.validate());
    for (int d = 2; d <= 45; ++d) {
      double ratio = static_cast<double>(s.limit(d)) / static_cast<double>(s.limit(d - 1));
      INFO("day ", d, ": ", s.limit(d - 1), " -> ", s.limit(d), " ratio ", ratio);
      CHECK(s.limit(d) > s.limit(d - 1));
      CHECK(ratio > 1.14);
      CHECK(ratio < 1.20);
      // The derivation in schedule.hpp: 50 * 1000^((d-1)/44), rounded.
      double want = 50.0 * std::pow(1000.0, (d - 1) / 44.0);
      CHECK(std::fabs(static_cast<double>(s.limit(d)) - want) <= 0.5 + 1e-9);
    }
    // The values quoted in the research notes.
    struct Case {
      int day;
      uint64_t want;
    } cases[] = {{1, 50},  {2, 58},  {3, 68},   {4, 80},    {5, 94},     {6, 110},   {7, 128},
                 {8, 150}, {9, 176}, {10, 205}, {31, 5552}, {40, 22807}, {45, 50000}};
    for (auto& c : cases) {
      INFO("day ", c.day, " want ", c.want, " got ", s.limit(c.day));
      CHECK(s.limit(c.day) == c.want);
    }
    CHECK(builtin_schedule("standard") == &s);
    CHECK(builtin_schedule("fast") == nullptr);
  }

  TEST_CASE("a schedule's limit is 0 before day 1 and unlimited after its last day") {
    Schedule s{"t", {5, 10, 20}, false};
    struct Case {
      int day;
      uint64_t want;
    } cases[] = {{-3, 0}, {0, 0}, {1, 5}, {2, 10}, {3, 20}, {4, kUnlimited}, {400, kUnlimited}};
    for (auto& c : cases) {
      INFO("day ", c.day, " want ", c.want, " got ", s.limit(c.day));
      CHECK(s.limit(c.day) == c.want);
    }
  }

  TEST_CASE("invalid schedules are refused with the reason") {
    struct Case {
      Schedule s;
      const char* want;
    } cases[] = {
        {{"empty", {}, false}, "no days"},
        {{"zero", {5, 0, 7}, false}, "day 2 has a limit of 0"},
        {{"huge", std::vector<uint64_t>(4000, 1), false}, "more than 3650 days"},
    };
    for (auto& c : cases) {
      auto st = c.s.validate();
      INFO(c.s.name, " want error containing \"", c.want, "\"");
      REQUIRE_FALSE(st);
      CHECK(st.error().message.find(c.want) != std::string::npos);
    }
  }

  TEST_CASE("warm-up days turn over at midnight UTC") {
    Date started = date("2024-05-01");
    TimeZone tz;
    struct Case {
      SysTime t;
      int want;
    } cases[] = {
        {utc(2024, 4, 29, 12), -1},    {utc(2024, 4, 30, 23, 59, 59), 0},
        {utc(2024, 5, 1, 0, 0, 0), 1}, {utc(2024, 5, 1, 23, 59, 59), 1},
        {utc(2024, 5, 2), 2},          {utc(2024, 6, 14, 23, 59, 59), 45},
        {utc(2024, 6, 15), 46},        {utc(2025, 5, 1), 366},
    };
    for (auto& c : cases) {
      int got = warmup_day(started, c.t, tz);
      INFO("want day ", c.want, " got ", got);
      CHECK(got == c.want);
    }
  }

  TEST_CASE("warm-up days turn over at local midnight with a fixed offset") {
    Date started = date("2024-05-01");
    struct Case {
      const char* tz;
      SysTime t;
      int want;
    } cases[] = {
        {"+02:00", utc(2024, 4, 30, 21, 59, 59), 0}, {"+02:00", utc(2024, 4, 30, 22), 1},
        {"+02:00", utc(2024, 5, 1, 21, 59, 59), 1},  {"+02:00", utc(2024, 5, 1, 22), 2},
        {"-05:30", utc(2024, 5, 1, 5, 29, 59), 0},   {"-05:30", utc(2024, 5, 1, 5, 30), 1},
        {"-05:30", utc(2024, 5, 2, 5, 29, 59), 1},   {"-05:30", utc(2024, 5, 2, 5, 30), 2},
    };
    for (auto& c : cases) {
      auto tz = TimeZone::parse(c.tz);
      REQUIRE(tz);
      int got = warmup_day(started, c.t, *tz);
      INFO(c.tz, " want day ", c.want, " got ", got);
      CHECK(got == c.want);
    }
  }

  TEST_CASE("warm-up days follow Europe/Berlin across both DST changes") {
    auto tz = TimeZone::parse("Europe/Berlin");
    REQUIRE(tz);
    struct Case {
      const char* started;
      SysTime t;
      int want;
    } cases[] = {
        // Spring: 2024-03-31 has 23 hours (CET 00:00 = 23:00Z, CEST 24:00 = 22:00Z).
        {"2024-03-30", utc(2024, 3, 30, 22, 59, 59), 1},
        {"2024-03-30", utc(2024, 3, 30, 23), 2},
        {"2024-03-30", utc(2024, 3, 31, 21, 59, 59), 2},
        {"2024-03-30", utc(2024, 3, 31, 22), 3},
        // Autumn: 2024-10-27 has 25 hours (22:00Z to 23:00Z the next day).
        {"2024-10-26", utc(2024, 10, 26, 21, 59, 59), 1},
        {"2024-10-26", utc(2024, 10, 26, 22), 2},
        {"2024-10-26", utc(2024, 10, 27, 22, 59, 59), 2},
        {"2024-10-26", utc(2024, 10, 27, 23), 3},
    };
    for (auto& c : cases) {
      int got = warmup_day(date(c.started), c.t, *tz);
      INFO("started ", c.started, " want day ", c.want, " got ", got);
      CHECK(got == c.want);
    }
  }
}
