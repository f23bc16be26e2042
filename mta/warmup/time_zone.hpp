// Dates and time zones for warm-up days. A warm-up day is a local calendar
// day in the server's configured time zone: day 1 is the `started` date, and
// the day (and its hours, for pacing) turns over at local midnight.
//
// GCC 12's libstdc++ has no std::chrono::zoned_time/tzdb, so TimeZone does it
// itself:
//  - "UTC" (also "Z", "GMT", "Etc/UTC" through the file) and fixed offsets
//    "+02:00", "-05:30", "+0530", "+02";
//  - IANA names ("Europe/Berlin") by reading the TZif file under
//    /usr/share/zoneinfo (RFC 8536, versions 1 to 4): the transition times
//    and UTC offsets, plus the POSIX TZ footer (e.g.
//    "CET-1CEST,M3.5.0,M10.5.0/3") for instants after the last transition,
//    so "slim" zone files and dates past 2037 are DST-correct too. Leap-second
//    ("right/...") files are refused.
//
// A TimeZone is immutable and cheap to copy (the parsed rules are shared), so
// a reload builds a new one and swaps it in.
//
// Local days are not always 24 hours: a DST change makes a 23- or 25-hour day.
// LocalDay gives the real [start, end) of the day in UTC; hour slots for pacing
// count real hours from local midnight (see limiter.hpp).
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mta/core/clock.hpp"
#include "mta/core/result.hpp"

namespace mta::warmup {

using SysTime = core::SysTime;

// A calendar date (proleptic Gregorian), stored as days since 1970-01-01.
class Date final {
 public:
  Date() = default;  // 1970-01-01
  // "YYYY-MM-DD", exactly: four-digit year 1900..9999, a real month and day
  // ("2024-02-30" is refused).
  static core::Result<Date> parse(std::string_view s);
  static core::Result<Date> from_ymd(int year, unsigned month, unsigned day);
  static Date from_days(int64_t days_since_epoch) { return Date(days_since_epoch); }

  int64_t days() const { return days_; }
  int year() const;
  unsigned month() const;
  unsigned day() const;
  Date plus_days(int64_t n) const { return Date(days_ + n); }
  std::string to_string() const;  // "YYYY-MM-DD"

  friend auto operator<=>(const Date&, const Date&) = default;

 private:
  explicit Date(int64_t d) : days_(d) {}
  int64_t days_ = 0;
};

// One local calendar day as a half-open UTC interval.
struct LocalDay {
  Date date;
  SysTime start;  // the first instant of `date` in local time
  SysTime end;    // the first instant of the next day
  // Real hours in the day, rounded up: 24, or 23/25 on DST days.
  uint32_t hours() const;
  // 0-based hour slot of `t` (t in [start, end)), counted in real hours from
  // the local midnight.
  uint32_t hour_of(SysTime t) const;
  SysTime hour_end(uint32_t slot) const;  // end of slot, never after `end`
};

inline constexpr const char* kZoneinfoDir = "/usr/share/zoneinfo";

class TimeZone final {
 public:
  TimeZone();  // UTC
  static TimeZone utc() { return TimeZone(); }
  // A fixed offset east of UTC; |offset| < 24h.
  static core::Result<TimeZone> fixed(std::chrono::seconds utc_offset);
  // "UTC", "+02:00"-style offsets, or an IANA name read from `zoneinfo_dir`.
  // Errors say what was wrong ("unknown time zone \"Mars/Base\"").
  static core::Result<TimeZone> parse(std::string_view spec,
                                      const std::string& zoneinfo_dir = kZoneinfoDir);
  // A TZif file's bytes (exposed for tests).
  static core::Result<TimeZone> from_tzif(std::string name, std::string_view bytes);
  // A POSIX TZ rule string such as "CET-1CEST,M3.5.0,M10.5.0/3" (exposed for
  // tests; TZif footers use it).
  static core::Result<TimeZone> from_posix(std::string_view rule);

  const std::string& name() const;
  // Local time = UTC + offset.
  std::chrono::seconds utc_offset(SysTime t) const;
  Date local_date(SysTime t) const;
  // The UTC instant at which local `d` begins (its midnight, or the end of
  // a DST gap that swallowed midnight).
  SysTime day_start(Date d) const;
  LocalDay local_day(SysTime t) const;
  // "HH:MM" local time, for status messages.
  std::string local_hhmm(SysTime t) const;

 private:
  struct Rules;
  explicit TimeZone(std::shared_ptr<const Rules> r) : rules_(std::move(r)) {}
  std::shared_ptr<const Rules> rules_;
};

}  // namespace mta::warmup
