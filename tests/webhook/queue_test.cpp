// Queue and dead-letter records, their keys, listing and replay.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mta/core/id.hpp"
#include "mta/store/store.hpp"
#include "mta/webhook/queue.hpp"

using namespace mta;
using namespace mta::webhook;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-webhook-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

QueueRecord sample(config::EventType type = config::EventType::kDelivery) {
  QueueRecord r;
  r.event_id = std::string(core::next_message_id().key());
  r.type = type;
  r.message_id = core::next_message_id().hex();
  r.queued_ms = 1700000000123;
  r.body = R"({"eventType":"Delivery"})";
  return r;
}

void put_dead(store::Store& s, const std::string& dest, const QueueRecord& q,
              const std::string& error) {
  store::Batch b;
  b.put(store::Cf::kWebhooks, dead_key(dest, q.event_id),
        encode(DeadRecord{q, 1700000100000, 7, error}));
  REQUIRE(s.commit_sync(std::move(b)).ok());
}

}  // namespace

TEST_SUITE("webhook") {
  TEST_CASE("queue and dead records round-trip, and damaged ones are refused") {
    auto q = sample();
    q.body = std::string("binary\0body", 11);
    auto got = decode_queue_record(encode(q));
    REQUIRE(got);
    CHECK(got->event_id == q.event_id);
    CHECK(got->type == q.type);
    CHECK(got->message_id == q.message_id);
    CHECK(got->queued_ms == q.queued_ms);
    CHECK(got->body == q.body);

    DeadRecord d{q, 1700000999000, 12, "HTTP 500 oops"};
    auto dg = decode_dead_record(encode(d));
    REQUIRE(dg);
    CHECK(dg->event.body == q.body);
    CHECK(dg->dead_ms == d.dead_ms);
    CHECK(dg->attempts == 12);
    CHECK(dg->last_error == "HTTP 500 oops");

    std::string bytes = encode(q);
    CHECK_FALSE(decode_queue_record(""));
    CHECK_FALSE(decode_queue_record(bytes.substr(0, bytes.size() - 1)));  // truncated
    CHECK_FALSE(decode_queue_record(bytes + "x"));                        // trailing bytes
    std::string v2 = bytes;
    v2[0] = 2;  // a version we do not know
    CHECK_FALSE(decode_queue_record(v2));
    QueueRecord bad_type = q;
    bad_type.type = static_cast<config::EventType>(9);
    CHECK_FALSE(decode_queue_record(encode(bad_type)));
    QueueRecord bad_id = q;
    bad_id.event_id = "short";
    CHECK_FALSE(decode_queue_record(encode(bad_id)));
    CHECK_FALSE(decode_dead_record(bytes));  // a queue record is not a dead one
  }

  TEST_CASE("keys: one range per destination, even when one name prefixes another") {
    std::string id(16, 'x');
    CHECK(queue_key("a", id).rfind(queue_prefix("a"), 0) == 0);
    CHECK(queue_key("ab", id).rfind(queue_prefix("a"), 0) != 0);
    CHECK(dead_key("a", id).rfind(queue_prefix("a"), 0) != 0);
    CHECK(queue_key("a", id) < prefix_end(queue_prefix("a")));
    CHECK(queue_key("ab", id) >= prefix_end(queue_prefix("a")));
    CHECK(destination_of(queue_key("hooks", id)) == "hooks");
    CHECK(destination_of(dead_key("b", id)) == "b");
    CHECK(destination_of("c").empty());
    CHECK(destination_of(std::string("q\x09"
                                     "ab",
                                     4))
              .empty());  // length past the end
    CHECK(prefix_end("a\xff") == "b");
    CHECK(prefix_end("\xff\xff").empty());
  }

  TEST_CASE("dead letters are listed per destination and replayed to the end of the queue") {
    TempDir dir;
    auto opened = store::Store::open(dir.path, store::Mode::kReadWrite);
    REQUIRE(opened);
    store::Store& s = **opened;
    auto a1 = sample(config::EventType::kSend), a2 = sample(),
         b1 = sample(config::EventType::kBounce);
    put_dead(s, "a", a1, "HTTP 500");
    put_dead(s, "a", a2, "Connection refused");
    put_dead(s, "ab", b1, "timeout");

    std::vector<DeadLetter> all;
    REQUIRE(list_dead(s, "", [&](const DeadLetter& d) {
              all.push_back(d);
              return true;
            }).ok());
    REQUIRE(all.size() == 3);
    CHECK(all[0].destination == "a");
    CHECK(all[0].event_id == core::MessageId::from_key(a1.event_id)->hex());
    CHECK(all[0].event_type == "Send");
    CHECK(all[0].message_id == a1.message_id);
    CHECK(all[0].last_error == "HTTP 500");
    CHECK(all[0].attempts == 7);
    CHECK(all[0].dead_ms == 1700000100000);
    CHECK(all[2].destination == "ab");
    CHECK(all[2].event_type == "Bounce");
    size_t n_a = 0;
    REQUIRE(list_dead(s, "a", [&](const DeadLetter&) {
              ++n_a;
              return true;
            }).ok());
    CHECK(n_a == 2);
    CHECK(*count_dead(s, "a") == 2);
    CHECK(*count_dead(s, "ab") == 1);
    CHECK(*count_queue(s, "a") == 0);

    // One by id (plus one that is not there and one that is not an id).
    std::string a2_hex = core::MessageId::from_key(a2.event_id)->hex();
    std::string missing = core::next_message_id().hex();
    auto r = replay_dead(s, "a", {a2_hex, missing, "zz"}, 1800000000000);
    REQUIRE(r);
    CHECK(r->replayed == std::vector<std::string>{a2_hex});
    CHECK(r->not_found.size() == 2);
    CHECK(*count_dead(s, "a") == 1);
    CHECK(*count_queue(s, "a") == 1);
    // The replayed entry is a fresh queue entry with a new retry window.
    std::vector<QueueRecord> queued;
    auto from = queue_prefix("a");
    REQUIRE(s.scan(store::Cf::kWebhooks, from, prefix_end(from),
                   [&](std::string_view, std::string_view v) {
                     queued.push_back(*decode_queue_record(v));
                     return true;
                   })
                .ok());
    REQUIRE(queued.size() == 1);
    CHECK(queued[0].event_id == a2.event_id);
    CHECK(queued[0].body == a2.body);
    CHECK(queued[0].queued_ms == 1800000000000);

    // Everything of a destination; the other destination is untouched.
    auto all_a = replay_dead(s, "a", {}, 1800000000001);
    REQUIRE(all_a);
    CHECK(all_a->replayed.size() == 1);
    CHECK(*count_dead(s, "a") == 0);
    CHECK(*count_queue(s, "a") == 2);
    CHECK(*count_dead(s, "ab") == 1);
    // Nothing left: nothing to do.
    auto none = replay_dead(s, "a", {}, 1800000000002);
    REQUIRE(none);
    CHECK(none->replayed.empty());
  }
}
