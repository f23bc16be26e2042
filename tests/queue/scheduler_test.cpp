#include <doctest/doctest.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "mta/queue/scheduler.hpp"
#include "mta/store/store.hpp"

using namespace mta;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-sched-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Collects dispatched jobs.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<queue::Job> jobs;
  std::vector<queue::Decision> decisions;  // copies of the fields we check
  std::vector<std::pair<queue::EnvelopeState, uint32_t>> states;

  void push(queue::Job j) {
    std::lock_guard lock(mu);
    jobs.push_back(std::move(j));
    cv.notify_all();
  }
  std::vector<queue::Job> wait(size_t rcpts, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, timeout, [&] {
      size_t n = 0;
      for (auto& j : jobs) n += j.rcpts.size();
      return n >= rcpts;
    });
    return std::exchange(jobs, {});
  }
};

struct Fixture {
  TempDir dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<queue::Spool> spool;
  core::OffsetClock clock;
  std::unique_ptr<queue::Scheduler> sched;
  Inbox inbox;
  std::function<bool(const queue::Message&)> per_recipient;  // for the next open()

  Fixture() { open(); }

  void open(size_t max_active = 1000) {
    store = std::move(*store::Store::open(dir.path, store::Mode::kReadWrite));
    spool = std::move(*queue::Spool::open(*store));
    queue::SchedulerOptions o;
    o.max_active = max_active;
    o.retry.intervals = {1min, 10min};
    o.retry.max_age = 1h;
    o.retry.jitter = 0;
    sched = std::make_unique<queue::Scheduler>(*store, *spool, clock, o);
    if (per_recipient) sched->set_per_recipient(per_recipient);
    spool->set_accepted_hook([this](auto m) { sched->admit(std::move(m)); });
    sched->start([this](queue::Job j) { inbox.push(std::move(j)); },
                 [this](const queue::Decision& d, store::Batch&) {
                   std::lock_guard lock(inbox.mu);
                   inbox.states.emplace_back(d.state, d.attempts);
                 });
  }

  void close() {
    sched.reset();
    spool.reset();
    store.reset();
  }

  core::MessageId accept(std::vector<std::string> rcpts) {
    queue::Message m;
    m.id = core::next_message_id();
    m.received_ms = clock.now_ms();
    m.mail_from = "a@src.test";
    m.recipients = std::move(rcpts);
    m.configuration_set = "default";
    auto id = m.id;
    std::promise<core::Status> p;
    spool->accept(std::move(m), "Subject: t\r\n\r\nx\r\n", [&](core::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().ok());
    return id;
  }

  void complete(queue::Job job, std::vector<queue::Outcome> outcomes) {
    std::promise<void> p;
    sched->complete(std::move(job), std::move(outcomes), [&] { p.set_value(); });
    p.get_future().wait();
  }

  size_t envelopes_in_state(const core::MessageId& id, queue::EnvelopeState st) {
    size_t n = 0;
    REQUIRE(queue::Spool::envelopes(*store, id, [&](uint32_t, const queue::Envelope& e) {
              if (e.state == st) ++n;
            }).ok());
    return n;
  }
};

queue::Outcome outcome(queue::Fate f, bool suppress = false) {
  queue::Outcome o;
  o.fate = f;
  o.reply = "test reply";
  o.suppress = suppress;
  return o;
}

}  // namespace

