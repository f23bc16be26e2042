// Feedback records in a real store, and the Processor from a report to the
// Complaint event and the suppression entries.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "mta/events/outbox.hpp"
#include "mta/feedback/processor.hpp"
#include "mta/feedback/record.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/store/store.hpp"
#include "reports.hpp"

using namespace mta;
using nlohmann::json;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/mta-feedback-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

queue::Message sample(const core::MessageId& id, std::vector<std::string> rcpts) {
  queue::Message m;
  m.id = id;
  m.received_ms = static_cast<int64_t>(id.micros() / 1000);
  m.mail_from = "bounces@shop.example";
  m.recipients = std::move(rcpts);
  m.configuration_set = "marketing";
  m.tags = {{"campaign", "spring"}};
  m.client_ip = "10.0.0.5";
  m.protocol = "smtp";
  m.headers = {{"Received", "from app by mta"},
               {"X-MTA-Message-ID", id.hex()},
               {"Message-ID", "<deals-2026-03@shop.example>"},
               {"From", "Shop <news@shop.example>"},
               {"To", "someone@yahoo.example"},
               {"Subject", "Great deals"},
               {"DKIM-Signature", "v=1; a=rsa-sha256; b=..."}};
  return m;
}

std::unique_ptr<store::Store> open(const TempDir& d) {
  auto s = store::Store::open(d.path, store::Mode::kReadWrite);
  REQUIRE(s.ok());
  return std::move(*s);
}

feedback::Reply submit(feedback::Processor& p, std::string report) {
  std::promise<feedback::Reply> done;
  p.submit(std::move(report), "192.0.2.200", [&](feedback::Reply r) { done.set_value(r); });
  return done.get_future().get();
}

std::vector<json> complaints(const store::Store& s) {
  std::vector<json> out;
  auto st = events::tail(s, {}, [&](std::string_view, std::string_view j) {
    auto e = json::parse(j);
    if (e["eventType"] == "Complaint") out.push_back(e);
    return true;
  });
  REQUIRE(st.ok());
  return out;
}

// A report about `id` (our X-MTA-Message-ID) naming `rcpt` in Original-Rcpt-To.
std::string report_about(const std::string& id_hex, const std::string& rcpt,
                         const std::string& type = "abuse") {
  std::string r = reports::kYahoo;
  auto replace = [&](const std::string& from, const std::string& to) {
    auto p = r.find(from);
    REQUIRE(p != std::string::npos);
    r.replace(p, from.size(), to);
  };
  replace(reports::kOurId, id_hex);
  replace("Some.User@yahoo.example", rcpt);
  replace("Feedback-Type: abuse", "Feedback-Type: " + type);
  return r;
}

}  // namespace

