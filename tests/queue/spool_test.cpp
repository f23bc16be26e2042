#include <doctest/doctest.h>

#include <filesystem>
#include <future>

#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"

using namespace mta;

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-spool-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

queue::Message sample() {
  queue::Message m;
  m.id = core::next_message_id();
  m.received_ms = 1790000000123;
  m.mail_from = "a@src.test";
  m.recipients = {"b@dst.test", "c@other.test"};
  m.configuration_set = "marketing";
  m.tags = {{"campaign", "nov"}, {"k", "v"}};
  m.client_ip = "127.0.0.1";
  m.auth_user = "app1";
  m.protocol = "smtp";
  m.eight_bit = true;
  return m;
}

core::Status accept_sync(queue::Spool& spool, queue::Message m, std::string body) {
  std::promise<core::Status> p;
  spool.accept(std::move(m), std::move(body), [&](core::Status s) { p.set_value(s); });
  return p.get_future().get();
}
}  // namespace

TEST_SUITE("queue") {
  TEST_CASE("message records round-trip through the codec") {
    auto m = sample();
    m.size = 42;
    auto back = queue::decode_message(m.id.key(), queue::encode(m));
    REQUIRE(back);
    CHECK(back->id == m.id);
    CHECK(back->received_ms == m.received_ms);
    CHECK(back->mail_from == m.mail_from);
    CHECK(back->recipients == m.recipients);
    CHECK(back->configuration_set == m.configuration_set);
    CHECK(back->tags == m.tags);
    CHECK(back->client_ip == m.client_ip);
    CHECK(back->auth_user == m.auth_user);
    CHECK(back->protocol == m.protocol);
    CHECK(back->size == 42);
    CHECK(back->eight_bit);
  }

  TEST_CASE("truncated or foreign records are refused, never misread") {
    auto bytes = queue::encode(sample());
    auto m = sample();
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO("truncated to ", n, " bytes");
      CHECK_FALSE(queue::decode_message(m.id.key(), bytes.substr(0, n)));
    }
    CHECK_FALSE(queue::decode_message(m.id.key(), "\x09garbage"));
    CHECK_FALSE(queue::decode_message("short", bytes));
  }

  TEST_CASE("accept stores metadata, body and one envelope per recipient") {
    TempDir dir;
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store.ok());
    auto spool = queue::Spool::open(**store);
    REQUIRE(spool.ok());
    auto m = sample();
    auto id = m.id;
    REQUIRE(accept_sync(**spool, m, "Subject: x\r\n\r\nbody\r\n").ok());
    CHECK((*spool)->message_count() == 1);

    auto found = queue::Spool::find(**store, id);
    REQUIRE(found.ok());
    REQUIRE(found->has_value());
    CHECK((*found)->size == 20);
    auto body = queue::Spool::body(**store, id);
    REQUIRE(body.ok());
    CHECK(body->value() == "Subject: x\r\n\r\nbody\r\n");
    std::vector<std::string> rcpts;
    REQUIRE(queue::Spool::envelopes(**store, id, [&](uint32_t i, const queue::Envelope& e) {
              CHECK(e.state == queue::EnvelopeState::kQueued);
              CHECK(i == rcpts.size());
              rcpts.push_back(e.recipient);
            }).ok());
    CHECK(rcpts == m.recipients);
    auto due = (*store)->count(store::Cf::kSchedule);
    REQUIRE(due.ok());
    CHECK(*due == 2);
  }

  TEST_CASE("schedule keys parse back into their parts; other lengths are refused") {
    auto id = core::next_message_id();
    auto key = queue::schedule_key(queue::kClassRetry, 1790000000123, id, 7);
    auto k = queue::parse_schedule_key(key);
    REQUIRE(k);
    CHECK(k->cls == queue::kClassRetry);
    CHECK(k->due_ms == 1790000000123);
    CHECK(k->id == id);
    CHECK(k->rcpt == 7);
    CHECK_FALSE(queue::parse_schedule_key(key.substr(1)));
    CHECK_FALSE(queue::parse_schedule_key(key + "x"));
  }

  TEST_CASE("accept with an extra batch hook stores the caller's records in the same batch") {
    TempDir dir;
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(store.ok());
    auto spool = queue::Spool::open(**store);
    REQUIRE(spool.ok());
    auto m = sample();
    std::promise<core::Status> p;
    (*spool)->accept(
        m, "x\r\n", [&](core::Status s) { p.set_value(s); },
        [](const queue::Message& msg, store::Batch& b) {
          b.put(store::Cf::kMeta, "test/extra", msg.id.hex());
        });
    REQUIRE(p.get_future().get().ok());
    auto v = (*store)->get(store::Cf::kMeta, "test/extra");
    REQUIRE(v.ok());
    REQUIRE(v->has_value());
    CHECK(**v == m.id.hex());
  }

  TEST_CASE("the message count is rebuilt from disk on open") {
    TempDir dir;
    {
      auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
      auto spool = queue::Spool::open(**store);
      for (int i = 0; i < 3; ++i) REQUIRE(accept_sync(**spool, sample(), "x\r\n").ok());
    }
    auto store = store::Store::open(dir.path, store::Mode::kReadWrite);
    auto spool = queue::Spool::open(**store);
    REQUIRE(spool.ok());
    CHECK((*spool)->message_count() == 3);
    int listed = 0;
    REQUIRE(queue::Spool::list(**store, [&](const queue::Message&) {
              ++listed;
              return true;
            }).ok());
    CHECK(listed == 3);
  }
}
