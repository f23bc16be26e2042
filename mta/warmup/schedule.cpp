#include "mta/warmup/schedule.hpp"

#include <algorithm>

namespace mta::warmup {

uint64_t Schedule::limit(int day) const {
  if (day < 1) return 0;
  if (day > days()) return kUnlimited;
  return daily_limits[static_cast<size_t>(day - 1)];
}

core::Status Schedule::validate() const {
  std::string what = "warm-up schedule \"" + name + "\": ";
  if (daily_limits.empty()) return core::make_error(what + "no days");
  if (daily_limits.size() > 3650) return core::make_error(what + "more than 3650 days");
  for (size_t i = 0; i < daily_limits.size(); ++i) {
    if (daily_limits[i] == 0)
      return core::make_error(what + "day " + std::to_string(i + 1) + " has a limit of 0");
    if (daily_limits[i] == kUnlimited)
      return core::make_error(what + "day " + std::to_string(i + 1) + " has no limit");
  }
  return core::Ok{};
}

const Schedule& standard_schedule() {
  // 50 * 1000^((day-1)/44), rounded: see schedule.hpp for the derivation.
  static const Schedule kStandard{
      "standard",
      {50,    58,    68,    80,    94,    110,   128,   150,   176,  205,  240,   281,
       329,   385,   450,   527,   616,   721,   844,   987,   1155, 1351, 1581,  1850,
       2164,  2532,  2963,  3466,  4056,  4745,  5552,  6495,  7600, 8891, 10403, 12171,
       14240, 16661, 19493, 22807, 26683, 31219, 36526, 42735, 50000},
      false};
  return kStandard;
}

const Schedule* builtin_schedule(std::string_view name) {
  if (name == "standard") return &standard_schedule();
  return nullptr;
}

int warmup_day(Date started, SysTime now, const TimeZone& tz) {
  int64_t d = tz.local_date(now).days() - started.days() + 1;
  return static_cast<int>(std::clamp<int64_t>(d, -1'000'000, 1'000'000));
}

}  // namespace mta::warmup
