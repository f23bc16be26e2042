#include <doctest/doctest.h>

#include <filesystem>
#include <future>

#include "mta/api/queue_summary.hpp"
#include "mta/config/config.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"

using namespace mta;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-qsum-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

const char* kConfig = R"(spool_dir: /tmp/unused
smtp: { listeners: [{ listen: "127.0.0.1:2525" }] }
ip_pools:
  - { name: p1, ips: [{ address: 192.0.2.1 }] }
  - { name: p2, ips: [{ address: 192.0.2.2 }] }
configuration_sets:
  - { name: a, ip_pool: p1 }
  - { name: b, ip_pool: p2 }
  - { name: c, ip_pool: p2 }
)";

void accept(queue::Spool& spool, std::string set, std::vector<std::string> rcpts,
            int64_t received_ms) {
  queue::Message m;
  m.id = core::next_message_id();
  m.received_ms = received_ms;
  m.mail_from = "s@src.test";
  m.recipients = std::move(rcpts);
  m.configuration_set = std::move(set);
  std::promise<core::Status> p;
  spool.accept(std::move(m), "x\r\n", [&](core::Status s) { p.set_value(s); });
  REQUIRE(p.get_future().get().ok());
}

const api::QueueGroup* group(const std::vector<api::QueueGroup>& v, const std::string& name) {
  for (const auto& g : v)
    if (g.name == name) return &g;
  return nullptr;
}
}  // namespace

TEST_SUITE("api") {
  TEST_CASE("queue summary: messages and pending recipients by set, pool and domain") {
    TempDir dir;
    auto cfg = config::load_string(kConfig, "test.yaml");
    REQUIRE(cfg.config);
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store.ok());
    auto spool = queue::Spool::open(**store);
    REQUIRE(spool.ok());

    auto empty = api::spool_summary(**store, *cfg.config);
    REQUIRE(std::holds_alternative<api::QueueSummary>(empty));
    CHECK(std::get<api::QueueSummary>(empty).messages == 0);
    CHECK(std::get<api::QueueSummary>(empty).oldest_ms == 0);

    accept(**spool, "a", {"x@one.test", "y@two.test"}, 1000);
    accept(**spool, "b", {"z@one.test"}, 2000);
    accept(**spool, "c", {"w@one.test", "v@one.test", "u@three.test"}, 3000);
    auto r = api::spool_summary(**store, *cfg.config, 2);
    REQUIRE(std::holds_alternative<api::QueueSummary>(r));
    const auto& s = std::get<api::QueueSummary>(r);
    CHECK(s.messages == 3);
    CHECK(s.recipients == 6);
    CHECK(s.oldest_ms == 1000);
    REQUIRE(group(s.by_configuration_set, "a"));
    CHECK(group(s.by_configuration_set, "a")->messages == 1);
    CHECK(group(s.by_configuration_set, "a")->recipients == 2);
    CHECK(group(s.by_configuration_set, "c")->recipients == 3);
    REQUIRE(group(s.by_pool, "p2"));
    CHECK(group(s.by_pool, "p2")->messages == 2);
    CHECK(group(s.by_pool, "p2")->recipients == 4);
    CHECK(group(s.by_pool, "p2")->oldest_ms == 2000);
    // Largest first, cut to max_destinations.
    REQUIRE(s.by_destination.size() == 2);
    CHECK(s.by_destination[0].name == "one.test");
    CHECK(s.by_destination[0].recipients == 4);
  }
}
