#include "mta/warmup/limiter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "mta/store/store.hpp"

namespace mta::warmup {

namespace {

constexpr int64_t kNone = INT64_MIN;  // "no day yet" / "never"
constexpr uint32_t kOne = 1000;       // multiplier 1.0 in thousandths
constexpr std::string_view kPrefix = "warmup/";
constexpr uint8_t kVersion = 1;

int64_t to_ms(SysTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

uint64_t sat_sub(uint64_t a, uint64_t b) {
  return a > b ? a - b : 0;
}
uint64_t ceil_div(uint64_t a, uint64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
}

// ceil(base * pm / 1000), at least 1 when base >= 1.
uint64_t scale(uint64_t base, uint32_t pm) {
  if (base == kUnlimited || pm >= kOne || base == 0) return base;
  unsigned __int128 v = (static_cast<unsigned __int128>(base) * pm + (kOne - 1)) / kOne;
  return std::max<uint64_t>(1, static_cast<uint64_t>(v));
}

// Warm-up counters and hold state of an IP, or of an (IP, provider) with a
// per_provider schedule.
struct Track {
  int64_t started_days = kNone;  // the warm-up the hold state belongs to
  int64_t day = kNone;           // local day (days since epoch) of the counters
  uint32_t slot = 0;             // hour slot of sent_before_slot
  uint64_t sent_today = 0;
  uint64_t sent_before_slot = 0;
  uint32_t held_days = 0;
  bool hold_open = false;
  int64_t last_throttle_day = kNone;
  std::string reason;
};

// Per (IP, provider): counters for warm ceilings and status, and AIMD.
struct Lane {
  int64_t day = kNone;
  uint32_t slot = 0;
  uint64_t sent_today = 0;
  uint64_t sent_hour = 0;
  uint32_t throttled_today = 0;
  uint32_t pm = kOne;
  int64_t last_decrease_ms = kNone;
  int64_t window_start_ms = kNone;
  uint32_t clean = 0;
  int64_t last_throttle_ms = kNone;
};

struct Tick {
  SysTime now;
  int64_t now_ms;
  LocalDay day;
  int64_t today;
  uint32_t slot;
  uint32_t slots;
  SysTime slot_end;
};

struct Policy {
  uint32_t floor_pm, decrease_pm, increase_pm;
  int64_t window_ms;
  uint32_t min_clean;
};

Policy policy_of(const AimdPolicy& p) {
  return {static_cast<uint32_t>(std::clamp<long>(std::lround(p.floor * kOne), 1, kOne)),
          static_cast<uint32_t>(std::clamp<long>(std::lround(p.decrease * kOne), 0, kOne - 1)),
          static_cast<uint32_t>(std::clamp<long>(std::lround(p.increase * kOne), 1, kOne)),
          std::chrono::duration_cast<std::chrono::milliseconds>(p.window).count(),
          p.min_clean_results};
}

std::string compose(std::string_view ip, std::string_view provider) {
  std::string k;
  k.reserve(ip.size() + 1 + provider.size());
  k.append(ip);
  k.push_back('\0');
  k.append(provider);
  return k;
}

std::string_view ip_of(std::string_view composed) {
  return composed.substr(0, composed.find('\0'));
}
std::string_view provider_of(std::string_view composed) {
  size_t z = composed.find('\0');
  return z == std::string_view::npos ? std::string_view() : composed.substr(z + 1);
}

// ---- encoding: version byte, big-endian fixed fields, then the reason ----

void put_i64(std::string& out, int64_t v) {
  store::put_u64(out, static_cast<uint64_t>(v));
}

struct Reader {
  std::string_view in;
  bool ok = true;
  bool need(size_t n) {
    if (in.size() < n) ok = false;
    return ok;
  }
  uint8_t u8() {
    if (!need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = store::get_u32(in);
    in.remove_prefix(4);
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = store::get_u64(in);
    in.remove_prefix(8);
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
};

std::string encode(const Track& t) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  put_i64(out, t.started_days);
  put_i64(out, t.day);
  store::put_u32(out, t.slot);
  store::put_u64(out, t.sent_today);
  store::put_u64(out, t.sent_before_slot);
  store::put_u32(out, t.held_days);
  out.push_back(t.hold_open ? 1 : 0);
  put_i64(out, t.last_throttle_day);
  out.append(t.reason);
  return out;
}

std::optional<Track> decode_track(std::string_view v) {
  Reader r{v};
  if (r.u8() != kVersion) return std::nullopt;
  Track t;
  t.started_days = r.i64();
  t.day = r.i64();
  t.slot = r.u32();
  t.sent_today = r.u64();
  t.sent_before_slot = r.u64();
  t.held_days = r.u32();
  t.hold_open = r.u8() != 0;
  t.last_throttle_day = r.i64();
  if (!r.ok || t.sent_before_slot > t.sent_today) return std::nullopt;
  t.reason = std::string(r.in);
  return t;
}

std::string encode(const Lane& l) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  put_i64(out, l.day);
  store::put_u32(out, l.slot);
  store::put_u64(out, l.sent_today);
  store::put_u64(out, l.sent_hour);
  store::put_u32(out, l.throttled_today);
  store::put_u32(out, l.pm);
  put_i64(out, l.last_decrease_ms);
  put_i64(out, l.window_start_ms);
  store::put_u32(out, l.clean);
  put_i64(out, l.last_throttle_ms);
  return out;
}

std::optional<Lane> decode_lane(std::string_view v) {
  Reader r{v};
  if (r.u8() != kVersion) return std::nullopt;
  Lane l;
  l.day = r.i64();
  l.slot = r.u32();
  l.sent_today = r.u64();
  l.sent_hour = r.u64();
  l.throttled_today = r.u32();
  l.pm = r.u32();
  l.last_decrease_ms = r.i64();
  l.window_start_ms = r.i64();
  l.clean = r.u32();
  l.last_throttle_ms = r.i64();
  if (!r.ok || !r.in.empty() || l.pm == 0 || l.pm > kOne) return std::nullopt;
  return l;
}

// ---- rolling counters forward to the current day and hour ----

// Moves a track to tick `k`. Days that ended with the hold open become held
// days. A clock that went backwards keeps the counters (never a fresh day).
void roll(Track& t, const Tick& k, int64_t started_days) {
  if (t.started_days != started_days) {
    // A new `started` date: a new warm-up, the old holds do not apply.
    t.started_days = started_days;
    t.held_days = 0;
    t.hold_open = false;
    t.last_throttle_day = kNone;
    t.reason.clear();
  }
  if (t.day == kNone || k.today > t.day) {
    if (t.day != kNone && t.hold_open) {
      int64_t from = std::max(t.day, started_days);
      if (k.today > from)
        t.held_days =
            static_cast<uint32_t>(std::min<int64_t>(t.held_days + (k.today - from), 1'000'000));
    }
    t.day = k.today;
    t.slot = k.slot;
    t.sent_today = 0;
    t.sent_before_slot = 0;
  } else if (k.today == t.day && k.slot > t.slot) {
    t.slot = k.slot;
    t.sent_before_slot = t.sent_today;
  }
}

void roll(Lane& l, const Tick& k) {
  if (l.day == kNone || k.today > l.day) {
    l.day = k.today;
    l.slot = k.slot;
    l.sent_today = 0;
    l.sent_hour = 0;
    l.throttled_today = 0;
  } else if (k.today == l.day && k.slot > l.slot) {
    l.slot = k.slot;
    l.sent_hour = 0;
  }
}

struct Config {
  IpWarmup w;
  bool warming() const { return w.schedule.has_value(); }
  uint64_t hourly(std::string_view provider) const {
    auto it = w.provider_hourly.find(provider);
    return it != w.provider_hourly.end() ? it->second : w.max_messages_per_hour;
  }
};

struct DayInfo {
  WarmupState state;
  int calendar;
  int effective;
};

int clamp_int(int64_t v) {
  return static_cast<int>(std::clamp<int64_t>(v, -1'000'000, 1'000'000));
}

DayInfo day_info(const Config& c, const Track& t, const Tick& k) {
  int64_t cal = k.today - c.w.started.days() + 1;
  if (cal < 1) return {WarmupState::kNotStarted, clamp_int(cal), clamp_int(cal)};
  int64_t eff = std::max<int64_t>(1, cal - t.held_days);
  if (eff > c.w.schedule->days()) return {WarmupState::kDone, clamp_int(cal), clamp_int(eff)};
  return {WarmupState::kInProgress, clamp_int(cal), clamp_int(eff)};
}

}  // namespace

const char* to_string(WarmupState s) {
  switch (s) {
    case WarmupState::kNone:
      return "NONE";
    case WarmupState::kNotStarted:
      return "NOT_STARTED";
    case WarmupState::kInProgress:
      return "IN_PROGRESS";
    case WarmupState::kDone:
      return "DONE";
  }
  return "?";
}

core::Status AimdPolicy::validate() const {
  if (!(floor > 0 && floor <= 1)) return core::make_error("backoff floor must be in (0, 1]");
  if (!(decrease > 0 && decrease < 1))
    return core::make_error("backoff decrease factor must be in (0, 1)");
  if (!(increase > 0 && increase <= 1))
    return core::make_error("backoff increase must be in (0, 1]");
  if (window.count() <= 0) return core::make_error("backoff window must be positive");
  if (min_clean_results < 1) return core::make_error("backoff min_clean_results must be >= 1");
  return core::Ok{};
}

struct Limiter::Impl {
  mutable std::mutex mu;
  LimiterOptions opts;
  Policy policy = policy_of(AimdPolicy{});
  std::map<std::string, Config, std::less<>> ips;    // by ip
  std::map<std::string, Track, std::less<>> tracks;  // by compose(ip, provider or "")
  std::map<std::string, Lane, std::less<>> lanes;    // by compose(ip, provider)
  std::set<std::string> dirty;                       // 't' or 'l' + composed key
  mutable std::optional<LocalDay> day_cache;

