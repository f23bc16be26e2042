// `mta warmup plan` and `mta warmup status`: the warm-up of the config's IPs,
// offline. Status reads the counters the daemon flushes to the spool every
// second (a read-only open: it works while the daemon runs).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "mta/app/commands.hpp"
#include "mta/app/wiring.hpp"
#include "mta/config/config.hpp"
#include "mta/store/store.hpp"
#include "mta/warmup/limiter.hpp"
#include "mta/warmup/plan.hpp"

namespace mta::app {
namespace {

// The daemon's clock: MTA_CLOCK_OFFSET (tests) moves it.
core::SysTime now() {
  return std::chrono::system_clock::now() + clock_offset();
}

// A limiter with the config's IPs and, when there is a spool, its counters.
std::unique_ptr<warmup::Limiter> limiter_for(const config::Config& cfg, bool& have_spool) {
  auto lim = std::make_unique<warmup::Limiter>(limiter_options(cfg));
  if (auto s = lim->configure(limiter_ips(cfg), limiter_options(cfg)); !s.ok()) {
    std::cerr << cfg.path << ": " << s.error().message << "\n";
    return nullptr;
  }
  have_spool = false;
  auto store = store::Store::open(cfg.spool_dir, store::Mode::kReadOnly);
  if (store) {
    have_spool = true;
    if (auto s = lim->load(**store); !s.ok())
      std::cerr << "mta: warm-up counters unreadable: " << s.error().message << "\n";
  }
  return lim;
}

std::string pool_of(const config::Config& cfg, const std::string& ip) {
  for (const auto& p : cfg.ip_pools)
    for (const auto& i : p.ips)
      if (i.address.to_string() == ip) return p.name;
  return "";
}

std::string limit_text(uint64_t n) {
  return n == warmup::kUnlimited ? "-" : warmup::with_commas(n);
}

}  // namespace

int warmup_plan(const std::string& path, const std::string& ip_text) {
  auto r = config::load_file(path);
  if (r.error) {
    std::cerr << r.error->to_string() << "\n";
    return 2;
  }
  const config::Config& cfg = *r.config;
  auto want = core::IpAddress::parse(ip_text);
  if (!want) {
    std::cerr << "mta: not an IP address: " << ip_text << "\n";
    return 2;
  }
  const config::PoolIp* found = nullptr;
  for (const auto& p : cfg.ip_pools)
    for (const auto& i : p.ips)
      if (i.address.unmapped() == want->unmapped()) found = &i;
  if (!found) {
    std::cerr << "mta: " << ip_text << " is not in any of the ip_pools of " << path << "\n";
    return 2;
  }
  std::string ip = found->address.to_string();
  if (!found->warmup) {
    std::cerr << "mta: " << ip << " has no warm-up in " << path
              << " (it is warm: only shaping limits apply)\n";
    return 2;
  }
  const warmup::Schedule* s = cfg.find_schedule(found->warmup->schedule);
  if (!s) {
    std::cerr << "mta: no warm-up schedule " << found->warmup->schedule << "\n";
    return 2;
  }
  // Days already held by throttling push the plan back.
  uint32_t held = 0;
  bool have_spool = false;
  auto lim = limiter_for(cfg, have_spool);
  auto t = now();
  if (lim)
    for (const auto& st : lim->status(t))
      if (st.ip == ip) held = st.held_days;
  warmup::Date today = cfg.time_zone.local_date(t);
  std::cout << warmup::format_plan(*s, found->warmup->started, ip, held, &today);
  if (held > 0) std::cout << "(" << held << " day(s) held by throttling so far)\n";
  return 0;
}

int warmup_status(const std::string& path, bool json) {
  auto r = config::load_file(path);
  if (r.error) {
    std::cerr << r.error->to_string() << "\n";
    return 2;
  }
  const config::Config& cfg = *r.config;
  bool have_spool = false;
  auto lim = limiter_for(cfg, have_spool);
  if (!lim) return 2;
  auto statuses = lim->status(now());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : statuses) {
      nlohmann::json j;
      j["ip"] = s.ip;
      j["pool"] = pool_of(cfg, s.ip);
      j["schedule"] = s.schedule;
      j["state"] = warmup::to_string(s.state);
      j["day"] = s.day;
      j["calendar_day"] = s.calendar_day;
      j["days"] = s.days;
      j["daily_limit"] =
          s.daily_limit == warmup::kUnlimited ? nlohmann::json() : nlohmann::json(s.daily_limit);
      j["sent_today"] = s.sent_today;
      j["percent"] = s.percent;
      j["held"] = s.held;
      j["held_days"] = s.held_days;
      j["status"] = s.status_reason;
      j["warm_on"] = s.warm_on ? s.warm_on->to_string() : "";
      j["providers"] = nlohmann::json::array();
      for (const auto& p : s.providers)
        j["providers"].push_back({{"provider", p.provider},
                                  {"multiplier", p.multiplier},
                                  {"sent_today", p.sent_today},
                                  {"sent_this_hour", p.sent_this_hour},
                                  {"throttled_today", p.throttled_today}});
      out.push_back(std::move(j));
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("%-39s %-14s %-10s %-11s %7s %12s %10s %5s  %s\n", "IP", "POOL", "SCHEDULE", "STATE",
              "DAY", "DAILY LIMIT", "SENT", "PCT", "STATUS");
  for (const auto& s : statuses) {
    std::string day = s.days ? std::to_string(s.day) + "/" + std::to_string(s.days) : "-";
    std::string why = s.status_reason;
    if (why.empty() && s.warm_on && s.state == warmup::WarmupState::kInProgress)
      why = "advancing; warm on " + s.warm_on->to_string();
    for (const auto& p : s.providers)
      if (p.multiplier < 1.0)
        why += (why.empty() ? "" : "; ") + std::string("backoff ") + p.provider + " x" +
               std::to_string(p.multiplier).substr(0, 4);
    // A warm IP has no warm-up progress to show.
    std::string pct = s.state == warmup::WarmupState::kNone ? "-" : std::to_string(s.percent) + "%";
    std::printf("%-39s %-14s %-10s %-11s %7s %12s %10s %5s  %s\n", s.ip.c_str(),
                pool_of(cfg, s.ip).c_str(), s.schedule.empty() ? "-" : s.schedule.c_str(),
                warmup::to_string(s.state), day.c_str(), limit_text(s.daily_limit).c_str(),
                warmup::with_commas(s.sent_today).c_str(), pct.c_str(), why.c_str());
  }
  if (!have_spool) std::printf("(no spool yet: no counters)\n");
  return 0;
}

}  // namespace mta::app
