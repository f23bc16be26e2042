// Plan: the projected day-by-day volume of a warming IP, for
// `mta warmup plan --config F --ip A`: what it may send each day and the
// date it will be warm. A projection from the schedule alone: days held by
// throttling (Limiter status: held_days) push every later date back by as
// many days, which `held_days` models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mta/warmup/schedule.hpp"

namespace mta::warmup {

struct PlanDay {
  int day = 0;  // warm-up day, 1-based
  Date date;
  uint64_t daily_limit = 0;
  uint64_t hourly = 0;      // the first hour's paced cap, ceil(daily_limit / 24)
  uint64_t cumulative = 0;  // messages allowed on days 1..day
};

std::vector<PlanDay> plan(const Schedule& s, Date started, uint32_t held_days = 0);
// The first day without a warm-up limit.
Date warm_on(const Schedule& s, Date started, uint32_t held_days = 0);

// A human table:
//   warm-up plan for 192.0.2.10: schedule "standard", 45 days from 2024-05-01
//   day  date          daily limit  ~per hour   cumulative
//     1  2024-05-01             50          3           50
//   ...
//   warm on 2024-06-15: no warm-up limit from then on
// `ip` may be empty; `today` (optional) marks the current day with '>'.
std::string format_plan(const Schedule& s, Date started, std::string_view ip = {},
                        uint32_t held_days = 0, const Date* today = nullptr);

// 50000 -> "50,000".
std::string with_commas(uint64_t n);

}  // namespace mta::warmup