  Tick tick(SysTime now) const {
    if (!day_cache || now < day_cache->start || now >= day_cache->end)
      day_cache = opts.time_zone.local_day(now);
    const LocalDay& d = *day_cache;
    uint32_t slot = d.hour_of(now);
    return Tick{now, to_ms(now), d, d.date.days(), slot, d.hours(), d.hour_end(slot)};
  }

  const Config* config(std::string_view ip) const {
    auto it = ips.find(ip);
    return it == ips.end() ? nullptr : &it->second;
  }

  std::string track_key(const Config& c, std::string_view provider) const {
    return compose(c.w.ip, c.w.schedule->per_provider ? provider : std::string_view());
  }

  // Rolled copies, for read-only questions.
  Track track_view(const Config& c, std::string_view provider, const Tick& k) const {
    auto it = tracks.find(track_key(c, provider));
    Track t = it == tracks.end() ? Track{} : it->second;
    roll(t, k, c.w.started.days());
    return t;
  }
  Lane lane_view(std::string_view ip, std::string_view provider, const Tick& k) const {
    auto it = lanes.find(compose(ip, provider));
    Lane l = it == lanes.end() ? Lane{} : it->second;
    roll(l, k);
    return l;
  }

  // Rolled in place, marked dirty: for changes.
  Track& track_ref(const Config& c, std::string_view provider, const Tick& k) {
    std::string key = track_key(c, provider);
    Track& t = tracks[key];
    roll(t, k, c.w.started.days());
    dirty.insert("t" + key);
    return t;
  }
  Lane& lane_ref(std::string_view ip, std::string_view provider, const Tick& k) {
    std::string key = compose(ip, provider);
    Lane& l = lanes[key];
    roll(l, k);
    dirty.insert("l" + key);
    return l;
  }

