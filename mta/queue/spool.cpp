#include "mta/queue/spool.hpp"

#include <algorithm>

#include "mta/metrics/metrics.hpp"
#include "mta/queue/codec.hpp"
#include "mta/store/store.hpp"

namespace mta::queue {
namespace {

constexpr uint8_t kMessageVersion = 1;
constexpr uint8_t kEnvelopeVersion = 1;

metrics::Gauge& spool_gauge() {
  static metrics::Gauge g =
      metrics::gauge("mta_spool_messages", "Messages in the spool (not yet finished)");
  return g;
}

}  // namespace

std::string envelope_key(const core::MessageId& id, uint32_t rcpt) {
  std::string k(id.key());
  store::put_u32(k, rcpt);
  return k;
}

std::string schedule_key(char cls, int64_t due_ms, const core::MessageId& id, uint32_t rcpt) {
  std::string k(1, cls);
  store::put_u64(k, static_cast<uint64_t>(std::max<int64_t>(due_ms, 0)));
  k.append(id.key());
  store::put_u32(k, rcpt);
  return k;
}

std::optional<ScheduleKey> parse_schedule_key(std::string_view key) {
  if (key.size() != 1 + 8 + 16 + 4) return std::nullopt;
  ScheduleKey k;
  k.cls = key[0];
  k.due_ms = static_cast<int64_t>(store::get_u64(key.substr(1)));
  auto id = core::MessageId::from_key(key.substr(9, 16));
  if (!id) return std::nullopt;
  k.id = *id;
  k.rcpt = store::get_u32(key.substr(25));
  return k;
}

std::pair<std::string, std::string> id_range(const core::MessageId& id) {
  std::string from(id.key()), to(id.key());
  // The smallest key after every key starting with id.
  for (int i = static_cast<int>(to.size()) - 1; i >= 0; --i) {
    if (static_cast<uint8_t>(to[i]) != 0xff) {
      to[i] = static_cast<char>(static_cast<uint8_t>(to[i]) + 1);
      to.resize(i + 1);
      return {from, to};
    }
  }
  return {from, std::string()};
}

std::string encode(const ScheduleEntry& e) {
  Writer w;
  w.u8(1);
  w.str(e.recipient);
  w.varint(e.attempts);
  w.svarint(e.waited_ms);
  return w.take();
}

std::optional<ScheduleEntry> decode_schedule_entry(std::string_view bytes) {
  Reader r(bytes);
  if (r.u8() != 1) return std::nullopt;
  ScheduleEntry e;
  e.recipient = r.str();
  e.attempts = static_cast<uint32_t>(r.varint());
  if (!r.at_end()) e.waited_ms = r.svarint();  // absent in records of 0.1
  if (!r.ok()) return std::nullopt;
  return e;
}

const char* to_string(EnvelopeState s) {
  switch (s) {
    case EnvelopeState::kQueued:
      return "queued";
    case EnvelopeState::kDelivered:
      return "delivered";
    case EnvelopeState::kBounced:
      return "bounced";
    case EnvelopeState::kExpired:
      return "expired";
  }
  return "?";
}

std::string encode(const Message& m) {
  Writer w;
  w.u8(kMessageVersion);
  w.svarint(m.received_ms);
  w.str(m.mail_from);
  w.varint(m.recipients.size());
  for (auto& r : m.recipients) w.str(r);
  w.str(m.configuration_set);
  w.varint(m.tags.size());
  for (auto& [k, v] : m.tags) {
    w.str(k);
    w.str(v);
  }
  w.str(m.client_ip);
  w.str(m.auth_user);
  w.str(m.protocol);
  w.varint(m.size);
  w.u8(m.eight_bit ? 1 : 0);
  w.varint(m.headers.size());
  for (auto& [k, v] : m.headers) {
    w.str(k);
    w.str(v);
  }
  w.u8(m.headers_truncated ? 1 : 0);
  // Trailing fields, absent in records written before they existed.
  if (!m.list_name.empty() || !m.list_topic.empty()) {
    w.str(m.list_name);
    w.str(m.list_topic);
  }
  return w.take();
}

std::optional<Message> decode_message(std::string_view id_key, std::string_view bytes) {
  auto id = core::MessageId::from_key(id_key);
  if (!id) return std::nullopt;
  Reader r(bytes);
  if (r.u8() != kMessageVersion) return std::nullopt;
  Message m;
  m.id = *id;
  m.received_ms = r.svarint();
  m.mail_from = r.str();
  uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) m.recipients.push_back(r.str());
  m.configuration_set = r.str();
  n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    auto k = r.str();
    auto v = r.str();
    m.tags.emplace_back(std::move(k), std::move(v));
  }
  m.client_ip = r.str();
  m.auth_user = r.str();
  m.protocol = r.str();
  m.size = r.varint();
  m.eight_bit = r.u8() != 0;
  n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    auto k = r.str();
    auto v = r.str();
    m.headers.emplace_back(std::move(k), std::move(v));
  }
  m.headers_truncated = r.u8() != 0;
  if (r.ok() && !r.at_end()) {
    m.list_name = r.str();
    m.list_topic = r.str();
  }
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return m;
}

