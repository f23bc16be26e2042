#include "mta/webhook/queue.hpp"

#include <set>

#include "mta/core/id.hpp"
#include "mta/store/store.hpp"

namespace mta::webhook {
namespace {

constexpr char kVersion = 1;
constexpr size_t kReplayChunk = 1000;  // entries per commit

void put_bytes(std::string& out, std::string_view s) {
  store::put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads the fields of a record in order; any overrun makes it bad.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  uint8_t u8() {
    if (!need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = store::get_u32(in_);
    in_.remove_prefix(4);
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = store::get_u64(in_);
    in_.remove_prefix(8);
    return v;
  }
  std::string bytes() {
    uint32_t n = u32();
    if (!need(n)) return {};
    std::string v(in_.substr(0, n));
    in_.remove_prefix(n);
    return v;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() < n) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  bool ok_ = true;
};

void put_queue_fields(std::string& out, const QueueRecord& r) {
  put_bytes(out, r.event_id);
  out.push_back(static_cast<char>(r.type));
  put_bytes(out, r.message_id);
  store::put_u64(out, static_cast<uint64_t>(r.queued_ms));
  put_bytes(out, r.body);
}

bool read_queue_fields(Reader& in, QueueRecord& r) {
  r.event_id = in.bytes();
  uint8_t type = in.u8();
  r.message_id = in.bytes();
  r.queued_ms = static_cast<int64_t>(in.u64());
  r.body = in.bytes();
  if (!in.ok() || r.event_id.size() != 16 || type >= config::kEventTypeCount) return false;
  r.type = static_cast<config::EventType>(type);
  return true;
}

std::string key_with(char kind, std::string_view destination, std::string_view id) {
  std::string k;
  k.push_back(kind);
  k.push_back(static_cast<char>(destination.size()));
  k.append(destination);
  k.append(id);
  return k;
}

DeadLetter view_of(std::string_view destination, const DeadRecord& d) {
  DeadLetter l;
  l.destination = std::string(destination);
  if (auto id = core::MessageId::from_key(d.event.event_id)) l.event_id = id->hex();
  l.event_type = config::ses_event_name(d.event.type);
  l.message_id = d.event.message_id;
  l.last_error = d.last_error;
  l.queued_ms = d.event.queued_ms;
  l.dead_ms = d.dead_ms;
  l.attempts = d.attempts;
  return l;
}

}  // namespace

std::string encode(const QueueRecord& r) {
  std::string out(1, kVersion);
  put_queue_fields(out, r);
  return out;
}

std::optional<QueueRecord> decode_queue_record(std::string_view bytes) {
  Reader in(bytes);
  QueueRecord r;
  if (in.u8() != kVersion || !read_queue_fields(in, r) || !in.done()) return std::nullopt;
  return r;
}

std::string encode(const DeadRecord& r) {
  std::string out(1, kVersion);
  put_queue_fields(out, r.event);
  store::put_u64(out, static_cast<uint64_t>(r.dead_ms));
  store::put_u32(out, r.attempts);
  put_bytes(out, r.last_error);
  return out;
}

std::optional<DeadRecord> decode_dead_record(std::string_view bytes) {
  Reader in(bytes);
  DeadRecord r;
  if (in.u8() != kVersion || !read_queue_fields(in, r.event)) return std::nullopt;
  r.dead_ms = static_cast<int64_t>(in.u64());
  r.attempts = in.u32();
  r.last_error = in.bytes();
  if (!in.done()) return std::nullopt;
  return r;
}

std::string queue_prefix(std::string_view destination) {
  return key_with('q', destination, {});
}
std::string queue_key(std::string_view destination, std::string_view seq) {
  return key_with('q', destination, seq);
}
std::string dead_prefix(std::string_view destination) {
  return key_with('d', destination, {});
}
std::string dead_key(std::string_view destination, std::string_view event_id) {
  return key_with('d', destination, event_id);
}

std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& c = prefix.back();
    if (static_cast<unsigned char>(c) != 0xff) {
      c = static_cast<char>(static_cast<unsigned char>(c) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;  // everything: no upper bound
}

std::string destination_of(std::string_view key) {
  if (key.size() < 2 || (key[0] != 'q' && key[0] != 'd')) return {};
  size_t n = static_cast<uint8_t>(key[1]);
  if (key.size() < 2 + n) return {};
  return std::string(key.substr(2, n));
}

core::Status list_dead(const store::Store& s, std::string_view destination,
                       const std::function<bool(const DeadLetter&)>& fn) {
  std::string from = destination.empty() ? std::string("d") : dead_prefix(destination);
  std::string to = prefix_end(from);
  return s.scan(store::Cf::kWebhooks, from, to, [&](std::string_view k, std::string_view v) {
    auto d = decode_dead_record(v);
    if (!d) return true;  // unreadable: skipped (a newer version's record)
    return fn(view_of(destination_of(k), *d));
  });
}

core::Result<uint64_t> count_queue(const store::Store& s, std::string_view destination) {
  auto from = queue_prefix(destination);
  return s.count(store::Cf::kWebhooks, from, prefix_end(from));
}

core::Result<uint64_t> count_dead(const store::Store& s, std::string_view destination) {
  auto from = dead_prefix(destination);
  return s.count(store::Cf::kWebhooks, from, prefix_end(from));
}

core::Result<ReplayResult> replay_dead(store::Store& s, std::string_view destination,
                                       const std::vector<std::string>& ids, int64_t now_ms) {
  ReplayResult result;
  std::set<std::string> wanted;  // raw 16-byte event ids
  for (const auto& hex : ids) {
    auto id = core::MessageId::from_hex(hex);
    if (!id)
      result.not_found.push_back(hex);
    else
      wanted.insert(std::string(id->key()));
  }
  if (!ids.empty() && wanted.empty()) return result;
  std::set<std::string> found;
  store::Batch batch;
  size_t in_batch = 0;
  core::Status failed = core::Ok{};
  auto flush = [&] {
    if (in_batch == 0) return true;
    failed = s.commit_sync(std::move(batch));
    batch = store::Batch{};
    in_batch = 0;
    return failed.ok();
  };
  std::vector<std::string> pending;
  auto from = dead_prefix(destination);
  auto scanned = s.scan(
      store::Cf::kWebhooks, from, prefix_end(from), [&](std::string_view k, std::string_view v) {
        auto event_id = k.substr(from.size());
        if (!wanted.empty() && !wanted.count(std::string(event_id))) return true;
        auto d = decode_dead_record(v);
        if (!d) return true;
        found.insert(std::string(event_id));
        QueueRecord q = std::move(d->event);
        q.queued_ms = now_ms;
        auto seq = core::next_message_id();
        batch.put(store::Cf::kWebhooks, queue_key(destination, seq.key()), encode(q));
        batch.del(store::Cf::kWebhooks, std::string(k));
        if (auto id = core::MessageId::from_key(event_id)) pending.push_back(id->hex());
        if (++in_batch >= kReplayChunk) {
          if (!flush()) return false;
          result.replayed.insert(result.replayed.end(), pending.begin(), pending.end());
          pending.clear();
        }
        return true;
      });
  if (!scanned.ok()) return scanned.error();
  if (!failed.ok()) return failed.error();
  if (!flush()) return failed.error();
  result.replayed.insert(result.replayed.end(), pending.begin(), pending.end());
  for (const auto& w : wanted)
    if (!found.count(w))
      if (auto id = core::MessageId::from_key(w)) result.not_found.push_back(id->hex());
  return result;
}

}  // namespace mta::webhook
