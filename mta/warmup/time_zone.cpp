#include "mta/warmup/time_zone.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

namespace mta::warmup {

namespace {

using std::chrono::seconds;
constexpr int64_t kDay = 86400;
constexpr int64_t kMaxOffset = 26 * 3600;  // generous: real zones stay within +-15h

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t days_from_civil(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

std::chrono::year_month_day civil(int64_t days) {
  using namespace std::chrono;
  return year_month_day{sys_days{std::chrono::days{days}}};
}

bool is_leap(int y) {
  return std::chrono::year{y}.is_leap();
}

unsigned month_length(int y, unsigned m) {
  using namespace std::chrono;
  return static_cast<unsigned>(
      unsigned{year_month_day_last{year{y}, month_day_last{month{m}}}.day()});
}

int64_t to_secs(SysTime t) {
  return std::chrono::floor<seconds>(t.time_since_epoch()).count();
}

SysTime from_secs(int64_t s) {
  return SysTime{} + seconds(s);
}

// ---- POSIX TZ rules (the TZif footer), as in RFC 8536 section 3.3 ----

struct RuleDate {
  enum class Kind { kJulian1, kJulian0, kMonthWeekDay } kind = Kind::kMonthWeekDay;
  int n = 0;  // J: 1..365; plain: 0..365
  int month = 0, week = 0, weekday = 0;
  int64_t time = 2 * 3600;  // seconds after local midnight, may be negative or > 24h

  // Local seconds (since the epoch, as if UTC) of this rule in `year`.
  int64_t local_secs(int year) const {
    int64_t jan1 = days_from_civil(year, 1, 1);
    int64_t day = 0;
    switch (kind) {
      case Kind::kJulian1:
        day = jan1 + n - 1 + ((is_leap(year) && n >= 60) ? 1 : 0);
        break;
      case Kind::kJulian0:
        day = jan1 + n;
        break;
      case Kind::kMonthWeekDay: {
        int64_t first = days_from_civil(year, static_cast<unsigned>(month), 1);
        // 1970-01-01 was a Thursday (4).
        int wd_first = static_cast<int>(((first % 7) + 7 + 4) % 7);
        int dom = 1 + (weekday - wd_first + 7) % 7 + (week - 1) * 7;
        int len = static_cast<int>(month_length(year, static_cast<unsigned>(month)));
        while (dom > len) dom -= 7;
        day = first + dom - 1;
        break;
      }
    }
    return day * kDay + time;
  }
};

struct PosixRule {
  int64_t std_off = 0;  // east of UTC, seconds
  bool has_dst = false;
  int64_t dst_off = 0;
  RuleDate start, end;

  int64_t offset_at(int64_t t) const {
    if (!has_dst) return std_off;
    // The year by local standard time; each year's two transitions are
    // computed in it (southern zones have DST around its new year).
    int y = static_cast<int>(civil(floor_div(t + std_off, kDay)).year());
    // The start rule is in local standard time, the end rule in local DST.
    int64_t s = start.local_secs(y) - std_off;
    int64_t e = end.local_secs(y) - dst_off;
    bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? dst_off : std_off;
  }
};

class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  std::optional<PosixRule> parse() {
    PosixRule r;
    if (!name()) return std::nullopt;
    auto off = hms(false);
    if (!off) return std::nullopt;
    r.std_off = -*off;  // POSIX offsets are west of UTC
    if (done()) return r;
    if (!name()) return std::nullopt;
    r.has_dst = true;
    r.dst_off = r.std_off + 3600;
    if (!done() && peek() != ',') {
      auto d = hms(false);
      if (!d) return std::nullopt;
      r.dst_off = -*d;
    }
    if (done()) {
      // No rule: POSIX leaves it implementation-defined; use the US rule as
      // glibc and tzcode do.
      r.start = {RuleDate::Kind::kMonthWeekDay, 0, 3, 2, 0, 2 * 3600};
      r.end = {RuleDate::Kind::kMonthWeekDay, 0, 11, 1, 0, 2 * 3600};
      return r;
    }
    if (!eat(',')) return std::nullopt;
    auto a = date();
    if (!a || !eat(',')) return std::nullopt;
    auto b = date();
    if (!b || !done()) return std::nullopt;
    r.start = *a;
    r.end = *b;
    return r;
  }

 private:
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }
  bool name() {
    if (eat('<')) {
      size_t close = s_.find('>', i_);
      if (close == std::string_view::npos || close - i_ < 3) return false;
      i_ = close + 1;
      return true;
    }
    size_t b = i_;
    while (!done() && ((peek() >= 'a' && peek() <= 'z') || (peek() >= 'A' && peek() <= 'Z'))) ++i_;
    return i_ - b >= 3;
  }
  std::optional<int> number(int max_digits) {
    size_t b = i_;
    int v = 0;
    while (!done() && peek() >= '0' && peek() <= '9' && static_cast<int>(i_ - b) < max_digits) {
      v = v * 10 + (peek() - '0');
      ++i_;
    }
    if (i_ == b) return std::nullopt;
    return v;
  }
  // [+-]hh[:mm[:ss]]; hours up to 24 (offsets) or 167 (rule times).
  std::optional<int64_t> hms(bool rule_time) {
    int sign = 1;
    if (eat('-'))
      sign = -1;
    else
      eat('+');
    auto h = number(3);
    if (!h || *h > (rule_time ? 167 : 24)) return std::nullopt;
    int64_t v = *h * 3600;
    if (eat(':')) {
      auto m = number(2);
      if (!m || *m > 59) return std::nullopt;
      v += *m * 60;
      if (eat(':')) {
        auto sec = number(2);
        if (!sec || *sec > 59) return std::nullopt;
        v += *sec;
      }
    }
    return sign * v;
  }
  std::optional<RuleDate> date() {
    RuleDate d;
    if (eat('J')) {
      auto n = number(3);
      if (!n || *n < 1 || *n > 365) return std::nullopt;
      d.kind = RuleDate::Kind::kJulian1;
      d.n = *n;
    } else if (eat('M')) {
      auto m = number(2);
      if (!m || *m < 1 || *m > 12 || !eat('.')) return std::nullopt;
      auto w = number(1);
      if (!w || *w < 1 || *w > 5 || !eat('.')) return std::nullopt;
      auto wd = number(1);
      if (!wd || *wd > 6) return std::nullopt;
      d.kind = RuleDate::Kind::kMonthWeekDay;
      d.month = *m;
      d.week = *w;
      d.weekday = *wd;
    } else {
      auto n = number(3);
      if (!n || *n > 365) return std::nullopt;
      d.kind = RuleDate::Kind::kJulian0;
      d.n = *n;
    }
    if (eat('/')) {
      auto t = hms(true);
      if (!t) return std::nullopt;
      d.time = *t;
    }
    return d;
  }

