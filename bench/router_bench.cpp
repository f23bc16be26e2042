// Router + limiter cost per message on one core: what the delivery engine
// does for every job (Router::pick, which asks the limiter for each
// candidate's allowance and takes a unit, then Limiter::on_result for the
// reply), over a pool of 4 IPs (2 warm, 2 warming with the standard
// schedule), 10 providers. Compare with the cost of an SMTP transaction
// (hundreds of microseconds of CPU): it should be negligible.
//
//   mta_router_bench [seconds]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mta/warmup/router.hpp"

using namespace mta::warmup;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  Limiter limiter;
  auto started = Date::from_days(std::chrono::duration_cast<std::chrono::days>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count() -
                                 44);  // day 45: 50,000/day, so the warming IPs keep room
  std::vector<IpWarmup> ips = {
      {"192.0.2.1", std::nullopt, Date{}, 0, {}},
      {"192.0.2.2", std::nullopt, Date{}, 0, {}},
      {"192.0.2.3", standard_schedule(), started, 0, {}},
      {"192.0.2.4", standard_schedule(), started, 0, {}},
  };
  if (auto s = limiter.configure(ips); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  Router router(limiter);
  std::vector<Candidate> pool;
  for (auto& ip : ips) pool.push_back({ip.ip, std::nullopt});
  const char* providers[] = {"gmail", "microsoft", "yahoo",  "icloud", "comcast",
                             "gmx",   "orange",    "yandex", "mailru", "other"};
  uint64_t n = 0, picked = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto deadline = t0 + std::chrono::duration<double>(seconds);
  auto now = std::chrono::system_clock::now();
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 1000; ++i, ++n) {
      const char* prov = providers[n % 10];
      Pick p = router.pick(pool, prov, now);
      if (p) {
        ++picked;
        limiter.on_result(*p.ip, prov, false, now);
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%llu picks in %.2f s: %.0f picks/s, %.2f us per message (%llu with room)\n",
              static_cast<unsigned long long>(n), secs, static_cast<double>(n) / secs,
              secs * 1e6 / static_cast<double>(n), static_cast<unsigned long long>(picked));
  return 0;
}