std::string encode(const Envelope& e) {
  Writer w;
  w.u8(kEnvelopeVersion);
  w.str(e.recipient);
  w.u8(static_cast<uint8_t>(e.state));
  w.varint(e.attempts);
  w.svarint(e.next_attempt_ms);
  w.str(e.last_reply);
  w.svarint(e.waited_ms);
  return w.take();
}

std::optional<Envelope> decode_envelope(std::string_view bytes) {
  Reader r(bytes);
  if (r.u8() != kEnvelopeVersion) return std::nullopt;
  Envelope e;
  e.recipient = r.str();
  uint8_t st = r.u8();
  if (st > static_cast<uint8_t>(EnvelopeState::kExpired)) return std::nullopt;
  e.state = static_cast<EnvelopeState>(st);
  e.attempts = static_cast<uint32_t>(r.varint());
  e.next_attempt_ms = r.svarint();
  e.last_reply = r.str();
  if (!r.at_end()) e.waited_ms = r.svarint();  // absent in records of 0.1
  if (!r.ok()) return std::nullopt;
  return e;
}

Spool::Spool(store::Store& store, uint64_t count) : store_(store), count_(count) {
  spool_gauge().set(static_cast<double>(count));
}

core::Result<std::unique_ptr<Spool>> Spool::open(store::Store& store) {
  auto n = store.count(store::Cf::kMessages);
  if (!n) return n.error();
  return std::unique_ptr<Spool>(new Spool(store, *n));
}

void Spool::accept(Message message, std::string body, Done done) {
  accept(std::move(message), std::move(body), std::move(done), {});
}

void Spool::accept(Message message, std::string body, Done done, const BatchHook& extra) {
  store::Batch b;
  std::string id_key(message.id.key());
  for (uint32_t i = 0; i < message.recipients.size(); ++i) {
    Envelope e;
    e.recipient = message.recipients[i];
    e.next_attempt_ms = message.received_ms;
    b.put(store::Cf::kEnvelopes, envelope_key(message.id, i), encode(e));
    b.put(store::Cf::kSchedule, schedule_key(kClassNew, message.received_ms, message.id, i),
          encode(ScheduleEntry{message.recipients[i], 0}));
  }
  message.size = body.size();
  if (on_batch_) on_batch_(message, b);
  if (extra) extra(message, b);
  b.put(store::Cf::kMessages, id_key, encode(message));
  b.put(store::Cf::kBodies, std::move(id_key), std::move(body));
  auto shared = std::make_shared<const Message>(std::move(message));
  store_.commit(std::move(b), [this, shared, done = std::move(done)](core::Status s) {
    // Everything that touches the spool happens before `done`, which may
    // be the caller's signal that it can go away.
    if (s.ok()) {
      spool_gauge().set(static_cast<double>(++count_));
      if (on_accepted_) on_accepted_(shared);
    }
    done(std::move(s));
  });
}

void Spool::message_removed() {
  spool_gauge().set(static_cast<double>(--count_));
}

core::Status Spool::list(const store::Store& store, const std::function<bool(const Message&)>& fn) {
  bool corrupt = false;
  auto s = store.scan(store::Cf::kMessages, {}, {}, [&](std::string_view k, std::string_view v) {
    auto m = decode_message(k, v);
    if (!m) {
      corrupt = true;
      return true;
    }
    return fn(*m);
  });
  if (!s.ok()) return s;
  if (corrupt) return core::make_error("spool holds undecodable message records");
  return core::Ok{};
}

core::Result<std::optional<Message>> Spool::find(const store::Store& store,
                                                 const core::MessageId& id) {
  auto v = store.get(store::Cf::kMessages, id.key());
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<Message>();
  auto m = decode_message(id.key(), **v);
  if (!m) return core::make_error("undecodable message record " + id.hex());
  return m;
}

core::Result<std::optional<std::string>> Spool::body(const store::Store& store,
                                                     const core::MessageId& id) {
  return store.get(store::Cf::kBodies, id.key());
}

core::Status Spool::envelopes(const store::Store& store, const core::MessageId& id,
                              const std::function<void(uint32_t, const Envelope&)>& fn) {
  auto [from, to] = id_range(id);
  bool corrupt = false;
  auto s = store.scan(store::Cf::kEnvelopes, from, to, [&](std::string_view k, std::string_view v) {
    auto e = decode_envelope(v);
    if (!e || k.size() != 20) {
      corrupt = true;
      return true;
    }
    fn(store::get_u32(k.substr(16)), *e);
    return true;
  });
  if (!s.ok()) return s;
  if (corrupt) return core::make_error("undecodable envelope of " + id.hex());
  return core::Ok{};
}

}  // namespace mta::queue
