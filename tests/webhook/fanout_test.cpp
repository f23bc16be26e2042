// Which destinations get an event, and the body they get.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "mta/config/config.hpp"
#include "mta/core/id.hpp"
#include "mta/webhook/fanout.hpp"

using namespace mta;
using namespace mta::webhook;

namespace {

config::Config config_with_destinations() {
  auto r = config::load_string(
      "spool_dir: /tmp/spool\n"
      "smtp: { listeners: [{ listen: \"127.0.0.1:2525\" }] }\n"
      "ip_pools: [{ name: main, ips: [{ address: 192.0.2.1 }] }]\n"
      "event_destinations:\n"
      "  - { name: all, webhook: { url: \"http://127.0.0.1:1/a\", secret: a } }\n"
      "  - { name: bounces, webhook: { url: \"http://127.0.0.1:1/b\", secret: b },\n"
      "      events: [bounce, complaint] }\n"
      "configuration_sets:\n"
      "  - { name: tx, ip_pool: main, event_destinations: [all, bounces] }\n"
      "  - { name: bulk, ip_pool: main, event_destinations: [bounces] }\n"
      "  - { name: quiet, ip_pool: main }\n",
      "test.yaml");
  REQUIRE(r.config);
  return *r.config;
}

std::string event(const std::string& type, const std::string& set, const std::string& extra = "") {
  return R"({"eventType":")" + type +
         R"(","mail":{"messageId":"m1","tags":{"ses:configuration-set":[")" + set + R"("]}})" +
         extra + "}";
}

}  // namespace

TEST_SUITE("webhook") {
  TEST_CASE("routing: a set's destinations that want the event type, in config order") {
    auto c = config_with_destinations();
    Routing r(c);
    using T = config::EventType;
    struct {
      std::string set;
      T type;
      std::vector<std::string> want;
    } cases[] = {
        {"tx", T::kSend, {"all"}},
        {"tx", T::kBounce, {"all", "bounces"}},
        {"tx", T::kComplaint, {"all", "bounces"}},
        {"tx", T::kDeliveryDelay, {"all"}},
        {"bulk", T::kDelivery, {}},
        {"bulk", T::kBounce, {"bounces"}},
        {"quiet", T::kBounce, {}},
        {"no-such-set", T::kBounce, {}},
        {"", T::kSend, {}},
    };
    for (const auto& k : cases) {
      INFO("set=", k.set, " type=", config::to_string(k.type));
      CHECK(r.route(k.set, k.type) == k.want);
    }
    CHECK_FALSE(r.empty());
    CHECK(Routing().empty());
  }

  TEST_CASE("a routed event's body is the outbox JSON plus mta.eventId") {
    auto c = config_with_destinations();
    Routing r(c);
    auto id = core::next_message_id();
    auto got = route_event(r, id.key(), event("Bounce", "tx", R"(,"mta":{"attempts":2})"));
    REQUIRE(got);
    CHECK(got->type == config::EventType::kBounce);
    CHECK(got->message_id == "m1");
    CHECK(got->destinations == std::vector<std::string>{"all", "bounces"});
    auto body = nlohmann::json::parse(got->body);
    CHECK(body["mta"]["eventId"] == id.hex());
    CHECK(body["mta"]["attempts"] == 2);  // our other fields stay
    CHECK(body["eventType"] == "Bounce");
    CHECK(body["mail"]["tags"]["ses:configuration-set"][0] == "tx");

    // Without an mta object, one is added.
    auto send = route_event(r, id.key(), event("Send", "tx"));
    REQUIRE(send);
    CHECK(nlohmann::json::parse(send->body)["mta"]["eventId"] == id.hex());
  }

  TEST_CASE("events nobody wants get no body; unreadable ones are refused") {
    auto c = config_with_destinations();
    Routing r(c);
    auto id = core::next_message_id();
    auto quiet = route_event(r, id.key(), event("Delivery", "bulk"));
    REQUIRE(quiet);
    CHECK(quiet->destinations.empty());
    CHECK(quiet->body.empty());
    CHECK(quiet->type == config::EventType::kDelivery);
    const char* bad[] = {"not json", "[]", R"({"mail":{}})", R"({"eventType":"Sent","mail":{}})",
                         R"({"eventType":7})"};
    for (const char* b : bad) {
      INFO(b);
      CHECK_FALSE(route_event(r, id.key(), b));
    }
    // A routed event needs a 16-byte key for its id.
    CHECK_FALSE(route_event(r, "short", event("Send", "tx")));
    // No set tag: no destination.
    auto untagged = route_event(r, id.key(), R"({"eventType":"Send","mail":{"messageId":"x"}})");
    REQUIRE(untagged);
    CHECK(untagged->destinations.empty());
  }
}