  std::string_view s_;
  size_t i_ = 0;
};

// Parses "+02:00", "-05:30", "+0530", "+02" into seconds east of UTC.
std::optional<int64_t> parse_fixed_offset(std::string_view s) {
  if (s.size() < 3 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  int sign = s[0] == '-' ? -1 : 1;
  std::string_view rest = s.substr(1);
  auto digits = [](std::string_view d, int& out) {
    if (d.size() != 2 || d[0] < '0' || d[0] > '9' || d[1] < '0' || d[1] > '9') return false;
    out = (d[0] - '0') * 10 + (d[1] - '0');
    return true;
  };
  int h = 0, m = 0;
  if (rest.size() == 2) {
    if (!digits(rest, h)) return std::nullopt;
  } else if (rest.size() == 4) {
    if (!digits(rest.substr(0, 2), h) || !digits(rest.substr(2), m)) return std::nullopt;
  } else if (rest.size() == 5 && rest[2] == ':') {
    if (!digits(rest.substr(0, 2), h) || !digits(rest.substr(3), m)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (h > 23 || m > 59) return std::nullopt;
  return sign * (h * 3600 + m * 60);
}

std::string format_offset(int64_t off) {
  char buf[16];
  int64_t a = off < 0 ? -off : off;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", off < 0 ? '-' : '+', static_cast<int>(a / 3600),
                static_cast<int>((a % 3600) / 60));
  return buf;
}

bool valid_zone_name(std::string_view n) {
  if (n.empty() || n.size() > 255 || n.front() == '/' || n.front() == '.') return false;
  if (n.find("..") != std::string_view::npos) return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '/' || c == '_' || c == '-' || c == '+';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// ---- Date ----

core::Result<Date> Date::from_ymd(int year, unsigned month, unsigned day) {
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year{year}, std::chrono::month{month}, std::chrono::day{day}};
  if (year < 1900 || year > 9999 || !ymd.ok())
    return core::make_error("invalid date " + std::to_string(year) + "-" + std::to_string(month) +
                            "-" + std::to_string(day));
  return Date(sys_days{ymd}.time_since_epoch().count());
}

core::Result<Date> Date::parse(std::string_view s) {
  auto bad = [&] {
    return core::make_error("invalid date \"" + std::string(s) + "\": want YYYY-MM-DD");
  };
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return bad();
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (s[i] < '0' || s[i] > '9') return bad();
  int y = 0;
  unsigned m = 0, d = 0;
  std::from_chars(s.data(), s.data() + 4, y);
  std::from_chars(s.data() + 5, s.data() + 7, m);
  std::from_chars(s.data() + 8, s.data() + 10, d);
  auto r = from_ymd(y, m, d);
  if (!r) return core::make_error("invalid date \"" + std::string(s) + "\": no such day");
  return r;
}

int Date::year() const {
  return static_cast<int>(civil(days_).year());
}
unsigned Date::month() const {
  return static_cast<unsigned>(civil(days_).month());
}
unsigned Date::day() const {
  return static_cast<unsigned>(civil(days_).day());
}

std::string Date::to_string() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", year(), month(), day());
  return buf;
}

// ---- LocalDay ----

uint32_t LocalDay::hours() const {
  auto len = std::chrono::duration_cast<seconds>(end - start).count();
  if (len <= 0) return 1;
  return static_cast<uint32_t>((len + 3599) / 3600);
}

uint32_t LocalDay::hour_of(SysTime t) const {
  if (t <= start) return 0;
  auto h = static_cast<uint32_t>(std::chrono::duration_cast<seconds>(t - start).count() / 3600);
  return std::min(h, hours() - 1);
}

SysTime LocalDay::hour_end(uint32_t slot) const {
  SysTime e = start + std::chrono::hours(slot + 1);
  return std::min(e, end);
}

// ---- TimeZone ----

struct TimeZone::Rules {
  std::string name;
  // Transitions: at trans[i] (UTC seconds) the offset becomes offs[idx[i]].
  std::vector<int64_t> trans;
  std::vector<uint8_t> idx;
  std::vector<int64_t> offs;  // at least one; offs[0] applies before the first transition
  std::optional<PosixRule> footer;

  int64_t offset_at(int64_t t) const {
    if (trans.empty() || t < trans.front()) {
      if (trans.empty() && footer) return footer->offset_at(t);
      return offs.front();
    }
    if (footer && t >= trans.back()) return footer->offset_at(t);
    auto it = std::upper_bound(trans.begin(), trans.end(), t);
    size_t i = static_cast<size_t>(it - trans.begin()) - 1;
    return offs[idx[i]];
  }
};

TimeZone::TimeZone() {
  static const auto kUtc = [] {
    auto r = std::make_shared<Rules>();
    r->name = "UTC";
    r->offs = {0};
    return std::shared_ptr<const Rules>(r);
  }();
  rules_ = kUtc;
}

core::Result<TimeZone> TimeZone::fixed(std::chrono::seconds utc_offset) {
  if (utc_offset.count() <= -kDay || utc_offset.count() >= kDay)
    return core::make_error("time zone offset out of range (at most 23:59)");
  if (utc_offset.count() == 0) return TimeZone();
  auto r = std::make_shared<Rules>();
  r->name = format_offset(utc_offset.count());
  r->offs = {utc_offset.count()};
  return TimeZone(std::move(r));
}

core::Result<TimeZone> TimeZone::from_posix(std::string_view rule) {
  auto p = PosixParser(rule).parse();
  if (!p) return core::make_error("invalid POSIX TZ rule \"" + std::string(rule) + "\"");
  auto r = std::make_shared<Rules>();
  r->name = std::string(rule);
  r->offs = {p->std_off};
  r->footer = *p;
  return TimeZone(std::move(r));
}

core::Result<TimeZone> TimeZone::from_tzif(std::string name, std::string_view b) {
  auto bad = [&](const char* what) {
    return core::make_error("time zone \"" + name + "\": bad TZif file: " + what);
  };
  auto u32 = [&](size_t at) {
    return (static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 24) |
           (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 16) |
           (static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 8) |
           static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3]));
  };
  struct Header {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
    size_t data_len(size_t time_size) const {
      return timecnt * time_size + timecnt + typecnt * 6ull + charcnt + leapcnt * (time_size + 4) +
             isstdcnt + isutcnt;
    }
  };
  auto header = [&](size_t at, Header& h) {
    if (b.size() < at + 44 || b.substr(at, 4) != "TZif") return false;
    h = {u32(at + 20), u32(at + 24), u32(at + 28), u32(at + 32), u32(at + 36), u32(at + 40)};
    // Sanity bounds (RFC 8536 3.1): keep sizes small enough not to overflow.
    return h.timecnt < 100000 && h.typecnt >= 1 && h.typecnt <= 256 && h.charcnt < 100000 &&
           h.leapcnt < 100000 && (h.isutcnt == 0 || h.isutcnt == h.typecnt) &&
           (h.isstdcnt == 0 || h.isstdcnt == h.typecnt);
  };

  Header h1{};
  if (!header(0, h1)) return bad("no TZif header");
  char version = b[4];
  size_t at = 44;
  size_t time_size = 4;
  Header h = h1;
  if (version >= '2') {
    at = 44 + h1.data_len(4);
    if (!header(at, h)) return bad("no second (64-bit) header");
    at += 44;
    time_size = 8;
  }
  if (b.size() < at + h.data_len(time_size)) return bad("truncated");
  if (h.leapcnt != 0) return bad("leap-second files (right/...) are not supported");

  auto r = std::make_shared<Rules>();
  r->name = name;
  r->trans.reserve(h.timecnt);
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    int64_t t;
    if (time_size == 8)
      t = static_cast<int64_t>((static_cast<uint64_t>(u32(at)) << 32) | u32(at + 4));
    else
      t = static_cast<int32_t>(u32(at));
    if (!r->trans.empty() && t <= r->trans.back()) return bad("transitions out of order");
    r->trans.push_back(t);
    at += time_size;
  }
  for (uint32_t i = 0; i < h.timecnt; ++i) {
    uint8_t x = static_cast<uint8_t>(b[at++]);
    if (x >= h.typecnt) return bad("transition type out of range");
    r->idx.push_back(x);
  }
  for (uint32_t i = 0; i < h.typecnt; ++i) {
    int64_t off = static_cast<int32_t>(u32(at));
    if (off <= -kMaxOffset || off >= kMaxOffset) return bad("UTC offset out of range");
    r->offs.push_back(off);
    at += 6;
  }
  at += h.charcnt + h.leapcnt * (time_size + 4) + h.isstdcnt + h.isutcnt;

  if (version >= '2' && at < b.size()) {
    // Footer: "\n<POSIX TZ>\n"; empty means "no rule after the last transition".
    if (b[at] != '\n') return bad("footer");
    size_t nl = b.find('\n', at + 1);
    if (nl == std::string_view::npos) return bad("footer not terminated");
    std::string_view tz = b.substr(at + 1, nl - at - 1);
    if (!tz.empty()) {
      auto p = PosixParser(tz).parse();
      if (!p) return bad("footer rule not understood");
      r->footer = *p;
    }
  }
  return TimeZone(std::move(r));
}

