// Idempotency-Key: a request repeated with the same key (per API key)
// within 24 hours gets the first request's MessageId and queues nothing,
// also across restarts.
//
// A record is written in the same RocksDB batch as the message it names
// (Spool::accept's extra hook), so the message and its key are stored
// together or not at all. While a request holds a key (between claim() and
// release()), a concurrent request with the same key is told it is busy
// rather than queued twice. Records live in the meta column family:
//   idem/k/<key>                 -> created_ms(u64) message_id(hex)
//   idem/t/<created_ms(u64)><key> -> ""   (the expiry index trim() walks)
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "mta/core/result.hpp"

namespace mta::store {
class Batch;
class Store;
}  // namespace mta::store

namespace mta::api {

inline constexpr int64_t kIdempotencyTtlMs = 24LL * 3600 * 1000;

class Idempotency final {
 public:
  explicit Idempotency(store::Store& store) : store_(store) {}

  enum class State { kNew, kDone, kBusy };
  struct Claim {
    State state = State::kNew;
    std::string message_id;  // kDone
  };
  // kNew: the caller holds the key and must release() it once its batch
  // has committed or failed. Blocking (a RocksDB read): not on an I/O thread.
  core::Result<Claim> claim(const std::string& key, int64_t now_ms);
  void release(const std::string& key);

  static void record(store::Batch& b, const std::string& key, const std::string& message_id,
                     int64_t now_ms);
  // Deletes the records created before `cutoff_ms`; how many. Blocking.
  core::Result<uint64_t> trim(int64_t cutoff_ms);

 private:
  store::Store& store_;
  std::mutex mu_;
  std::set<std::string> busy_;
};

}  // namespace mta::api
