// Warm-up schedules: how many messages a new IP may send on each day of its
// warm-up. Day 1 is the IP's `started` date in the server's time zone; after
// the schedule's last day the IP is warm and no warm-up limit applies.
//
// A Schedule is plain data (config builds one or names a built-in). The
// overflow policy (defer, or another pool) belongs to the pool config, not to
// the schedule: see Overflow in router.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/warmup/time_zone.hpp"

namespace mta::warmup {

// "No limit": the daily or hourly allowance of a warm IP.
inline constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct Schedule {
  std::string name;
  std::vector<uint64_t> daily_limits;  // [0] is day 1; every entry > 0
  // true: the daily limit applies to each (IP, provider) separately (a
  // warming IP may send daily_limits[day] to gmail AND as many to yahoo);
  // false: to the IP's total.
  bool per_provider = false;

  int days() const { return static_cast<int>(daily_limits.size()); }
  // The limit on warm-up day `day` (1-based): 0 before day 1, kUnlimited
  // after the last day.
  uint64_t limit(int day) const;
  // Non-empty, at most 3650 days, every limit > 0 (a day with 0 would strand
  // mail behind "room tomorrow" forever; pause an IP by removing it from the
  // pool instead).
  core::Status validate() const;
};

// The default schedule, "standard": 45 days from 50/day to 50,000/day.
//
// Where the curve comes from: Amazon SES's standard automatic warm-up
// publishes only its endpoints, a daily maximum that grows to 50,000 in 45
// days ("Amazon SES can now automatically warm up your dedicated IP
// addresses", 2017-03-09; SES developer guide, dedicated-ip-warming). SendGrid's
// automated warm-up publishes an hourly cap per day that grows about x1.4 per
// day (20, 28, 39, 55, 77 ... per hour; "IP Warmup Schedule" API reference).
// The per-day numbers here are our derivation, not SES's: a geometric curve
// through SES's endpoints, 50 * r^(day-1) with r = 1000^(1/44) ~ 1.17, rounded
// to the nearest integer: 50, 58, 68, 80, 94, 110, 128, 150, 176, 205 ...
// 5,552 (day 31) ... 22,807 (day 40) ... 50,000 (day 45). Gentler per day
// than SendGrid's x1.4 because it covers 45 days instead of ~30 to the same
// order of volume.
const Schedule& standard_schedule();

// A built-in schedule by name ("standard"), or nullptr.
const Schedule* builtin_schedule(std::string_view name);

// The warm-up day of `now`: 1 on `started` (local date in `tz`), 2 the next
// local day, ...; <= 0 before the start; > schedule.days() means warm.
int warmup_day(Date started, SysTime now, const TimeZone& tz);

}  // namespace mta::warmup
