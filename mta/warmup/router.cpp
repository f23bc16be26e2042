#include "mta/warmup/router.hpp"

#include <algorithm>
#include <cmath>

namespace mta::warmup {

namespace {
constexpr int64_t kMaxWeight = 1'000'000'000;  // keeps the scores far from overflow
}  // namespace

core::Result<Overflow> Overflow::parse(std::string_view s) {
  if (s == "defer") return Overflow{};
  constexpr std::string_view kPool = "pool:";
  if (s.substr(0, kPool.size()) == kPool && s.size() > kPool.size())
    return Overflow{Kind::kPool, std::string(s.substr(kPool.size()))};
  return core::make_error("invalid overflow \"" + std::string(s) + "\": want defer or pool:NAME");
}

std::string Overflow::to_string() const {
  return kind == Kind::kDefer ? "defer" : "pool:" + pool;
}

Pick Router::pick(const std::vector<Candidate>& ips, std::string_view provider, SysTime now) {
  std::lock_guard lock(mu_);
  auto it = scores_.find(provider);
  if (it == scores_.end())
    it = scores_.emplace(std::string(provider), decltype(it->second){}).first;
  auto& scores = it->second;

  struct Eligible {
    const Candidate* c;
    int64_t weight;
    Allowance a;
  };
  std::vector<Eligible> el;
  el.reserve(ips.size());
  SysTime earliest = SysTime::max();
  for (const Candidate& c : ips) {
    Allowance a = limiter_.allowance(c.ip, provider, now);
    if (!a.room_now) {
      earliest = std::min(earliest, a.next_room);
      continue;
    }
    // A warm IP without a ceiling weighs its weight scaled by its backoff
    // multiplier, so an IP being throttled by this provider gets less.
    uint64_t w = a.hour_allowance_left == kUnlimited
                     ? static_cast<uint64_t>(static_cast<double>(c.weight.value_or(kWarmWeight)) *
                                             a.multiplier)
                     : a.hour_allowance_left;
    el.push_back({&c,
                  std::clamp<int64_t>(static_cast<int64_t>(std::min<uint64_t>(w, kMaxWeight)), 1,
                                      kMaxWeight),
                  a});
  }

  // Warming IPs first while they are behind their pace (the hour's cap
  // spread evenly over the hour), so a warming IP gets the volume it needs
  // to build a reputation even when traffic is light, and never more than
  // its pace when traffic is heavy. Then warm IPs; warming IPs ahead of
  // their pace only when no warm IP has room.
  auto behind = [&](const Eligible& e) {
    const Allowance& a = e.a;
    if (!a.warming || a.hour_end <= a.hour_start) return false;
    double frac = std::chrono::duration<double>(now - a.hour_start).count() /
                  std::chrono::duration<double>(a.hour_end - a.hour_start).count();
    frac = std::clamp(frac, 0.0, 1.0);
    auto due = static_cast<uint64_t>(std::ceil(static_cast<double>(a.hour_limit) * frac));
    return a.sent_this_hour < std::max<uint64_t>(due, 1);
  };
  // el is reordered so the preferred tier comes first; `tier` is its size.
  auto split = std::stable_partition(el.begin(), el.end(), behind);
  if (split == el.begin())
    split =
        std::stable_partition(el.begin(), el.end(), [](const Eligible& e) { return !e.a.warming; });
  size_t tier = split == el.begin() ? el.size() : static_cast<size_t>(split - el.begin());

  while (!el.empty()) {
    int64_t total = 0;
    size_t best = 0;
    int64_t best_score = 0;
    for (size_t i = 0; i < tier; ++i) {
      int64_t& s = scores[el[i].c->ip];
      s += el[i].weight;
      total += el[i].weight;
      if (i == 0 || s > best_score) {
        best = i;
        best_score = s;
      }
    }
    scores[el[best].c->ip] -= total;
    if (limiter_.try_take(el[best].c->ip, provider, now)) {
      return Pick{el[best].c->ip, now, el[best].a};
    }
    // Another thread took its last unit between the question and the take.
    Allowance a = limiter_.allowance(el[best].c->ip, provider, now);
    earliest = std::min(earliest, a.room_now ? now : a.next_room);
    el.erase(el.begin() + static_cast<std::ptrdiff_t>(best));
    if (--tier == 0) tier = el.size();
  }
  return Pick{std::nullopt, earliest, {}};
}

}  // namespace mta::warmup
