// Webhook queues: the durable per-destination queues of events waiting to
// be POSTed, and the dead letters, in the store's `webhooks` column family.
//
//   'q' len(u8) destination seq(16)    -> QueueRecord
//   'd' len(u8) destination event(16)  -> DeadRecord
//   'c'                                -> the fan-out cursor: the last outbox
//                                         key fanned out (16 bytes)
//
// `seq` is time-ordered: the outbox key of the event when the publisher
// fans it out (outbox keys increase in commit order, see
// store::Batch::put_sequenced), a fresh id when a dead letter is replayed.
// A queue is published in key order, so a message's events reach a
// destination in the order they were written. The length byte keeps the
// key ranges of two destinations apart ("a" vs "ab").
//
// The read functions work on a read-only store (the CLI while the daemon
// runs); replay_dead() needs the writable one (the daemon's, through
// Publisher::replay, or the CLI's with the daemon stopped).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/config/config.hpp"
#include "mta/core/result.hpp"

namespace mta::store {
class Store;
}

namespace mta::webhook {

struct QueueRecord {
  std::string event_id;  // 16 bytes: the outbox key (X-MTA-Event-Id in hex)
  config::EventType type = config::EventType::kSend;
  std::string message_id;  // hex, mail.messageId
  int64_t queued_ms = 0;   // when it entered the queue: the retry window starts here
  std::string body;        // the JSON POSTed
};

struct DeadRecord {
  QueueRecord event;
  int64_t dead_ms = 0;
  uint32_t attempts = 0;
  std::string last_error;
};

std::string encode(const QueueRecord& r);
std::optional<QueueRecord> decode_queue_record(std::string_view bytes);
std::string encode(const DeadRecord& r);
std::optional<DeadRecord> decode_dead_record(std::string_view bytes);

inline constexpr std::string_view kCursorKey = "c";
std::string queue_prefix(std::string_view destination);
std::string queue_key(std::string_view destination, std::string_view seq);
std::string dead_prefix(std::string_view destination);
std::string dead_key(std::string_view destination, std::string_view event_id);
// The first key after every key starting with `prefix`.
std::string prefix_end(std::string prefix);
// The destination named in a 'q' or 'd' key; empty when malformed.
std::string destination_of(std::string_view key);

// A dead letter as `mta events dead` and the admin API show it.
struct DeadLetter {
  std::string destination;
  std::string event_id;    // hex
  std::string event_type;  // SES eventType ("Delivery")
  std::string message_id;  // hex
  std::string last_error;
  int64_t queued_ms = 0;
  int64_t dead_ms = 0;
  uint32_t attempts = 0;
};

// Dead letters of `destination` (empty: every destination), oldest event
// first per destination, until `fn` returns false.
core::Status list_dead(const store::Store& s, std::string_view destination,
                       const std::function<bool(const DeadLetter&)>& fn);

core::Result<uint64_t> count_queue(const store::Store& s, std::string_view destination);
core::Result<uint64_t> count_dead(const store::Store& s, std::string_view destination);

struct ReplayResult {
  std::vector<std::string> replayed;   // event ids (hex) moved back to the queue
  std::vector<std::string> not_found;  // requested ids with no dead letter
};
// Moves dead letters of `destination` back to the end of its queue with a
// fresh retry window starting at `now_ms`: those in `ids` (hex event ids),
// or all of them when `ids` is empty. Ids that are not dead letters of
// that destination are reported, not an error.
core::Result<ReplayResult> replay_dead(store::Store& s, std::string_view destination,
                                       const std::vector<std::string>& ids, int64_t now_ms);

}  // namespace mta::webhook
