#include "mta/warmup/router.hpp"

#include <algorithm>

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
    uint64_t w = a.hour_allowance_left == kUnlimited ? c.weight.value_or(kWarmWeight)
                                                     : a.hour_allowance_left;
    el.push_back({&c,
                  std::clamp<int64_t>(static_cast<int64_t>(std::min<uint64_t>(w, kMaxWeight)), 1,
                                      kMaxWeight),
                  a});
  }

  while (!el.empty()) {
    int64_t total = 0;
    size_t best = 0;
    int64_t best_score = 0;
    for (size_t i = 0; i < el.size(); ++i) {
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
  }
  return Pick{std::nullopt, earliest, {}};
}

}  // namespace mta::warmup
