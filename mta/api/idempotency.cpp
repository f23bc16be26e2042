#include "mta/api/idempotency.hpp"

#include "mta/store/store.hpp"

namespace mta::api {
namespace {

constexpr std::string_view kRecord = "idem/k/";
constexpr std::string_view kIndex = "idem/t/";

std::string record_key(const std::string& key) {
  return std::string(kRecord) + key;
}

std::string index_key(int64_t created_ms, const std::string& key) {
  std::string k(kIndex);
  store::put_u64(k, static_cast<uint64_t>(created_ms));
  k += key;
  return k;
}

}  // namespace

core::Result<Idempotency::Claim> Idempotency::claim(const std::string& key, int64_t now_ms) {
  {
    std::lock_guard lock(mu_);
    if (!busy_.insert(key).second) return Claim{State::kBusy, {}};
  }
  auto v = store_.get(store::Cf::kMeta, record_key(key));
  if (!v) {
    release(key);
    return v.error();
  }
  if (v->has_value() && (*v)->size() > 8) {
    auto created = static_cast<int64_t>(store::get_u64(**v));
    if (created >= now_ms - kIdempotencyTtlMs) {
      release(key);
      return Claim{State::kDone, (*v)->substr(8)};
    }
  }
  return Claim{State::kNew, {}};
}

void Idempotency::release(const std::string& key) {
  std::lock_guard lock(mu_);
  busy_.erase(key);
}

void Idempotency::record(store::Batch& b, const std::string& key, const std::string& message_id,
                         int64_t now_ms) {
  std::string value;
  store::put_u64(value, static_cast<uint64_t>(now_ms));
  value += message_id;
  b.put(store::Cf::kMeta, record_key(key), std::move(value));
  b.put(store::Cf::kMeta, index_key(now_ms, key), "");
}

core::Result<uint64_t> Idempotency::trim(int64_t cutoff_ms) {
  store::Batch b;
  uint64_t n = 0;
  std::string from(kIndex), to = index_key(cutoff_ms, "");
  auto s = store_.scan(store::Cf::kMeta, from, to, [&](std::string_view k, std::string_view) {
    if (k.size() < kIndex.size() + 8) return true;
    std::string key(k.substr(kIndex.size() + 8));
    auto created = static_cast<int64_t>(store::get_u64(k.substr(kIndex.size())));
    // The record may have been rewritten later (same key, after expiry):
    // delete it only if it is this one.
    auto v = store_.get(store::Cf::kMeta, record_key(key));
    if (v && v->has_value() && (*v)->size() >= 8 &&
        static_cast<int64_t>(store::get_u64(**v)) == created)
      b.del(store::Cf::kMeta, record_key(key));
    b.del(store::Cf::kMeta, std::string(k));
    ++n;
    return n < 100000;  // bounded work per call; the next call continues
  });
  if (!s) return s.error();
  if (b.empty()) return uint64_t{0};
  auto c = store_.commit_sync(std::move(b));
  if (!c) return c.error();
  return n;
}

}  // namespace mta::api
