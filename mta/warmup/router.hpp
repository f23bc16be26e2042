// Router: picks the source IP of a pool for one message to one provider.
//
// Among the candidates that have room now (Limiter::allowance), it runs a
// smooth weighted round-robin (nginx's upstream algorithm): every eligible IP
// adds its weight to a running score, the highest score wins (ties: the
// earlier candidate) and the winner's score drops by the sum of the weights.
// Tiers: warming IPs that are behind their pace within the hour (the hour's
// cap spread evenly over the hour: ceil(cap * elapsed fraction), at least 1)
// are picked first, weighted by what each may still send this hour; then
// warm IPs, weighted by Candidate::weight (or kWarmWeight) times their
// backoff multiplier; warming IPs ahead of their pace only when no warm IP
// has room. So a warming IP gets its whole allowance even when traffic is
// light (it needs the volume to build a reputation), gets it spread over
// the hour when traffic is heavy, and an IP a provider throttles gets a
// smaller share. There is no randomness: the same sequence of calls gives
// the same picks (Postal's RAND()*priority does not split as configured,
// postal#2209).
//
// pick() also takes the unit (Limiter::try_take), so two threads cannot both
// use the last unit of an hour; the caller gives it back
// (Limiter::give_back(ip, provider, taken_at)) when the message was not sent.
// When no candidate has room, the answer says when the earliest one will.
//
// Threads: thread-safe (one mutex for the scores; the limiter has its own).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/warmup/limiter.hpp"

namespace mta::warmup {

// Weight of a warm IP with no hourly ceiling and no configured weight: about
// the hourly cap of a warming IP near the end of the standard schedule
// (50,000/day ~ 2,100/hour), so warm IPs take most of the traffic and
// warming IPs get what their pacing allows.
inline constexpr uint64_t kWarmWeight = 2000;

struct Candidate {
  std::string ip;
  std::optional<uint64_t> weight;  // for warm IPs without a ceiling; > 0
};

struct Pick {
  std::optional<std::string> ip;  // chosen (one unit taken); nullopt: none has room
  SysTime next_room;              // when nullopt: the earliest time one will have room
  Allowance allowance;            // the chosen IP's, before the unit was taken
  explicit operator bool() const { return ip.has_value(); }
};

// What a pool does with mail when none of its IPs has room.
//   defer: keep it queued until an IP has room (queue::Fate::kPostponed with
//     delay = next_room - now).
//   pool:NAME: send it from pool NAME instead (one hop: that pool's own
//     overflow is not followed further, so pools cannot loop).
// Our choice for defer and max_age: waiting for warm-up room is not a
// failure: no attempt is counted, no DeliveryDelay is published, and the
// waiting time does not count toward max_age, except that a message that
// has waited for room longer than max_age in total expires (reason
// "warm-up: no room in pool P for longer than max_age"). So a burst that a
// warming pool absorbs over a few days is delivered with its full retry
// budget intact, and a pool that can never catch up does not hold mail
// forever.
struct Overflow {
  enum class Kind { kDefer, kPool };
  Kind kind = Kind::kDefer;
  std::string pool;  // kPool only
  // "defer" or "pool:NAME".
  static core::Result<Overflow> parse(std::string_view s);
  std::string to_string() const;
};

class Router final {
 public:
  explicit Router(Limiter& limiter) : limiter_(limiter) {}

  Pick pick(const std::vector<Candidate>& ips, std::string_view provider, SysTime now);

 private:
  Limiter& limiter_;
  std::mutex mu_;
  // Smooth weighted round-robin scores per provider and IP.
  std::map<std::string, std::map<std::string, int64_t, std::less<>>, std::less<>> scores_;
};

}  // namespace mta::warmup
