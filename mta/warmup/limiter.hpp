// Limiter: how many messages each sending IP may send now, for warm-up and
// for adaptive backoff. The router asks it which IPs have room; the delivery
// engine takes a unit before each message, gives it back when nothing was
// sent, and reports every reply's throttle verdict.
//
// Warm-up. An IP configured with a Schedule and a `started` date is on warm-up
// day d = (local date - started + 1 - held days), in the server's time zone.
// On day d it may send at most daily_limits[d] messages: to all providers
// together, or to each provider separately when the schedule is per_provider
// (the counters are then per (IP, provider)). Before `started` it has no room
// (it is NOT_STARTED: configured but not to be used yet; overflow takes the
// mail). After the last day it is warm (DONE) and unlimited by warm-up.
//
// Pacing. The local day is cut into hour slots counted in real hours from
// local midnight (24; 23 or 25 on DST days). In slot h of H:
//     hour_cap = ceil((daily_limit - sent_before_slot_h) / (H - h))
// i.e. what is left of the day spread evenly over the hours left, this one
// included. Sending less in one hour raises the later hours' caps; nothing
// bursts at midnight, and the day's total never exceeds daily_limit. The
// cap is recomputed only when a new slot begins, so within an hour it is
// fixed. Example: 240/day -> 10 in 00:00-01:00; having sent 4 by 01:00 ->
// ceil(236/23) = 11 in 01:00-02:00.
//
// Adaptive backoff (AIMD), per (IP, provider), always on:
//   - a rate multiplier m in [floor, 1.0] (floor from AimdPolicy, default
//     0.1) starts at 1.0;
//   - a throttled reply multiplies m by `decrease` (0.5), at most once per
//     `window` (10 min): a burst of 421s from parallel sessions is one signal;
//   - a clean window adds `increase` (0.1): at least `window` long, with at
//     least `min_clean_results` (5) non-throttled results and no throttled
//     one. A throttled reply starts a new window. Recovery needs traffic, so
//     a window that has not yet seen enough results simply lasts longer;
//   - m scales the hour cap of that (IP, provider): ceil(hour_cap * m), at
//     least 1. For a warming IP hour_cap is the paced cap above; for a warm IP
//     it is IpWarmup::max_messages_per_hour when set (per (IP, provider)), and
//     when not set m is only reported (the delivery engine may use it for
//     concurrency).
//   - m is stored in thousandths, so the arithmetic is exact and repeatable.
// Held days: a warming IP throttled today does not advance tomorrow. A
// throttled reply opens a hold; a clean result on a later local day closes
// it. Every local day that ends with the hold open adds one held day, so the
// effective day stays at the last day the IP delivered cleanly. With a
// per_provider schedule the hold is per (IP, provider), otherwise any
// provider's throttle holds the IP. The status says why ("held at day 7:
// throttled by gmail at 10:42").
//
// Persistence. Counters (per IP or (IP, provider): local day, hour slot,
// sent today, sent before this hour), the hold state and the AIMD state live
// in memory and are written to the store's meta column family under
// "warmup/" by flush(), which the daemon calls every second and at shutdown:
// one batch with what changed since the last flush, written without fsync
// (the next synced spool commit, or the OS, makes it durable; kill -9 of the
// process cannot lose it once written). A kill -9 can therefore lose at most
// the last second of counts, so after a crash an IP may overshoot by what it
// sent in that second: never more than one hour's paced cap (about 2,100 on a
// 50,000/day day), usually a few messages. A provider judges an IP on its
// hourly and daily volume, where that is noise; a durable write per message
// on the hot path would cost more than it protects. load() restores the
// state at start-up; counters of an earlier local day are simply stale.
// Keys: "warmup/t/<ip>\0<provider>" (warm-up counters and hold; provider is
// empty unless per_provider) and "warmup/l/<ip>\0<provider>" (AIMD state and
// per-(IP, provider) counters).
//
// Reconfiguration (SIGHUP): configure() replaces the IP list, schedules and
// policy and keeps every counter. Changing an IP's `started` date restarts
// its warm-up: its held days are forgotten (today's count is kept). A new time
// zone applies from the next call: when the date there is later than the
// counters' day they start again at 0, when it is earlier they carry on (as
// when the clock steps back: never a fresh day by going backwards).
//
// Threads: every method is thread-safe (one mutex; each call is short and
// does no I/O except load() and flush(), which write outside the lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/warmup/schedule.hpp"
#include "mta/warmup/time_zone.hpp"

namespace mta::store {
class Store;
}  // namespace mta::store