core::Result<TimeZone> TimeZone::parse(std::string_view spec, const std::string& zoneinfo_dir) {
  if (spec == "UTC" || spec == "utc" || spec == "Z" || spec == "GMT") return TimeZone();
  if (!spec.empty() && (spec[0] == '+' || spec[0] == '-')) {
    auto off = parse_fixed_offset(spec);
    if (!off)
      return core::make_error("invalid UTC offset \"" + std::string(spec) +
                              "\": want +HH:MM or -HH:MM");
    return fixed(seconds(*off));
  }
  if (!valid_zone_name(spec))
    return core::make_error("invalid time zone \"" + std::string(spec) +
                            "\": want UTC, +HH:MM or an IANA name like Europe/Berlin");
  std::string path = zoneinfo_dir + "/" + std::string(spec);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return core::make_error("unknown time zone \"" + std::string(spec) + "\" (no " + path + ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string bytes = ss.str();
  if (bytes.size() > (1u << 20))
    return core::make_error("time zone \"" + std::string(spec) + "\": file too large");
  return from_tzif(std::string(spec), bytes);
}

const std::string& TimeZone::name() const {
  return rules_->name;
}

std::chrono::seconds TimeZone::utc_offset(SysTime t) const {
  return seconds(rules_->offset_at(to_secs(t)));
}

Date TimeZone::local_date(SysTime t) const {
  int64_t s = to_secs(t);
  return Date::from_days(floor_div(s + rules_->offset_at(s), kDay));
}

SysTime TimeZone::day_start(Date d) const {
  // The earliest instant whose local date is d or later: binary search over
  // the window that must contain it (offsets stay within +-26h). Local dates
  // only move forward at transitions in every real zone, so this finds the
  // local midnight, or the end of a DST gap that skipped it.
  int64_t local_midnight = d.days() * kDay;
  int64_t lo = local_midnight - kMaxOffset;  // local date < d here
  int64_t hi = local_midnight + kMaxOffset;  // local date >= d here
  while (lo + 1 < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    int64_t ld = floor_div(mid + rules_->offset_at(mid), kDay);
    if (ld >= d.days())
      hi = mid;
    else
      lo = mid;
  }
  return from_secs(hi);
}

LocalDay TimeZone::local_day(SysTime t) const {
  Date d = local_date(t);
  return LocalDay{d, day_start(d), day_start(d.plus_days(1))};
}

std::string TimeZone::local_hhmm(SysTime t) const {
  int64_t s = to_secs(t);
  int64_t local = s + rules_->offset_at(s);
  int64_t sod = local - floor_div(local, kDay) * kDay;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(sod / 3600),
                static_cast<int>((sod % 3600) / 60));
  return buf;
}

}  // namespace mta::warmup