  uint32_t pm_of(const Lane& l) const { return std::clamp(l.pm, policy.floor_pm, kOne); }

  Allowance compute(const Config* c, const Track* t, const Lane& l, const Tick& k,
                    std::string_view provider) const {
    Allowance a;
    uint32_t pm = pm_of(l);
    a.multiplier = pm / 1000.0;
    a.next_room = k.now;
    if (c && c->warming()) {
      DayInfo di = day_info(*c, *t, k);
      a.state = di.state;
      a.day = di.effective;
      if (di.state == WarmupState::kNotStarted) {
        a.warming = true;
        a.daily_limit = 0;
        a.sent_today = t->sent_today;
        a.hour_limit = 0;
        a.hour_allowance_left = 0;
        a.room_now = false;
        a.next_room = opts.time_zone.day_start(c->w.started);
        return a;
      }
      if (di.state == WarmupState::kInProgress) {
        uint64_t limit = c->w.schedule->limit(di.effective);
        uint64_t day_left = sat_sub(limit, t->sent_today);
        uint64_t hours_left = k.slots - k.slot;  // >= 1
        uint64_t base = ceil_div(sat_sub(limit, t->sent_before_slot), hours_left);
        uint64_t in_hour = t->sent_today - t->sent_before_slot;
        uint64_t cap = scale(base, pm);
        a.warming = true;
        a.daily_limit = limit;
        a.sent_today = t->sent_today;
        a.hour_limit = cap;
        a.sent_this_hour = in_hour;
        a.hour_start = k.slot == 0 ? k.day.start : k.day.hour_end(k.slot - 1);
        a.hour_end = k.slot_end;
        a.hour_allowance_left =
            std::min({sat_sub(base, in_hour), sat_sub(cap, l.sent_hour), day_left});
        a.room_now = a.hour_allowance_left > 0;
        if (!a.room_now) a.next_room = day_left == 0 ? k.day.end : k.slot_end;
        return a;
      }
      // kDone: warm from here on.
    }
    a.sent_today = l.sent_today;
    if (c && c->hourly(provider) > 0) {
      uint64_t cap = scale(c->hourly(provider), pm);
      a.hour_limit = cap;
      a.hour_allowance_left = sat_sub(cap, l.sent_hour);
      a.room_now = a.hour_allowance_left > 0;
      if (!a.room_now) a.next_room = k.slot_end;
    }
    return a;
  }

