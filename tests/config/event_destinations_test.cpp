// event_destinations and configuration_sets[].event_destinations.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "mta/config/config.hpp"

using namespace mta::config;
using namespace std::chrono_literals;

namespace {

// Lines 1-9; the event_destinations section starts at line 10 and the sets
// follow it.
std::string with(const std::string& destinations, const std::string& set_extra = "") {
  return "spool_dir: /tmp/spool\n"             // 1
         "smtp:\n"                             // 2
         "  listeners:\n"                      // 3
         "    - listen: \"127.0.0.1:2525\"\n"  // 4
         "ip_pools:\n"                         // 5
         "  - name: main\n"                    // 6
         "    ips:\n"                          // 7
         "      - address: 192.0.2.1\n"        // 8
         "configuration_sets:\n"               // 9
         "  - { name: main, ip_pool: main" +   // 10
         set_extra +
         " }\n" + destinations;  // 11...
}

struct ErrorCase {
  std::string yaml;
  int line;
  int col;
  std::string message;
};

}  // namespace

TEST_SUITE("config") {
  TEST_CASE("event destinations: defaults, every key, and sets referring to them") {
    auto r =
        load_string(with("event_destinations:\n"
                         "  - name: main\n"
                         "    webhook: { url: \"https://hooks.example.com/ses\", secret: s1 }\n"
                         "  - name: audit.log-2\n"
                         "    webhook: { url: \"HTTP://127.0.0.1:9999/e?x=1\", secret: s2,\n"
                         "               timeout: 2s, max_in_flight: 3, batch: 50,\n"
                         "               retry_window: 1h }\n"
                         "    events: [bounce, complaint, delivery_delay]\n",
                         ", event_destinations: [main, audit.log-2]"),
                    "test.yaml");
    INFO("error: ", r.error ? r.error->to_string() : "");
    REQUIRE(r.config);
    const auto& c = *r.config;
    REQUIRE(c.event_destinations.size() == 2);
    const auto& a = c.event_destinations[0];
    CHECK(a.webhook.url == "https://hooks.example.com/ses");
    CHECK(a.webhook.secret == "s1");
    CHECK(a.webhook.timeout == 10s);
    CHECK(a.webhook.max_in_flight == 8);
    CHECK(a.webhook.batch == 1);
    CHECK(a.webhook.retry_window == 24h);
    for (int i = 0; i < kEventTypeCount; ++i) CHECK(a.wants(static_cast<EventType>(i)));
    const auto* b = c.find_destination("audit.log-2");
    REQUIRE(b);
    CHECK(b->webhook.timeout == 2s);
    CHECK(b->webhook.max_in_flight == 3);
    CHECK(b->webhook.batch == 50);
    CHECK(b->webhook.retry_window == 1h);
    CHECK(b->wants(EventType::kBounce));
    CHECK(b->wants(EventType::kComplaint));
    CHECK(b->wants(EventType::kDeliveryDelay));
    CHECK_FALSE(b->wants(EventType::kSend));
    CHECK_FALSE(b->wants(EventType::kDelivery));
    CHECK_FALSE(b->wants(EventType::kOpen));
    CHECK(c.find_set("main")->event_destinations ==
          std::vector<std::string>{"main", "audit.log-2"});
    CHECK(c.find_destination("nope") == nullptr);
  }

  TEST_CASE("a config without event destinations has none") {
    auto r = load_string(with(""), "test.yaml");
    REQUIRE(r.config);
    CHECK(r.config->event_destinations.empty());
    CHECK(r.config->find_set("main")->event_destinations.empty());
  }

  TEST_CASE("event type names: config spelling, SES eventType and back") {
    struct {
      EventType t;
      const char* config;
      const char* ses;
    } cases[] = {{EventType::kSend, "send", "Send"},
                 {EventType::kDelivery, "delivery", "Delivery"},
                 {EventType::kBounce, "bounce", "Bounce"},
                 {EventType::kComplaint, "complaint", "Complaint"},
                 {EventType::kReject, "reject", "Reject"},
                 {EventType::kDeliveryDelay, "delivery_delay", "DeliveryDelay"},
                 {EventType::kOpen, "open", "Open"},
                 {EventType::kClick, "click", "Click"}};
    for (const auto& c : cases) {
      CHECK(std::string(to_string(c.t)) == c.config);
      CHECK(std::string(ses_event_name(c.t)) == c.ses);
      CHECK(event_type_from_ses(c.ses) == c.t);
    }
    CHECK_FALSE(event_type_from_ses("delivery"));
    CHECK_FALSE(event_type_from_ses(""));
  }

  TEST_CASE("bad event destinations are refused at their line and column") {
    const std::string hook = "    webhook: { url: \"http://127.0.0.1:9/e\", secret: s }\n";
    ErrorCase cases[] = {
        // A set naming a destination that does not exist.
        {with("event_destinations:\n  - name: main\n" + hook, ", event_destinations: [mian]"), 10,
         55, "no event destination named \"mian\""},
        {with("", ", event_destinations: [main]"), 10, 55, "no event destination named \"main\""},
        {with("event_destinations:\n  - name: main\n" + hook, ", event_destinations: [main, main]"),
         10, 61, "\"main\" is listed twice"},
        // URLs: scheme, host, spaces.
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"ftp://x/e\", secret: s }\n"),
         13, 21, "expected an http:// or https:// URL"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"127.0.0.1:9/e\", secret: s "
              "}\n"),
         13, 21, "expected an http:// or https:// URL"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http:///e\", secret: s }\n"),
         13, 21, "with a host"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://a b/\", secret: s "
              "}\n"),
         13, 21, "without spaces"},
        // Missing and bad keys.
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\" }\n"), 13, 14,
         "missing required key \"secret\""},
        {with("event_destinations:\n  - name: m\n"), 12, 5, "missing required key \"webhook\""},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\", secret: s, "
              "retries: 3 }\n"),
         13, 45, "unknown key \"retries\""},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\", secret: s, "
              "timeout: 10 }\n"),
         13, 54, "the unit is required"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\", secret: s, "
              "max_in_flight: 0 }\n"),
         13, 60, "expected an integer from 1 to 1000"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\", secret: s, "
              "batch: 1001 }\n"),
         13, 52, "expected an integer from 1 to 1000"},
        {with("event_destinations:\n  - name: m\n    webhook: { url: \"http://x/\", secret: s, "
              "retry_window: 500ms }\n"),
         13, 59, "expected a duration from 1s"},
        // Event lists.
        {with("event_destinations:\n  - name: m\n" + hook + "    events: [send, opens]\n"), 14, 20,
         "expected send, delivery, bounce, complaint, reject, delivery_delay, open, click or "
         "subscription"},
        {with("event_destinations:\n  - name: m\n" + hook + "    events: []\n"), 14, 13,
         "must list at least one event type"},
        {with("event_destinations:\n  - name: m\n" + hook + "    events: [send, send]\n"), 14, 20,
         "\"send\" is listed twice"},
        // Names.
        {with("event_destinations:\n  - name: m\n" + hook + "  - name: m\n" + hook), 14, 11,
         "an event destination named \"m\" is already defined"},
        {with("event_destinations:\n  - name: \"a b\"\n" + hook), 12, 11,
         "expected a name of up to 64 letters"},
    };
    for (const auto& c : cases) {
      INFO("yaml:\n", c.yaml);
      auto r = load_string(c.yaml, "test.yaml");
      REQUIRE_FALSE(r.config);
      REQUIRE(r.error);
      INFO("got: ", r.error->to_string());
      INFO("want: test.yaml:", c.line, ":", c.col, ": ...", c.message, "...");
      CHECK(r.error->line == c.line);
      CHECK(r.error->col == c.col);
      CHECK(r.error->message.find(c.message) != std::string::npos);
    }
  }
}
