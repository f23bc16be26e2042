#include <doctest/doctest.h>

#include <filesystem>

#include "mta/api/idempotency.hpp"
#include "mta/store/store.hpp"

using namespace mta;
using api::Idempotency;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-idem-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

constexpr int64_t kT0 = 1795000000000;
constexpr int64_t kHour = 3600 * 1000;
}  // namespace

TEST_SUITE("api") {
  TEST_CASE("idempotency: new, busy while held, then the stored id; across a reopen") {
    TempDir dir;
    {
      auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
      REQUIRE(store.ok());
      Idempotency idem(**store);
      auto c = idem.claim("AK\nkey-1", kT0);
      REQUIRE(c.ok());
      CHECK(c->state == Idempotency::State::kNew);
      auto busy = idem.claim("AK\nkey-1", kT0);
      REQUIRE(busy.ok());
      CHECK(busy->state == Idempotency::State::kBusy);
      // Another key, or the same key of another API key, is independent.
      CHECK(idem.claim("AK\nkey-2", kT0)->state == Idempotency::State::kNew);
      CHECK(idem.claim("OTHER\nkey-1", kT0)->state == Idempotency::State::kNew);
      store::Batch b;
      Idempotency::record(b, "AK\nkey-1", "0123abcd", kT0);
      REQUIRE((*store)->commit_sync(std::move(b)).ok());
      idem.release("AK\nkey-1");
      auto done = idem.claim("AK\nkey-1", kT0 + 23 * kHour);
      REQUIRE(done.ok());
      CHECK(done->state == Idempotency::State::kDone);
      CHECK(done->message_id == "0123abcd");
    }
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store.ok());
    Idempotency idem(**store);
    auto again = idem.claim("AK\nkey-1", kT0 + kHour);
    REQUIRE(again.ok());
    CHECK(again->state == Idempotency::State::kDone);
    CHECK(again->message_id == "0123abcd");
    // After 24 hours the key is new again, even before trim() removed it.
    auto late = idem.claim("AK\nkey-1", kT0 + 25 * kHour);
    REQUIRE(late.ok());
    CHECK(late->state == Idempotency::State::kNew);
    idem.release("AK\nkey-1");
  }

  TEST_CASE("idempotency: trim removes expired records and keeps fresh ones") {
    TempDir dir;
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store.ok());
    Idempotency idem(**store);
    store::Batch b;
    Idempotency::record(b, "AK\nold", "1111", kT0);
    Idempotency::record(b, "AK\nnew", "2222", kT0 + 10 * kHour);
    REQUIRE((*store)->commit_sync(std::move(b)).ok());
    auto n = idem.trim(kT0 + 5 * kHour);
    REQUIRE(n.ok());
    CHECK(*n == 1);
    CHECK((*store)->count(store::Cf::kMeta).value() == 2);  // the fresh record and its index
    CHECK(idem.claim("AK\nnew", kT0 + 11 * kHour)->message_id == "2222");
    CHECK(idem.claim("AK\nold", kT0 + 11 * kHour)->state == Idempotency::State::kNew);
    CHECK(*idem.trim(kT0 + 5 * kHour) == 0);
  }
}
