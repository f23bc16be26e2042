#include "mta/feedback/record.hpp"

#include <algorithm>
#include <array>

#include "mta/store/store.hpp"

namespace mta::feedback {
namespace {

constexpr char kRecord = 'm';
constexpr char kIndex = 'i';
// Longer Message-IDs are not indexed (RFC 5322 lines stop at 998 octets;
// real ones are far shorter).
constexpr size_t kMaxIndexedId = 500;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] + 32) : b[i];
    if (x != y) return false;
  }
  return true;
}

// "<a@b>" and " a@b " -> "a@b".
std::string_view bare_id(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '<'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '>')) v.remove_suffix(1);
  return v;
}

std::string record_key(const core::MessageId& id) {
  std::string k(1, kRecord);
  k.append(id.key());
  return k;
}

std::string index_prefix(std::string_view message_id) {
  std::string k(1, kIndex);
  k.append(bare_id(message_id));
  k.push_back('\0');
  return k;
}

std::string header(const queue::Message& m, std::string_view name) {
  for (const auto& [k, v] : m.headers)
    if (iequals(k, name)) return v;
  return {};
}

}  // namespace

queue::Message compact(const queue::Message& m) {
  static constexpr std::array<std::string_view, 7> kKept = {
      "From", "To", "Cc", "Subject", "Date", "Message-ID", "X-MTA-Message-ID"};
  queue::Message c = m;
  c.headers.clear();
  for (const auto& [k, v] : m.headers) {
    bool keep = false;
    for (auto name : kKept) keep = keep || iequals(k, name);
    if (keep)
      c.headers.emplace_back(k, v);
    else
      c.headers_truncated = true;
  }
  return c;
}

void add_record(store::Batch& b, const queue::Message& m) {
  b.put(store::Cf::kFeedback, record_key(m.id), queue::encode(compact(m)));
  std::string value = header(m, "Message-ID");
  auto mid = bare_id(value);
  if (!mid.empty() && mid.size() <= kMaxIndexedId) {
    std::string k = index_prefix(mid);
    k.append(m.id.key());
    b.put(store::Cf::kFeedback, std::move(k), {});
  }
}

core::Result<std::optional<queue::Message>> find_record(const store::Store& s,
                                                        const core::MessageId& id) {
  auto v = s.get(store::Cf::kFeedback, record_key(id));
  if (!v) return v.error();
  if (!v->has_value()) return std::optional<queue::Message>();
  auto m = queue::decode_message(id.key(), **v);
  if (!m) return core::make_error("undecodable feedback record " + id.hex());
  return m;
}

core::Result<std::optional<core::MessageId>> find_by_message_id(const store::Store& s,
                                                                std::string_view message_id) {
  auto bare = bare_id(message_id);
  if (bare.empty() || bare.size() > kMaxIndexedId) return std::optional<core::MessageId>();
  std::string from = index_prefix(bare);
  std::string to = from;
  to.back() = '\x01';  // just past every key of this prefix
  std::optional<core::MessageId> newest;
  auto st = s.scan(store::Cf::kFeedback, from, to, [&](std::string_view k, std::string_view) {
    if (k.size() == from.size() + 16)
      if (auto id = core::MessageId::from_key(k.substr(from.size()))) newest = *id;
    return true;
  });
  if (!st.ok()) return st.error();
  return newest;
}

core::Result<uint64_t> trim(store::Store& s, int64_t cutoff_ms, uint64_t limit) {
  std::string from(1, kRecord);
  std::string to(1, kRecord);
  store::put_u64(to, static_cast<uint64_t>(std::max<int64_t>(cutoff_ms, 0)) * 1000);  // µs ids
  store::Batch b;
  uint64_t n = 0;
  auto st = s.scan(store::Cf::kFeedback, from, to, [&](std::string_view k, std::string_view v) {
    b.del(store::Cf::kFeedback, std::string(k));
    if (auto m = queue::decode_message(k.substr(1), v)) {
      std::string value = header(*m, "Message-ID");
      auto mid = bare_id(value);
      if (!mid.empty() && mid.size() <= kMaxIndexedId) {
        std::string ik = index_prefix(mid);
        ik.append(k.substr(1));
        b.del(store::Cf::kFeedback, std::move(ik));
      }
    }  // an undecodable record goes all the same: it is past its retention
    return ++n < limit;
  });
  if (!st.ok()) return st.error();
  if (n == 0) return n;
  auto c = s.commit_sync(std::move(b));
  if (!c.ok()) return c.error();
  return n;
}

}  // namespace mta::feedback