namespace mta::warmup {

struct IpWarmup {
  std::string ip;
  // The warm-up schedule; nullopt: a warm IP (only max_messages_per_hour
  // and backoff apply).
  std::optional<Schedule> schedule;
  Date started;  // day 1; ignored without a schedule
  // Messages per hour per (IP, provider) once the IP is warm; 0 = no
  // ceiling. Scaled by the AIMD multiplier.
  uint64_t max_messages_per_hour = 0;
  // The same per provider, replacing max_messages_per_hour for them.
  std::map<std::string, uint64_t, std::less<>> provider_hourly;
};

struct AimdPolicy {
  double floor = 0.1;     // lowest multiplier, (0, 1]
  double decrease = 0.5;  // factor on a throttled reply, (0, 1)
  double increase = 0.1;  // added per clean window, (0, 1]
  std::chrono::seconds window = std::chrono::minutes(10);
  uint32_t min_clean_results = 5;  // results a clean window needs, >= 1
  core::Status validate() const;
};

struct LimiterOptions {
  TimeZone time_zone;  // the server's; UTC by default
  AimdPolicy aimd;
};

enum class WarmupState {
  kNone,        // no warm-up configured: a warm IP
  kNotStarted,  // before `started`: no room
  kInProgress,  // warming: limited by the schedule
  kDone,        // past the last day (held days included): warm
};
// "NONE", "NOT_STARTED", "IN_PROGRESS", "DONE"
const char* to_string(WarmupState s);

// What one (IP, provider) may do now.
struct Allowance {
  WarmupState state = WarmupState::kNone;
  bool warming = false;  // a warm-up limit applies (NOT_STARTED or IN_PROGRESS)
  int day = 0;           // effective warm-up day (held days subtracted); 0 without warm-up
  uint64_t daily_limit = kUnlimited;
  // Sent today on the counter that limits: the IP's (or the (IP, provider)'s
  // with a per_provider schedule) while warming, the (IP, provider)'s when warm.
  uint64_t sent_today = 0;
  uint64_t hour_limit = kUnlimited;           // this hour's cap, after backoff
  uint64_t hour_allowance_left = kUnlimited;  // what may still be sent this hour
  double multiplier = 1.0;                    // AIMD state of this (IP, provider)
  // Warming only: sent in this hour slot on the limiting counter, and the
  // slot's bounds (for pacing within the hour, see Router).
  uint64_t sent_this_hour = 0;
  SysTime hour_start, hour_end;
  bool room_now = true;
  SysTime next_room;  // now when room_now; else when an allowance opens again
};

struct ProviderStatus {
  std::string provider;
  double multiplier = 1.0;
  uint64_t sent_today = 0;
  uint64_t sent_this_hour = 0;
  uint32_t throttled_today = 0;
  std::optional<SysTime> last_throttled;
  // Per-provider schedules only (otherwise the IP's fields say it):
  int day = 0;
  uint64_t daily_limit = kUnlimited;
  bool held = false;
  uint32_t held_days = 0;
  std::string status_reason;
};

struct IpStatus {
  std::string ip;
  std::string schedule;  // its name; empty without warm-up
  WarmupState state = WarmupState::kNone;
  int day = 0;           // effective day (calendar day - held days)
  int calendar_day = 0;  // days since `started` + 1
  int days = 0;          // schedule length
  uint64_t daily_limit = kUnlimited;
  uint64_t sent_today = 0;  // all providers
  // Progress 0-100 like SES's WarmupPercentage: the share of the schedule's
  // days completed, (day - 1) * 100 / days, rounded down; 0 before the
  // start, 100 when done. Days, not volume: the geometric curve puts 70%
  // of the volume in the last 8 days, which would read as "stuck" for weeks.
  int percent = 0;
  bool held = false;  // a throttle is holding the day
  uint32_t held_days = 0;
  std::string status_reason;    // why held, e.g. "held at day 7: throttled by gmail at 10:42"
  std::optional<Date> warm_on;  // projected first warm day (shifts with held days)
  std::vector<ProviderStatus> providers;  // sorted by provider
};
// With a per_provider schedule the IP-level day/daily_limit/held describe
// its least advanced provider (the calendar day when no provider has sent yet).

class Limiter final {
 public:
  // An invalid opts.aimd falls back to the defaults here; configure()
  // reports it as an error.
  explicit Limiter(LimiterOptions opts = {});
  ~Limiter();
  Limiter(const Limiter&) = delete;
  Limiter& operator=(const Limiter&) = delete;

  // Replaces the configuration, keeping all counters. An invalid schedule,
  // duplicate IP or bad policy returns an error and changes nothing.
  core::Status configure(std::vector<IpWarmup> ips);
  core::Status configure(std::vector<IpWarmup> ips, LimiterOptions opts);

  // What `ip` may send to `provider` now. IPs not configured are warm.
  Allowance allowance(std::string_view ip, std::string_view provider, SysTime now) const;
  // Consumes n units if the hour allowance has room for all n; false
  // (nothing consumed) otherwise. Warm IPs without a ceiling always succeed
  // (and are counted for status).
  bool try_take(std::string_view ip, std::string_view provider, SysTime now, uint64_t n = 1);
  // Returns units taken for a send that did not happen (the connection
  // failed before the message was sent). `taken_at` is the time passed to
  // try_take(), so units taken before midnight do not credit the new day
  // (they are dropped), and units of an earlier hour credit the day, not
  // the current hour's count.
  void give_back(std::string_view ip, std::string_view provider, SysTime taken_at, uint64_t n = 1);
  // One reply's verdict (bounce::Classification::throttle): true for a
  // throttling reply (421, 4.7.0/4.7.28 rate limits, "try again later"),
  // false for any other result of a message that reached the server.
  void on_result(std::string_view ip, std::string_view provider, bool throttled, SysTime now);

  // Configured IPs and any IP with recorded traffic, sorted by ip.
  std::vector<IpStatus> status(SysTime now) const;

  // Restores the persisted state (start-up, before or after configure()).
  // Malformed entries are skipped.
  core::Status load(const store::Store& store);
  // Writes what changed since the last flush, as one batch. On failure the
  // changes stay pending for the next flush.
  core::Status flush(store::Store& store);
  size_t pending() const;  // entries flush() would write

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta::warmup
