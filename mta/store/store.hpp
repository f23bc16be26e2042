// Store: the RocksDB spool database. The only code that includes
// <rocksdb/...>.
//
// Column families hold messages (metadata), bodies (large values, kept in
// blob files), envelopes (one per recipient), the schedule (due index),
// events (outbox), meta, the suppression list, the feedback records and the
// webhook queues. A
// Batch is one logical change across column families; commit() applies it
// atomically and durably (synced WAL).
//
// Group commit: commits are queued to one commit thread, which folds every
// batch waiting at that moment into a single RocksDB WriteBatch and writes
// it with sync=true, so N concurrent sessions share one fsync. Completion
// callbacks run on the commit thread: callers post back to their own
// executor. Never call commit_sync() from an I/O thread.
//
// A failed write (disk full, I/O error) fails every batch of its group and
// nothing of them is applied. The next group first asks RocksDB to resume
// from its background error, so the store heals once space is back.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"

namespace mta::store {

enum class Cf : uint8_t {
  kMessages,
  kBodies,
  kEnvelopes,
  kSchedule,
  kEvents,
  kMeta,
  kSuppression,
  kFeedback,  // per-message records for matching complaints (feedback/record.hpp)
  kWebhooks,  // per-destination webhook queues and dead letters (webhook/queue.hpp)
};
inline constexpr int kCfCount = 9;
const char* to_string(Cf cf);

class Batch {
 public:
  void put(Cf cf, std::string key, std::string value) {
    ops_.push_back({cf, false, std::move(key), std::move(value)});
  }
  void del(Cf cf, std::string key) { ops_.push_back({cf, true, std::move(key), {}}); }
  // Puts `value` under a key the commit thread assigns when it writes the
  // batch: a fresh 16-byte core::MessageId. The commit thread is the only
  // writer, so keys put this way increase in the order they become
  // visible: a reader that has seen key K has seen every such key below K
  // (the event outbox relies on it to keep a cursor).
  void put_sequenced(Cf cf, std::string value) {
    ops_.push_back({cf, false, {}, std::move(value), true});
  }
  bool empty() const { return ops_.empty(); }
  size_t bytes() const;

 private:
  friend class Store;
  struct Op {
    Cf cf;
    bool del;
    std::string key;
    std::string value;
    bool sequenced = false;  // key assigned at write time
  };
  std::vector<Op> ops_;
};

enum class Mode { kReadWrite, kReadOnly };

class Store final {
 public:
  using Done = std::function<void(core::Status)>;

  // Opens (creating if needed, in kReadWrite) the database in `dir`.
  // kReadOnly works while a daemon holds the database open; column
  // families a spool made by an older version lacks read as empty.
  static core::Result<std::unique_ptr<Store>> open(const std::string& dir, Mode mode);
  ~Store();  // drains pending commits, then closes the database cleanly
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Asynchronous commit; `done` runs on the commit thread. With sync (the
  // default) the batch is on disk when `done` runs. Without it, it is in the
  // OS's page cache: it survives the process being killed, not a power
  // loss. Delivery outcomes use that: losing one only causes a retry.
  void commit(Batch batch, Done done, bool sync = true);
  // Blocking commit for tools, tests and the webhook publisher's thread.
  core::Status commit_sync(Batch batch, bool sync = true);

  core::Result<std::optional<std::string>> get(Cf cf, std::string_view key) const;
  // Visits keys in [from, to) in order (to empty = to the end) until `fn`
  // returns false.
  core::Status scan(
      Cf cf, std::string_view from, std::string_view to,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Number of keys in [from, to) without reading values.
  core::Result<uint64_t> count(Cf cf, std::string_view from = {}, std::string_view to = {}) const;

  const std::string& dir() const { return dir_; }

 private:
  struct Impl;
  Store(std::string dir, std::unique_ptr<Impl> impl);
  std::string dir_;
  std::unique_ptr<Impl> impl_;
};

// Big-endian fixed-width integers, so keys sort like numbers.
void put_u32(std::string& out, uint32_t v);
void put_u64(std::string& out, uint64_t v);
uint32_t get_u32(std::string_view in);  // first 4 bytes
uint64_t get_u64(std::string_view in);  // first 8 bytes

}  // namespace mta::store
