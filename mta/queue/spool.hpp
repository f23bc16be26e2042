// Spool: the queue module's durable store of accepted mail, and the sole
// owner of envelope state.
//
// A message is one metadata record, one body and one envelope per
// recipient, plus one schedule (due index) entry per envelope. accept()
// writes all of them in a single synced batch: the message is invisible
// until the batch is on disk, and then it is complete. Intake (SMTP, HTTP)
// answers only after accept()'s callback reports success.
//
// Keys (see store.hpp for the column families):
//   messages  : id(16)                    -> MessageRecord
//   bodies    : id(16)                    -> message bytes as they will be sent
//   envelopes : id(16) rcpt(u32)          -> EnvelopeRecord
//   schedule  : class(1) due_ms(u64) id(16) rcpt(u32) -> ScheduleEntry
// class 'n' holds first attempts, 'r' retries, so the scheduler can take
// turns between them (scheduler.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mta/core/id.hpp"
#include "mta/core/result.hpp"

namespace mta::store {
class Batch;
class Store;
}  // namespace mta::store

namespace mta::queue {

struct Message {
  core::MessageId id;
  int64_t received_ms = 0;  // Unix ms
  std::string mail_from;    // "" for <>
  std::vector<std::string> recipients;
  std::string configuration_set;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string client_ip;
  std::string auth_user;
  std::string protocol;  // "smtp" | "http"
  uint64_t size = 0;     // body bytes
  bool eight_bit = false;
  // The header fields of the stored message (name, unfolded value), up to
  // kMaxHeaderBytes, for events (SES's mail.headers / commonHeaders).
  std::vector<std::pair<std::string, std::string>> headers;
  bool headers_truncated = false;
  // SES's ListManagementOptions (X-SES-LIST-MANAGEMENT-OPTIONS header or the
  // HTTP field): the contact list and topic the message is sent for. A
  // recipient who unsubscribed from them is not sent to.
  std::string list_name;
  std::string list_topic;
};

inline constexpr size_t kMaxHeaderBytes = 10 * 1024;

enum class EnvelopeState : uint8_t { kQueued = 0, kDelivered, kBounced, kExpired };
const char* to_string(EnvelopeState s);

struct Envelope {
  std::string recipient;
  EnvelopeState state = EnvelopeState::kQueued;
  uint32_t attempts = 0;
  int64_t next_attempt_ms = 0;
  std::string last_reply;
  // Time spent waiting for warm-up room (not counted toward max_age).
  int64_t waited_ms = 0;
};

std::string encode(const Message& m);
std::optional<Message> decode_message(std::string_view id_key, std::string_view bytes);
std::string encode(const Envelope& e);
std::optional<Envelope> decode_envelope(std::string_view bytes);

// The due index's value: enough to form a delivery job without reading the
// envelope.
struct ScheduleEntry {
  std::string recipient;
  uint32_t attempts = 0;
  int64_t waited_ms = 0;  // Envelope::waited_ms
};
std::string encode(const ScheduleEntry& e);
std::optional<ScheduleEntry> decode_schedule_entry(std::string_view bytes);

inline constexpr char kClassNew = 'n';
inline constexpr char kClassRetry = 'r';
std::string schedule_key(char cls, int64_t due_ms, const core::MessageId& id, uint32_t rcpt);
// The inverse of schedule_key() (read side: the admin API's queue summary);
// nullopt for a malformed key.
struct ScheduleKey {
  char cls = kClassNew;
  int64_t due_ms = 0;
  core::MessageId id;
  uint32_t rcpt = 0;
};
std::optional<ScheduleKey> parse_schedule_key(std::string_view key);
std::string envelope_key(const core::MessageId& id, uint32_t rcpt);
// [from, to) of every key of `id` in an id-prefixed column family.
std::pair<std::string, std::string> id_range(const core::MessageId& id);

class Spool final {
 public:
  using Done = std::function<void(core::Status)>;

  // Counts what is already spooled (for the mta_spool_messages gauge).
  static core::Result<std::unique_ptr<Spool>> open(store::Store& store);

  // Durably stores a new message; `done` runs on the store's commit thread.
  // After a successful commit, the on_accepted hook (if set) gets the
  // message first, so the scheduler can start delivering it without reading
  // it back.
  void accept(Message message, std::string body, Done done);
  // Adds to the acceptance batch whatever must be written with it (the
  // Send event).
  using BatchHook = std::function<void(const Message&, store::Batch&)>;
  // Like accept(), and `extra` adds the caller's own records to the same
  // batch (the HTTP API's idempotency key), so both are stored or neither.
  void accept(Message message, std::string body, Done done, const BatchHook& extra);
  using AcceptedHook = std::function<void(std::shared_ptr<const Message>)>;
  void set_accepted_hook(AcceptedHook hook) { on_accepted_ = std::move(hook); }
  void set_batch_hook(BatchHook hook) { on_batch_ = std::move(hook); }
  // The scheduler reports messages it finished (deleted from the spool).
  void message_removed();

  uint64_t message_count() const { return count_.load(); }

  // Read side, for the CLI and the admin API.
  static core::Status list(const store::Store& store,
                           const std::function<bool(const Message&)>& fn);
  static core::Result<std::optional<Message>> find(const store::Store& store,
                                                   const core::MessageId& id);
  static core::Result<std::optional<std::string>> body(const store::Store& store,
                                                       const core::MessageId& id);
  static core::Status envelopes(const store::Store& store, const core::MessageId& id,
                                const std::function<void(uint32_t, const Envelope&)>& fn);

 private:
  explicit Spool(store::Store& store, uint64_t count);
  store::Store& store_;
  std::atomic<uint64_t> count_;
  AcceptedHook on_accepted_;
  BatchHook on_batch_;
};

}  // namespace mta::queue
