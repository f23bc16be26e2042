// Retry delays of a webhook event: exponential from 1 s (1, 2, 4, 8 ...
// after the 1st, 2nd, 3rd ... failure), capped, with jitter so that the
// events of an endpoint that failed together do not come back together.
#pragma once

#include <chrono>
#include <cstdint>

namespace mta::webhook {

inline constexpr std::chrono::milliseconds kFirstRetry{1000};
inline constexpr std::chrono::milliseconds kMaxRetry{5 * 60 * 1000};

// The wait after `failures` (>= 1) failures. `u` in [0, 1) picks the jitter:
// the result is in [d, 1.25 d) where d = min(kFirstRetry * 2^(failures-1), cap).
inline std::chrono::milliseconds backoff(uint32_t failures, double u,
                                         std::chrono::milliseconds cap = kMaxRetry) {
  int64_t d = kFirstRetry.count();
  for (uint32_t i = 1; i < failures && d < cap.count(); ++i) d *= 2;
  if (d > cap.count()) d = cap.count();
  if (u < 0) u = 0;
  if (u >= 1) u = 0.999999;
  return std::chrono::milliseconds(d + static_cast<int64_t>(u * static_cast<double>(d) / 4));
}

}  // namespace mta::webhook
