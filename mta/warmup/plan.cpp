#include "mta/warmup/plan.hpp"

#include <cstdio>

namespace mta::warmup {

std::string with_commas(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::vector<PlanDay> plan(const Schedule& s, Date started, uint32_t held_days) {
  std::vector<PlanDay> out;
  out.reserve(s.daily_limits.size());
  uint64_t cumulative = 0;
  for (int d = 1; d <= s.days(); ++d) {
    uint64_t limit = s.limit(d);
    cumulative += limit;
    // Held days repeat no schedule day in this projection; they delay them.
    Date date = started.plus_days(d - 1 + static_cast<int64_t>(held_days));
    out.push_back({d, date, limit, (limit + 23) / 24, cumulative});
  }
  return out;
}

Date warm_on(const Schedule& s, Date started, uint32_t held_days) {
  return started.plus_days(s.days() + static_cast<int64_t>(held_days));
}

std::string format_plan(const Schedule& s, Date started, std::string_view ip, uint32_t held_days,
                        const Date* today) {
  std::string out = "warm-up plan";
  if (!ip.empty()) out += " for " + std::string(ip);
  out += ": schedule \"" + s.name + "\", " + std::to_string(s.days()) + " days from " +
         started.to_string();
  if (held_days > 0) out += ", " + std::to_string(held_days) + " day(s) held so far";
  out += s.per_provider ? " (limits per provider)\n" : "\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %4s  %-10s  %12s  %10s  %12s\n", "day", "date", "daily limit",
                "~per hour", "cumulative");
  out += line;
  for (const PlanDay& p : plan(s, started, held_days)) {
    bool mark = today && *today == p.date;
    std::snprintf(line, sizeof line, "%c %4d  %-10s  %12s  %10s  %12s\n", mark ? '>' : ' ', p.day,
                  p.date.to_string().c_str(), with_commas(p.daily_limit).c_str(),
                  with_commas(p.hourly).c_str(), with_commas(p.cumulative).c_str());
    out += line;
  }
  out +=
      "warm on " + warm_on(s, started, held_days).to_string() + ": no warm-up limit from then on\n";
  return out;
}

}  // namespace mta::warmup