TEST_SUITE("feedback") {
  TEST_CASE("a record keeps the envelope and the common headers only") {
    auto m = sample(core::next_message_id(), {"a@x.example"});
    auto c = feedback::compact(m);
    std::vector<std::string> names;
    for (auto& [k, v] : c.headers) names.push_back(k);
    CHECK(names ==
          std::vector<std::string>{"X-MTA-Message-ID", "Message-ID", "From", "To", "Subject"});
    CHECK(c.headers_truncated);
    CHECK(c.recipients == m.recipients);
    CHECK(c.tags == m.tags);
    CHECK(c.configuration_set == "marketing");
  }

  TEST_CASE("records are found by id and by Message-ID, and trimmed by age") {
    TempDir dir;
    auto s = open(dir);
    auto old_id = core::next_message_id();
    auto m1 = sample(old_id, {"a@x.example"});
    store::Batch b;
    feedback::add_record(b, m1);
    REQUIRE(s->commit_sync(std::move(b)).ok());
    auto cutoff = static_cast<int64_t>(old_id.micros() / 1000) + 1;
    while (static_cast<int64_t>(core::next_message_id().micros() / 1000) <= cutoff) {
    }
    auto new_id = core::next_message_id();
    auto m2 = sample(new_id, {"b@x.example"});  // the same Message-ID, sent again
    store::Batch b2;
    feedback::add_record(b2, m2);
    REQUIRE(s->commit_sync(std::move(b2)).ok());

    auto got = feedback::find_record(*s, old_id);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK((*got)->recipients == std::vector<std::string>{"a@x.example"});
    auto by_mid = feedback::find_by_message_id(*s, " <deals-2026-03@shop.example> ");
    REQUIRE(by_mid.ok());
    REQUIRE(by_mid->has_value());
    CHECK(**by_mid == new_id);  // the newest
    CHECK_FALSE(feedback::find_by_message_id(*s, "<other@shop.example>")->has_value());
    CHECK_FALSE(feedback::find_by_message_id(*s, "<>")->has_value());

    auto n = feedback::trim(*s, cutoff);
    REQUIRE(n.ok());
    CHECK(*n == 1);
    CHECK_FALSE(feedback::find_record(*s, old_id)->has_value());
    CHECK(feedback::find_record(*s, new_id)->has_value());
    CHECK(**feedback::find_by_message_id(*s, "<deals-2026-03@shop.example>") == new_id);
    CHECK(*feedback::trim(*s, cutoff) == 0);
    // Only the newer record and its index entry are left.
    CHECK(*s->count(store::Cf::kFeedback) == 2);
  }

  TEST_CASE("a report about a recorded message: Complaint event and suppression, one batch") {
    TempDir dir;
    auto s = open(dir);
    auto id = core::next_message_id();
    auto m = sample(id, {"some.user@yahoo.example", "other@yahoo.example"});
    store::Batch b;
    feedback::add_record(b, m);
    REQUIRE(s->commit_sync(std::move(b)).ok());

    feedback::Processor p(*s);
    auto reply = submit(p, report_about(id.hex(), "Some.User@yahoo.example"));
    CHECK(reply.code == 250);
    CHECK(reply.text.find("complaint about " + id.hex() + " recorded (1 address") !=
          std::string::npos);

    auto evs = complaints(*s);
    REQUIRE(evs.size() == 1);
    auto& e = evs[0];
    CHECK(e["mail"]["messageId"] == id.hex());
    CHECK(e["mail"]["source"] == "bounces@shop.example");
    CHECK(e["mail"]["destination"] == json({"some.user@yahoo.example", "other@yahoo.example"}));
    CHECK(e["mail"]["tags"]["ses:configuration-set"] == json({"marketing"}));
    CHECK(e["mail"]["tags"]["campaign"] == json({"spring"}));
    CHECK(e["mail"]["commonHeaders"]["subject"] == "Great deals");
    CHECK(e["mail"]["headersTruncated"] == true);
    auto& c = e["complaint"];
    CHECK(c["complainedRecipients"] ==
          json::parse(R"([{"emailAddress":"some.user@yahoo.example"}])"));
    CHECK(c["complaintFeedbackType"] == "abuse");
    CHECK(c["userAgent"] == "Yahoo!-Mail-Feedback/2.0");
    CHECK(c["arrivalDate"] == "2013-02-24T21:44:08.000Z");
    CHECK(c["complaintSubType"].is_null());
    CHECK(c["feedbackId"].get<std::string>().size() == 32);
    CHECK(e["mta"]["feedback"]["matchedBy"] == "X-MTA-Message-ID");
    CHECK(e["mta"]["feedback"]["suppressed"] == true);

    auto sup = queue::find_suppression(*s, "SOME.USER@yahoo.example");
    REQUIRE(sup.ok());
    REQUIRE(sup->has_value());
    CHECK((*sup)->reason == "COMPLAINT");
    CHECK((*sup)->message_id == id.hex());
    CHECK_FALSE(queue::find_suppression(*s, "other@yahoo.example")->has_value());
  }

  TEST_CASE("a report without our id is matched by Message-ID (legacy JMRP)") {
    TempDir dir;
    auto s = open(dir);
    auto id = core::next_message_id();
    store::Batch b;
    feedback::add_record(b, sample(id, {"complainer@hotmail.example"}));
    REQUIRE(s->commit_sync(std::move(b)).ok());
    feedback::Processor p(*s);
    auto reply = submit(p, reports::kJmrpLegacy);
    CHECK(reply.code == 250);
    auto evs = complaints(*s);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0]["mta"]["feedback"]["matchedBy"] == "Message-ID");
    CHECK(evs[0]["mta"]["feedback"]["format"] == "jmrp-legacy");
    CHECK(queue::find_suppression(*s, "complainer@hotmail.example")->has_value());
  }

  TEST_CASE("not-spam publishes the complaint but suppresses nobody") {
    TempDir dir;
    auto s = open(dir);
    auto id = core::next_message_id();
    store::Batch b;
    feedback::add_record(b, sample(id, {"u@yahoo.example"}));
    REQUIRE(s->commit_sync(std::move(b)).ok());
    feedback::Processor p(*s);
    auto reply = submit(p, report_about(id.hex(), "u@yahoo.example", "not-spam"));
    CHECK(reply.text.find("(0 address(es) suppressed)") != std::string::npos);
    auto evs = complaints(*s);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0]["complaint"]["complaintFeedbackType"] == "not-spam");
    CHECK(evs[0]["mta"]["feedback"]["suppressed"] == false);
    CHECK_FALSE(queue::find_suppression(*s, "u@yahoo.example")->has_value());
  }

  TEST_CASE("a redacted report about a message with several recipients suppresses nobody") {
    TempDir dir;
    auto s = open(dir);
    auto id = core::next_message_id();
    store::Batch b;
    feedback::add_record(b, sample(id, {"a@aol.example", "b@aol.example"}));
    REQUIRE(s->commit_sync(std::move(b)).ok());
    feedback::Processor p(*s);
    std::string aol = reports::kAol;
    aol.replace(aol.find("0005F1E2D3C4B5A60000002A1B2C3D4E"), 32, id.hex());
    CHECK(submit(p, aol).code == 250);
    auto evs = complaints(*s);
    REQUIRE(evs.size() == 1);
    CHECK(evs[0]["complaint"]["complainedRecipients"].size() == 2);
    CHECK(evs[0]["mta"]["feedback"]["suppressed"] == false);
    CHECK(evs[0]["mail"]["tags"]["ses:outgoing-ip"] == json({"192.0.2.10"}));
    CHECK_FALSE(queue::find_suppression(*s, "a@aol.example")->has_value());
  }

  TEST_CASE("not ARF, or about no message of ours: 250, nothing written") {
    TempDir dir;
    auto s = open(dir);
    feedback::Processor p(*s);
    auto garbage = submit(p, "From: x@y.example\r\nSubject: hi\r\n\r\nhello\r\n");
    CHECK(garbage.code == 250);
    CHECK(garbage.text.find("not a feedback report") != std::string::npos);
    auto unknown = submit(p, report_about(core::next_message_id().hex(), "u@yahoo.example"));
    CHECK(unknown.code == 250);
    CHECK(unknown.text.find("matches no message") != std::string::npos);
    auto no_ids = submit(p, reports::kRfc5965Simple);
    CHECK(no_ids.text.find("matches no message") != std::string::npos);
    CHECK(complaints(*s).empty());
    CHECK(*s->count(store::Cf::kSuppression) == 0);
  }

  TEST_CASE("a message still in the spool is found there") {
    TempDir dir;
    auto s = open(dir);
    auto id = core::next_message_id();
    auto m = sample(id, {"q@yahoo.example"});
    store::Batch b;
    b.put(store::Cf::kMessages, std::string(id.key()), queue::encode(m));
    REQUIRE(s->commit_sync(std::move(b)).ok());
    feedback::Processor p(*s);
    CHECK(submit(p, report_about(id.hex(), "q@yahoo.example")).code == 250);
    REQUIRE(complaints(*s).size() == 1);
    CHECK(queue::find_suppression(*s, "q@yahoo.example")->has_value());
  }

  TEST_CASE("a storage failure answers 451, so the provider retries") {
    TempDir dir;
    auto id = core::next_message_id();
    {
      auto s = open(dir);
      store::Batch b;
      feedback::add_record(b, sample(id, {"u@yahoo.example"}));
      REQUIRE(s->commit_sync(std::move(b)).ok());
    }
    // A read-only store refuses every commit, as a full disk would.
    auto ro = store::Store::open(dir.path, store::Mode::kReadOnly);
    REQUIRE(ro.ok());
    feedback::Processor p(**ro);
    auto reply = submit(p, report_about(id.hex(), "u@yahoo.example"));
    CHECK(reply.code == 451);
    CHECK(reply.enhanced == "4.3.0");
  }
}