TEST_SUITE("queue") {
  TEST_CASE("fresh mail is dispatched at once, one job per destination domain") {
    Fixture f;
    f.accept({"a@one.test", "b@two.test", "c@ONE.test"});
    auto jobs = f.inbox.wait(3);
    REQUIRE(jobs.size() == 2);
    std::map<std::string, size_t> by_domain;
    for (auto& j : jobs) by_domain[j.domain] = j.rcpts.size();
    CHECK(by_domain["one.test"] == 2);
    CHECK(by_domain["two.test"] == 1);
    CHECK(f.sched->active() == 3);
  }

  TEST_CASE("messages with a body per recipient get one job per recipient") {
    Fixture f;
    f.close();
    f.per_recipient = [](const queue::Message& m) { return m.recipients.size() == 3; };
    f.open();
    auto id = f.accept({"a@one.test", "b@one.test", "c@two.test"});
    auto jobs = f.inbox.wait(3);
    REQUIRE(jobs.size() == 3);
    for (auto& j : jobs) CHECK(j.rcpts.size() == 1);
    // Others are still grouped by domain.
    f.accept({"d@one.test", "e@one.test"});
    auto grouped = f.inbox.wait(2);
    REQUIRE(grouped.size() == 1);
    CHECK(grouped[0].rcpts.size() == 2);
    // Each job completes on its own; the message leaves after the last.
    std::sort(jobs.begin(), jobs.end(),
              [](auto& a, auto& b) { return a.rcpts[0].address < b.rcpts[0].address; });
    f.complete(jobs[2], {outcome(queue::Fate::kDelivered)});  // c@two.test
    f.complete(jobs[0], {outcome(queue::Fate::kDeferred)});   // a@one.test
    CHECK(queue::Spool::find(*f.store, id)->has_value());
    f.complete(jobs[1], {outcome(queue::Fate::kDeferred)});  // b@one.test
    // The two retries (one domain) come back from the scan split too.
    f.clock.advance(61s);
    auto retries = f.inbox.wait(2);
    REQUIRE(retries.size() == 2);
    for (auto& j : retries) {
      CHECK(j.rcpts.size() == 1);
      f.complete(j, {outcome(queue::Fate::kDelivered)});
    }
    CHECK_FALSE(queue::Spool::find(*f.store, id)->has_value());
  }

  TEST_CASE("a message leaves the spool once every recipient is final") {
    Fixture f;
    auto id = f.accept({"a@one.test", "b@two.test"});
    auto jobs = f.inbox.wait(2);
    REQUIRE(jobs.size() == 2);
    f.complete(jobs[0], {outcome(queue::Fate::kDelivered)});
    CHECK(queue::Spool::find(*f.store, id)->has_value());
    f.complete(jobs[1], {outcome(queue::Fate::kBounced)});
    CHECK_FALSE(queue::Spool::find(*f.store, id)->has_value());
    CHECK_FALSE(queue::Spool::body(*f.store, id)->has_value());
    CHECK(*f.store->count(store::Cf::kSchedule) == 0);
    CHECK(*f.store->count(store::Cf::kEnvelopes) == 0);
    CHECK(f.spool->message_count() == 0);
    CHECK(f.sched->active() == 0);
  }

  TEST_CASE("a deferral is retried after the interval and counts attempts") {
    Fixture f;
    auto id = f.accept({"a@one.test"});
    auto jobs = f.inbox.wait(1);
    REQUIRE(jobs.size() == 1);
    f.complete(jobs[0], {outcome(queue::Fate::kDeferred)});
    CHECK(f.envelopes_in_state(id, queue::EnvelopeState::kQueued) == 1);
    CHECK(f.inbox.wait(1, 1500ms).empty());  // not due yet
    f.clock.advance(61s);
    jobs = f.inbox.wait(1);
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].rcpts[0].attempts == 1);
    f.complete(jobs[0], {outcome(queue::Fate::kDeferred)});
    f.clock.advance(5min);
    CHECK(f.inbox.wait(1, 1500ms).empty());  // second interval is 10 min
    f.clock.advance(6min);
    jobs = f.inbox.wait(1);
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].rcpts[0].attempts == 2);
  }

  TEST_CASE("a deferral past max_age expires the envelope") {
    Fixture f;
    auto id = f.accept({"a@one.test"});
    auto jobs = f.inbox.wait(1);
    f.clock.advance(61min);
    f.complete(jobs[0], {outcome(queue::Fate::kDeferred)});
    CHECK_FALSE(queue::Spool::find(*f.store, id)->has_value());
    std::lock_guard lock(f.inbox.mu);
    REQUIRE(f.inbox.states.size() == 1);
    CHECK(f.inbox.states[0].first == queue::EnvelopeState::kExpired);
  }

  TEST_CASE("a hard bounce with suppress adds the address and later mail is flagged") {
    Fixture f;
    f.accept({"Bad@One.test"});
    auto jobs = f.inbox.wait(1);
    f.complete(jobs[0], {outcome(queue::Fate::kBounced, true)});
    auto s = queue::find_suppression(*f.store, "bad@one.test");
    REQUIRE(s.ok());
    REQUIRE(s->has_value());
    CHECK((*s)->reason == "BOUNCE");
    f.accept({"bad@one.test", "good@one.test"});
    jobs = f.inbox.wait(2);
    REQUIRE(jobs.size() == 1);
    REQUIRE(jobs[0].rcpts.size() == 2);
    CHECK(jobs[0].rcpts[0].suppressed);
    CHECK_FALSE(jobs[0].rcpts[1].suppressed);
  }

  TEST_CASE("unsubscribes are scoped to a list and topic, a whole list, or a set") {
    Fixture f;
    auto unsubscribe = [&](queue::ListScope scope, const std::string& address) {
      store::Batch b;
      queue::put_unsubscribe(b, scope, {address, "UNSUBSCRIBE", 1, "", ""});
      REQUIRE(f.store->commit_sync(std::move(b)).ok());
    };
    using K = queue::ListScope::Kind;
    unsubscribe({K::kContactList, "news", "deals"}, "A@x.test");
    unsubscribe({K::kContactList, "digest", ""}, "b@x.test");
    unsubscribe({K::kConfigurationSet, "marketing", ""}, "c@x.test");
    auto msg = [](std::string list, std::string topic, std::string set) {
      queue::Message m;
      m.list_name = std::move(list);
      m.list_topic = std::move(topic);
      m.configuration_set = std::move(set);
      return m;
    };
    auto hit = [&](const queue::Message& m, const char* address) {
      auto r = queue::find_unsubscribe(*f.store, m, address);
      REQUIRE(r.ok());
      return r->has_value();
    };
    CHECK(hit(msg("news", "deals", "x"), "a@X.test"));
    CHECK_FALSE(hit(msg("news", "other", "x"), "a@x.test"));  // another topic
    CHECK_FALSE(hit(msg("news", "", "x"), "a@x.test"));       // the whole list: not asked
    CHECK_FALSE(hit(msg("", "", "x"), "a@x.test"));
    CHECK(hit(msg("digest", "any", "x"), "b@x.test"));  // whole list covers its topics
    CHECK(hit(msg("digest", "", "x"), "b@x.test"));
    CHECK(hit(msg("", "", "marketing"), "c@x.test"));
    CHECK_FALSE(hit(msg("", "", "transactional"), "c@x.test"));
    CHECK_FALSE(hit(msg("marketing", "", "x"), "c@x.test"));  // a list of the same name
    // The global list does not show them; list_unsubscribes does.
    size_t global = 0, scoped = 0;
    REQUIRE(queue::list_suppressions(*f.store, [&](auto&) { return ++global, true; }).ok());
    REQUIRE(queue::list_unsubscribes(*f.store, [&](const queue::ListScope& s, auto& e) {
              if (e.address == "a@x.test")
                CHECK(s == queue::ListScope{K::kContactList, "news", "deals"});
              return ++scoped, true;
            }).ok());
    CHECK(global == 0);
    CHECK(scoped == 3);
    // The scheduler marks unsubscribed recipients of a list's message.
    queue::Message m;
    m.id = core::next_message_id();
    m.received_ms = f.clock.now_ms();
    m.mail_from = "s@src.test";
    m.recipients = {"a@x.test", "b@x.test"};
    m.configuration_set = "default";
    m.list_name = "news";
    m.list_topic = "deals";
    std::promise<core::Status> p;
    f.spool->accept(std::move(m), "Subject: t\r\n\r\nx\r\n",
                    [&](core::Status s) { p.set_value(s); });
    REQUIRE(p.get_future().get().ok());
    auto jobs = f.inbox.wait(1);
    REQUIRE(jobs[0].rcpts.size() == 2);
    CHECK(jobs[0].rcpts[0].suppressed);
    CHECK(jobs[0].rcpts[0].suppression_reason == "UNSUBSCRIBE");
    CHECK_FALSE(jobs[0].rcpts[1].suppressed);
    // And the list fields survive the spool's record.
    CHECK(jobs[0].message->list_name == "news");
    CHECK(jobs[0].message->list_topic == "deals");
  }

  TEST_CASE("envelopes in flight at a crash are due again after a restart") {
    Fixture f;
    auto id = f.accept({"a@one.test", "b@one.test"});
    REQUIRE(f.inbox.wait(2).size() == 1);
    f.close();  // no outcome recorded: as if the process died mid-delivery
    f.open();
    auto jobs = f.inbox.wait(2);
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].rcpts.size() == 2);
    CHECK(jobs[0].message->id == id);
  }

  TEST_CASE("the active set is bounded and the backlog drains as room frees up") {
    Fixture f;
    f.close();
    f.open(/*max_active=*/4);
    for (int i = 0; i < 10; ++i) f.accept({"x" + std::to_string(i) + "@one.test"});
    auto jobs = f.inbox.wait(4);
    size_t got = 0;
    for (auto& j : jobs) got += j.rcpts.size();
    CHECK(got <= 4);
    size_t done = 0;
    while (done < 10) {
      for (auto& j : jobs) {
        done += j.rcpts.size();
        f.complete(j, {outcome(queue::Fate::kDelivered)});
      }
      if (done >= 10) break;
      jobs = f.inbox.wait(1);
      REQUIRE_FALSE(jobs.empty());
      CHECK(f.sched->active() <= 4);
    }
    CHECK(done == 10);
    CHECK(f.spool->message_count() == 0);
  }

  TEST_CASE("postponed envelopes come back without counting an attempt") {
    Fixture f;
    f.accept({"a@one.test"});
    auto jobs = f.inbox.wait(1);
    auto o = outcome(queue::Fate::kPostponed);
    o.delay = 30s;
    f.complete(jobs[0], {o});
    f.clock.advance(31s);
    jobs = f.inbox.wait(1);
    REQUIRE(jobs.size() == 1);
    CHECK(jobs[0].rcpts[0].attempts == 0);
  }

  TEST_CASE("retry intervals repeat the last step") {
    queue::RetryPolicy p;
    p.intervals = {1min, 5min};
    CHECK(queue::Scheduler::interval(p, 1) == 1min);
    CHECK(queue::Scheduler::interval(p, 2) == 5min);
    CHECK(queue::Scheduler::interval(p, 9) == 5min);
  }
}
