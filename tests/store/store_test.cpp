#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "mta/store/store.hpp"

using namespace mta::store;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-store-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};
}  // namespace

TEST_SUITE("store") {
  TEST_CASE("a committed batch is readable and survives reopening") {
    TempDir dir;
    {
      auto s = Store::open(dir.path, Mode::kReadWrite);
      REQUIRE(s.ok());
      Batch b;
      b.put(Cf::kMessages, "k1", "v1");
      b.put(Cf::kBodies, "k1", std::string(5000, 'x'));
      b.put(Cf::kMeta, "gone", "x");
      b.del(Cf::kMeta, "gone");
      REQUIRE((*s)->commit_sync(std::move(b)).ok());
      auto v = (*s)->get(Cf::kMessages, "k1");
      REQUIRE(v.ok());
      CHECK(v->value() == "v1");
    }
    auto s = Store::open(dir.path, Mode::kReadWrite);
    REQUIRE(s.ok());
    auto body = (*s)->get(Cf::kBodies, "k1");
    REQUIRE(body.ok());
    REQUIRE(body->has_value());
    CHECK(body->value().size() == 5000);
    auto gone = (*s)->get(Cf::kMeta, "gone");
    REQUIRE(gone.ok());
    CHECK_FALSE(gone->has_value());
    // Column families are separate key spaces.
    CHECK_FALSE((*s)->get(Cf::kEnvelopes, "k1")->has_value());
  }

  TEST_CASE("concurrent commits all complete and all land") {
    TempDir dir;
    auto s = Store::open(dir.path, Mode::kReadWrite);
    REQUIRE(s.ok());
    Store& store = **s;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          Batch b;
          std::string key;
          put_u32(key, static_cast<uint32_t>(t * 1000 + i));
          b.put(Cf::kEnvelopes, key, "v");
          if (store.commit_sync(std::move(b)).ok()) ++ok;
        }
      });
    for (auto& t : threads) t.join();
    CHECK(ok == 400);
    auto n = store.count(Cf::kEnvelopes);
    REQUIRE(n.ok());
    CHECK(*n == 400);
  }

  TEST_CASE("scan visits a half-open key range in order") {
    TempDir dir;
    auto s = Store::open(dir.path, Mode::kReadWrite);
    REQUIRE(s.ok());
    Batch b;
    for (uint64_t i = 0; i < 10; ++i) {
      std::string k;
      put_u64(k, i * 1000);
      b.put(Cf::kSchedule, k, "");
    }
    REQUIRE((*s)->commit_sync(std::move(b)).ok());
    std::string from, to;
    put_u64(from, 2000);
    put_u64(to, 5000);
    std::vector<uint64_t> seen;
    REQUIRE((*s)->scan(Cf::kSchedule, from, to,
                       [&](std::string_view k, std::string_view) {
                         seen.push_back(get_u64(k));
                         return true;
                       })
                .ok());
    CHECK(seen == std::vector<uint64_t>{2000, 3000, 4000});
  }

  TEST_CASE("a read-only open sees synced writes while the writer is open") {
    TempDir dir;
    auto w = Store::open(dir.path, Mode::kReadWrite);
    REQUIRE(w.ok());
    Batch b;
    b.put(Cf::kMessages, "id", "meta");
    REQUIRE((*w)->commit_sync(std::move(b)).ok());
    auto r = Store::open(dir.path, Mode::kReadOnly);
    REQUIRE(r.ok());
    CHECK((*r)->get(Cf::kMessages, "id")->value() == "meta");
    Batch b2;
    b2.put(Cf::kMessages, "x", "y");
    CHECK_FALSE((*r)->commit_sync(std::move(b2)).ok());
  }

  TEST_CASE("opening a missing spool read-only is an error, not a new spool") {
    TempDir dir;
    auto r = Store::open((dir.path / "nothing").string(), Mode::kReadOnly);
    CHECK_FALSE(r.ok());
    CHECK_FALSE(std::filesystem::exists(dir.path / "nothing"));
  }

  TEST_CASE("sequenced puts get 16-byte keys that increase in commit order") {
    TempDir dir;
    auto s = Store::open(dir.path, Mode::kReadWrite);
    REQUIRE(s.ok());
    Store& store = **s;
    std::mutex mu;
    std::vector<std::string> committed;  // values in the order their commits completed
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          std::string v = std::to_string(t) + "/" + std::to_string(i);
          Batch b;
          b.put_sequenced(Cf::kEvents, v);
          std::promise<void> done;
          store.commit(
              std::move(b),
              [&, v](mta::core::Status st) {
                std::lock_guard lock(mu);
                committed.push_back(st.ok() ? v : "failed");
                done.set_value();
              },
              i % 2 == 0);
          done.get_future().wait();
        }
      });
    for (auto& th : threads) th.join();
    std::vector<std::string> keys, values;
    REQUIRE(store
                .scan(Cf::kEvents, {}, {},
                      [&](std::string_view k, std::string_view v) {
                        keys.emplace_back(k);
                        values.emplace_back(v);
                        return true;
                      })
                .ok());
    REQUIRE(keys.size() == 200);
    for (const auto& k : keys) CHECK(k.size() == 16);
    // Key order is commit order, whichever thread built the batch first.
    CHECK(values == committed);
  }
}