  void aimd(Lane& l, bool throttled, int64_t now_ms) const {
    const Policy& p = policy;
    l.pm = std::clamp(l.pm, p.floor_pm, kOne);
    if (throttled) {
      if (l.last_decrease_ms == kNone || now_ms - l.last_decrease_ms >= p.window_ms) {
        l.pm = std::max(p.floor_pm, l.pm * p.decrease_pm / kOne);
        l.last_decrease_ms = now_ms;
      }
      l.window_start_ms = now_ms;
      l.clean = 0;
      l.last_throttle_ms = now_ms;
      ++l.throttled_today;
      return;
    }
    if (l.window_start_ms == kNone) l.window_start_ms = now_ms;
    if (l.clean < UINT32_MAX) ++l.clean;
    if (now_ms - l.window_start_ms >= p.window_ms && l.clean >= p.min_clean) {
      l.pm = std::min(kOne, l.pm + p.increase_pm);
      l.window_start_ms = now_ms;
      l.clean = 0;
    }
  }

  ProviderStatus provider_status(std::string_view provider, const Lane& l) const {
    ProviderStatus p;
    p.provider = std::string(provider);
    p.multiplier = pm_of(l) / 1000.0;
    p.sent_today = l.sent_today;
    p.sent_this_hour = l.sent_hour;
    p.throttled_today = l.throttled_today;
    if (l.last_throttle_ms != kNone)
      p.last_throttled = SysTime{} + std::chrono::milliseconds(l.last_throttle_ms);
    return p;
  }
};

Limiter::Limiter(LimiterOptions opts) : impl_(std::make_unique<Impl>()) {
  if (!opts.aimd.validate()) opts.aimd = AimdPolicy{};
  impl_->policy = policy_of(opts.aimd);
  impl_->opts = std::move(opts);
}

Limiter::~Limiter() = default;

core::Status Limiter::configure(std::vector<IpWarmup> ips) {
  LimiterOptions opts;
  {
    std::lock_guard lock(impl_->mu);
    opts = impl_->opts;
  }
  return configure(std::move(ips), std::move(opts));
}

core::Status Limiter::configure(std::vector<IpWarmup> ips, LimiterOptions opts) {
  if (auto s = opts.aimd.validate(); !s) return s;
  std::map<std::string, Config, std::less<>> next;
  for (auto& w : ips) {
    if (w.ip.empty() || w.ip.find('\0') != std::string::npos)
      return core::make_error("warm-up: invalid IP \"" + w.ip + "\"");
    if (w.schedule) {
      if (auto s = w.schedule->validate(); !s)
        return core::make_error("warm-up for " + w.ip + ": " + s.error().message);
    }
    std::string ip = w.ip;
    if (!next.emplace(ip, Config{std::move(w)}).second)
      return core::make_error("warm-up: IP " + ip + " configured twice");
  }
  std::lock_guard lock(impl_->mu);
  impl_->ips = std::move(next);
  impl_->policy = policy_of(opts.aimd);
  impl_->opts = std::move(opts);
  impl_->day_cache.reset();
  return core::Ok{};
}

Allowance Limiter::allowance(std::string_view ip, std::string_view provider, SysTime now) const {
  std::lock_guard lock(impl_->mu);
  Tick k = impl_->tick(now);
  const Config* c = impl_->config(ip);
  Lane l = impl_->lane_view(ip, provider, k);
  std::optional<Track> t;
  if (c && c->warming()) t = impl_->track_view(*c, provider, k);
  return impl_->compute(c, t ? &*t : nullptr, l, k, provider);
}

bool Limiter::try_take(std::string_view ip, std::string_view provider, SysTime now, uint64_t n) {
  std::lock_guard lock(impl_->mu);
  Tick k = impl_->tick(now);
  const Config* c = impl_->config(ip);
  Track* t = nullptr;
  if (c && c->warming()) {
    // Check on a copy first so a refusal leaves nothing dirty.
    Track tv = impl_->track_view(*c, provider, k);
    Lane lv = impl_->lane_view(ip, provider, k);
    if (impl_->compute(c, &tv, lv, k, provider).hour_allowance_left < n) return false;
    t = &impl_->track_ref(*c, provider, k);
  } else if (c && c->hourly(provider) > 0) {
    Lane lv = impl_->lane_view(ip, provider, k);
    if (impl_->compute(c, nullptr, lv, k, provider).hour_allowance_left < n) return false;
  }
  Lane& l = impl_->lane_ref(ip, provider, k);
  if (t) t->sent_today += n;
  l.sent_today += n;
  l.sent_hour += n;
  return true;
}

void Limiter::give_back(std::string_view ip, std::string_view provider, SysTime taken_at,
                        uint64_t n) {
  std::lock_guard lock(impl_->mu);
  Tick k = impl_->tick(taken_at);
  const Config* c = impl_->config(ip);
  Lane& l = impl_->lane_ref(ip, provider, k);
  if (l.day == k.today) {
    uint64_t m = std::min(n, l.sent_today);
    l.sent_today -= m;
    if (l.slot == k.slot) l.sent_hour -= std::min(m, l.sent_hour);
  }
  if (c && c->warming()) {
    Track& t = impl_->track_ref(*c, provider, k);
    if (t.day != k.today) return;  // taken on an earlier day: that day is over
    uint64_t left = n;
    if (t.slot == k.slot) {
      // Taken this hour: it comes off this hour's count first.
      uint64_t m = std::min(left, t.sent_today - t.sent_before_slot);
      t.sent_today -= m;
      left -= m;
    }
    uint64_t m = std::min(left, t.sent_before_slot);
    t.sent_today -= m;
    t.sent_before_slot -= m;
  }
}

void Limiter::on_result(std::string_view ip, std::string_view provider, bool throttled,
                        SysTime now) {
  std::lock_guard lock(impl_->mu);
  Tick k = impl_->tick(now);
  Lane& l = impl_->lane_ref(ip, provider, k);
  impl_->aimd(l, throttled, k.now_ms);
  const Config* c = impl_->config(ip);
  if (!c || !c->warming()) return;
  Track& t = impl_->track_ref(*c, provider, k);
  DayInfo di = day_info(*c, t, k);
  if (throttled) {
    if (di.state != WarmupState::kInProgress) return;
    t.hold_open = true;
    t.last_throttle_day = k.today;
    t.reason = "held at day " + std::to_string(di.effective) + ": throttled by " +
               std::string(provider.empty() ? "?" : provider) + " at " +
               impl_->opts.time_zone.local_hhmm(now);
  } else if (t.hold_open && k.today > t.last_throttle_day) {
    t.hold_open = false;
    t.reason.clear();
  }
}

std::vector<IpStatus> Limiter::status(SysTime now) const {
  std::lock_guard lock(impl_->mu);
  const Impl& m = *impl_;
  Tick k = m.tick(now);
  std::set<std::string, std::less<>> all;
  for (auto& [ip, c] : m.ips) all.insert(ip);
  for (auto& [key, l] : m.lanes) all.emplace(ip_of(key));

  std::vector<IpStatus> out;
  for (const std::string& ip : all) {
    IpStatus s;
    s.ip = ip;
    const Config* c = m.config(ip);
    std::string lo = compose(ip, "");
    std::string hi = ip + std::string(1, '\1');
    for (auto it = m.lanes.lower_bound(lo); it != m.lanes.end() && it->first < hi; ++it) {
      std::string_view provider = provider_of(it->first);
      Lane l = m.lane_view(ip, provider, k);
      s.providers.push_back(m.provider_status(provider, l));
      s.sent_today += l.sent_today;
    }
    if (c && c->warming()) {
      const Schedule& sch = *c->w.schedule;
      s.schedule = sch.name;
      s.days = sch.days();
      auto fill = [&](const Track& t, const DayInfo& di, int& day, uint64_t& limit, bool& held,
                      uint32_t& held_days, std::string& reason) {
        day = di.effective;
        limit = di.state == WarmupState::kNotStarted ? 0 : sch.limit(di.effective);
        held = t.hold_open;
        held_days = t.held_days;
        reason = t.reason;
      };
      Track ip_track = m.track_view(*c, "", k);
      DayInfo di = day_info(*c, ip_track, k);
      s.calendar_day = di.calendar;
      if (!sch.per_provider) {
        fill(ip_track, di, s.day, s.daily_limit, s.held, s.held_days, s.status_reason);
        s.state = di.state;
      } else {
        // The IP-level fields follow its least advanced provider.
        s.day = di.calendar;
        s.state = di.state;
        s.daily_limit = di.state == WarmupState::kNotStarted ? 0 : sch.limit(di.calendar);
        bool first = true;
        for (auto& p : s.providers) {
          Track t = m.track_view(*c, p.provider, k);
          DayInfo pdi = day_info(*c, t, k);
          fill(t, pdi, p.day, p.daily_limit, p.held, p.held_days, p.status_reason);
          if (first || pdi.effective < s.day) {
            s.day = pdi.effective;
            s.state = pdi.state;
            s.daily_limit = p.daily_limit;
          }
          first = false;
          s.held = s.held || p.held;
          s.held_days = std::max(s.held_days, p.held_days);
          if (s.status_reason.empty() && !p.status_reason.empty())
            s.status_reason = p.provider + ": " + p.status_reason;
        }
      }
      switch (s.state) {
        case WarmupState::kNotStarted:
          s.percent = 0;
          break;
        case WarmupState::kDone:
          s.percent = 100;
          break;
        default:
          s.percent = std::clamp((s.day - 1) * 100 / std::max(1, s.days), 0, 99);
          break;
      }
      s.warm_on = c->w.started.plus_days(s.days + static_cast<int64_t>(s.held_days));
    }
    out.push_back(std::move(s));
  }
  return out;
}

core::Status Limiter::load(const store::Store& store) {
  std::map<std::string, Track, std::less<>> tracks;
  std::map<std::string, Lane, std::less<>> lanes;
  size_t bad = 0;
  std::string from(kPrefix);
  std::string to = from;
  to.back() = static_cast<char>(to.back() + 1);
  auto s = store.scan(store::Cf::kMeta, from, to, [&](std::string_view key, std::string_view v) {
    key.remove_prefix(kPrefix.size());
    if (key.size() < 2 || key[1] != '/' || key.find('\0') == std::string_view::npos) {
      ++bad;
      return true;
    }
    std::string composed(key.substr(2));
    if (key[0] == 't') {
      if (auto t = decode_track(v))
        tracks[composed] = std::move(*t);
      else
        ++bad;
    } else if (key[0] == 'l') {
      if (auto l = decode_lane(v))
        lanes[composed] = *l;
      else
        ++bad;
    } else {
      ++bad;
    }
    return true;
  });
  if (!s) return core::make_error("warm-up counters: " + s.error().message);
  if (bad > 0) spdlog::warn("module=warmup event=load_skipped entries={} (malformed)", bad);
  std::lock_guard lock(impl_->mu);
  for (auto& [k, t] : tracks) impl_->tracks[k] = std::move(t);
  for (auto& [k, l] : lanes) impl_->lanes[k] = l;
  return core::Ok{};
}

core::Status Limiter::flush(store::Store& store) {
  store::Batch batch;
  std::vector<std::string> keys;
  {
    std::lock_guard lock(impl_->mu);
    for (const std::string& d : impl_->dirty) {
      std::string_view composed = std::string_view(d).substr(1);
      std::string key = std::string(kPrefix) + d[0] + "/" + std::string(composed);
      if (d[0] == 't') {
        auto it = impl_->tracks.find(composed);
        if (it != impl_->tracks.end()) batch.put(store::Cf::kMeta, key, encode(it->second));
      } else {
        auto it = impl_->lanes.find(composed);
        if (it != impl_->lanes.end()) batch.put(store::Cf::kMeta, key, encode(it->second));
      }
      keys.push_back(d);
    }
    impl_->dirty.clear();
  }
  if (batch.empty()) return core::Ok{};
  // Without fsync: see the header (at most the last second is at risk, and
  // only on a power loss before the next synced spool commit).
  std::promise<core::Status> done;
  auto f = done.get_future();
  store.commit(
      std::move(batch), [&done](core::Status s) { done.set_value(std::move(s)); }, false);
  core::Status s = f.get();
  if (!s) {
    std::lock_guard lock(impl_->mu);
    for (auto& k : keys) impl_->dirty.insert(std::move(k));
    return core::make_error("warm-up counters not saved: " + s.error().message);
  }
  return core::Ok{};
}

size_t Limiter::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->dirty.size();
}

}  // namespace mta::warmup
