#include <doctest/doctest.h>

#include <string>

#include "mta/warmup/time_zone.hpp"
#include "test_util.hpp"

using namespace mta::warmup;
using namespace mta::warmup::test;
using namespace std::chrono_literals;

namespace {

std::string iso(SysTime t) {
  auto s = std::chrono::floor<std::chrono::seconds>(t);
  auto d = std::chrono::floor<std::chrono::days>(s);
  auto tod = s - d;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%sT%02ld:%02ld:%02ldZ",
                Date::from_days(d.time_since_epoch().count()).to_string().c_str(),
                static_cast<long>(tod.count() / 3600), static_cast<long>(tod.count() / 60 % 60),
                static_cast<long>(tod.count() % 60));
  return buf;
}

TimeZone zone(const char* spec) {
  auto tz = TimeZone::parse(spec);
  REQUIRE_MESSAGE(tz.ok(), (tz.ok() ? "" : tz.error().message));
  return *tz;
}

}  // namespace

TEST_SUITE("warmup") {
  TEST_CASE("dates parse strictly as YYYY-MM-DD") {
    struct Case {
      const char* in;
      bool ok;
    } cases[] = {
        {"2024-05-01", true},  {"2024-02-29", true},  {"2023-02-29", false},  {"2024-13-01", false},
        {"2024-00-10", false}, {"2024-04-31", false}, {"2024-5-1", false},    {"24-05-01", false},
        {"2024/05/01", false}, {"", false},           {"2024-05-01 ", false}, {"1899-12-31", false},
        {"abcd-ef-gh", false}, {"9999-12-31", true},
    };
    for (auto& c : cases) {
      auto d = Date::parse(c.in);
      INFO("input: \"", c.in, "\" want ok=", c.ok, " got ok=", d.ok());
      CHECK(d.ok() == c.ok);
      if (d.ok()) CHECK(d->to_string() == c.in);
    }
  }

  TEST_CASE("date arithmetic crosses month, leap day and year ends") {
    Date d = date("2024-02-28");
    CHECK(d.plus_days(1).to_string() == "2024-02-29");
    CHECK(d.plus_days(2).to_string() == "2024-03-01");
    CHECK(date("2024-12-31").plus_days(1).to_string() == "2025-01-01");
    CHECK(date("1970-01-01").days() == 0);
    CHECK(date("2024-05-01").days() - date("2024-04-01").days() == 30);
    CHECK(date("2024-05-01") < date("2024-05-02"));
    CHECK(date("2024-05-01").year() == 2024);
    CHECK(date("2024-05-01").month() == 5u);
    CHECK(date("2024-05-01").day() == 1u);
  }

  TEST_CASE("UTC and fixed offsets are understood in-process") {
    struct Case {
      const char* spec;
      long offset;
    } cases[] = {
        {"UTC", 0},       {"Z", 0},           {"GMT", 0},    {"+02:00", 7200},  {"-05:30", -19800},
        {"+0530", 19800}, {"+14", 14 * 3600}, {"-00:00", 0}, {"+23:59", 86340},
    };
    for (auto& c : cases) {
      INFO(c.spec, " want ", c.offset);
      auto tz = zone(c.spec);
      CHECK(tz.utc_offset(utc(2024, 7, 1)).count() == c.offset);
      CHECK(tz.utc_offset(utc(2024, 1, 1)).count() == c.offset);
    }
    for (auto* bad : {"+2:00", "+24:00", "+02:60", "02:00", "+02:00:00", "-", "+ab:cd", "utc+2"}) {
      INFO("input: ", bad);
      CHECK_FALSE(TimeZone::parse(bad));
    }
  }

  TEST_CASE("an unknown or unsafe zone name is a clear error") {
    for (auto* bad : {"Mars/Base", "../../etc/passwd", "/etc/localtime", "Europe/../../etc",
                      "Europe/Berlin\n", ""}) {
      auto tz = TimeZone::parse(bad);
      INFO("input: ", bad);
      REQUIRE_FALSE(tz);
      CHECK(tz.error().message.find("time zone") != std::string::npos);
    }
    auto no_dir = TimeZone::parse("Europe/Berlin", "/nonexistent");
    REQUIRE_FALSE(no_dir);
    CHECK(no_dir.error().message.find("unknown time zone \"Europe/Berlin\"") != std::string::npos);
  }

  TEST_CASE("Europe/Berlin offsets change at the DST transitions, also past 2037") {
    auto tz = zone("Europe/Berlin");
    CHECK(tz.name() == "Europe/Berlin");
    struct Case {
      SysTime t;
      long want;
    } cases[] = {
        {utc(2024, 1, 15, 12), 3600},
        {utc(2024, 3, 31, 0, 59, 59), 3600},
        {utc(2024, 3, 31, 1), 7200},
        {utc(2024, 7, 1), 7200},
        {utc(2024, 10, 27, 0, 59, 59), 7200},
        {utc(2024, 10, 27, 1), 3600},
        {utc(1985, 7, 1), 7200},
        {utc(2040, 3, 25, 0, 59, 59), 3600},
        {utc(2040, 3, 25, 1), 7200},
        {utc(2040, 10, 28, 1), 3600},
        {utc(2077, 8, 1), 7200},
    };
    for (auto& c : cases) {
      INFO(iso(c.t), " want ", c.want, " got ", tz.utc_offset(c.t).count());
      CHECK(tz.utc_offset(c.t).count() == c.want);
    }
  }

  TEST_CASE("the southern hemisphere has DST around new year") {
    auto tz = zone("Australia/Sydney");
    CHECK(tz.utc_offset(utc(2024, 1, 15)).count() == 11 * 3600);
    CHECK(tz.utc_offset(utc(2024, 7, 15)).count() == 10 * 3600);
    CHECK(tz.utc_offset(utc(2045, 1, 15)).count() == 11 * 3600);  // the footer rule
    CHECK(tz.utc_offset(utc(2045, 7, 15)).count() == 10 * 3600);
    CHECK(tz.utc_offset(utc(2045, 12, 31, 23)).count() == 11 * 3600);
  }

  TEST_CASE("local days are 23 and 25 hours long on Berlin's DST days") {
    auto tz = zone("Europe/Berlin");
    struct Case {
      SysTime t;
      const char* date;
      const char* start;
      const char* end;
      uint32_t hours;
    } cases[] = {
        {utc(2024, 3, 31, 12), "2024-03-31", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z", 23},
        {utc(2024, 10, 27, 12), "2024-10-27", "2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z", 25},
        {utc(2024, 5, 1, 21, 59, 59), "2024-05-01", "2024-04-30T22:00:00Z", "2024-05-01T22:00:00Z",
         24},
        {utc(2024, 5, 1, 22), "2024-05-02", "2024-05-01T22:00:00Z", "2024-05-02T22:00:00Z", 24},
    };
    for (auto& c : cases) {
      LocalDay d = tz.local_day(c.t);
      INFO(iso(c.t), " want ", c.date, " [", c.start, ", ", c.end, ") got ", d.date.to_string(),
           " [", iso(d.start), ", ", iso(d.end), ") ", d.hours(), "h");
      CHECK(d.date.to_string() == c.date);
      CHECK(iso(d.start) == c.start);
      CHECK(iso(d.end) == c.end);
      CHECK(d.hours() == c.hours);
    }
    // Hour slots count real hours: 03:00 CEST on the short day is slot 2.
    LocalDay spring = tz.local_day(utc(2024, 3, 31, 12));
    CHECK(spring.hour_of(utc(2024, 3, 31, 1, 0)) == 2u);
    CHECK(tz.local_hhmm(utc(2024, 3, 31, 1, 0)) == "03:00");
    CHECK(spring.hour_of(utc(2024, 3, 31, 21, 59)) == 22u);
    CHECK(spring.hour_end(22) == spring.end);
  }

  TEST_CASE("a DST gap that swallows midnight starts the day at the gap's end") {
    // DST begins at 00:00 standard time: local midnight of 2024-03-31 never
    // happens, the day starts at 01:00 daylight time.
    auto tz = TimeZone::from_posix("XST0XDT,M3.5.0/0,M10.5.0/1");
    REQUIRE(tz);
    Date d = date("2024-03-31");
    SysTime start = tz->day_start(d);
    CHECK(iso(start) == "2024-03-31T00:00:00Z");
    CHECK(tz->local_hhmm(start) == "01:00");
    CHECK(tz->local_date(start - 1s).to_string() == "2024-03-30");
    CHECK(tz->local_day(start).hours() == 23u);
  }

  TEST_CASE("POSIX TZ rules: US rule, quoted names, Julian days and bad strings") {
    auto ny = TimeZone::from_posix("EST5EDT,M3.2.0,M11.1.0");
    REQUIRE(ny);
    CHECK(ny->utc_offset(utc(2024, 3, 10, 6, 59, 59)).count() == -5 * 3600);
    CHECK(ny->utc_offset(utc(2024, 3, 10, 7)).count() == -4 * 3600);
    CHECK(ny->utc_offset(utc(2024, 11, 3, 5, 59, 59)).count() == -4 * 3600);
    CHECK(ny->utc_offset(utc(2024, 11, 3, 6)).count() == -5 * 3600);
    auto tehran = TimeZone::from_posix("<+0330>-3:30");
    REQUIRE(tehran);
    CHECK(tehran->utc_offset(utc(2030, 6, 1)).count() == 3 * 3600 + 1800);
    // J60 is March 1st in every year (no leap day counted).
    auto j = TimeZone::from_posix("AAA0BBB,J60/0,J300/0");
    REQUIRE(j);
    CHECK(j->utc_offset(utc(2024, 2, 29, 23)).count() == 0);
    CHECK(j->utc_offset(utc(2024, 3, 1, 0)).count() == 3600);
    for (auto* bad : {"", "E5", "EST", "EST5EDT,M3.2.0", "EST5EDT,M13.2.0,M11.1.0",
                      "EST5EDT,M3.6.0,M11.1.0", "<+03", "EST5EDT,J0,J100"}) {
      INFO("input: ", bad);
      CHECK_FALSE(TimeZone::from_posix(bad));
    }
  }

  TEST_CASE("malformed TZif data is refused, not trusted") {
    CHECK_FALSE(TimeZone::from_tzif("x", ""));
    CHECK_FALSE(TimeZone::from_tzif("x", "TZif2"));
    CHECK_FALSE(TimeZone::from_tzif("x", std::string(200, 'A')));
    std::string header = std::string("TZif2") + std::string(15, '\0');
    // counts: isut, isstd, leap, time, type, char; typecnt 0 is invalid
    std::string counts(24, '\0');
    CHECK_FALSE(TimeZone::from_tzif("x", header + counts));
    counts[19] = 5;  // five transitions promised, none present
    counts[23] = 1;
    CHECK_FALSE(TimeZone::from_tzif("x", header + counts));
  }

  TEST_CASE("Etc zones from the zoneinfo files") {
    CHECK(zone("Etc/UTC").utc_offset(utc(2024, 6, 1)).count() == 0);
    // POSIX-style sign inversion: Etc/GMT+5 is five hours west.
    CHECK(zone("Etc/GMT+5").utc_offset(utc(2024, 6, 1)).count() == -5 * 3600);
    CHECK(zone("Asia/Kolkata").utc_offset(utc(2024, 6, 1)).count() == 19800);
  }
}
