// Helpers shared by the warm-up tests: instants written as UTC calendar
// times, and a fake clock that only moves when told to.
#pragma once

#include <chrono>

#include "mta/warmup/time_zone.hpp"

namespace mta::warmup::test {

inline SysTime utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  using namespace std::chrono;
  return SysTime{sys_days{year{y} / month{mo} / day{d}}.time_since_epoch() + hours(h) +
                 minutes(mi) + seconds(s)};
}

inline Date date(const char* s) {
  return *Date::parse(s);
}

// A fake clock: starts where the test says and moves only by advance().
struct FakeClock {
  SysTime t;
  SysTime now() const { return t; }
  void advance(std::chrono::seconds d) { t += d; }
};

}  // namespace mta::warmup::test
