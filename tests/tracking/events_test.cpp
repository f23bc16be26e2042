// The SES shapes of the Open, Click and Subscription events
// (mta/events/outbox.hpp), written by the tracking listener.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "mta/events/outbox.hpp"

using nlohmann::json;
using namespace mta;

namespace {

queue::Message message() {
  queue::Message m;
  m.id = *core::MessageId::from_hex("0006613bb0d8761e0000ea3321954545");
  m.received_ms = 1795000000000;
  m.mail_from = "bounce@src.test";
  m.recipients = {"alice@example.org", "bob@example.org"};
  m.configuration_set = "marketing";
  m.tags = {{"campaign", "winter"}};
  m.client_ip = "192.0.2.1";
  m.headers = {{"From", "News <news@src.test>"}, {"Subject", "Sale"}};
  return m;
}

}  // namespace

TEST_SUITE("tracking") {
  TEST_CASE("Open event: SES shape, one recipient, machine verdict under mta") {
    events::Open o;
    o.recipient = "bob@example.org";
    o.now_ms = 1795000012345;
    o.ip_address = "198.51.100.7";
    o.user_agent = "Mozilla/5.0";
    o.machine = true;
    o.machine_reason = "apple-mpp";
    json e = json::parse(events::open_json(message(), o));
    CHECK(e["eventType"] == "Open");
    CHECK(e["mail"]["messageId"] == "0006613bb0d8761e0000ea3321954545");
    CHECK(e["mail"]["destination"] == json::array({"bob@example.org"}));
    CHECK(e["mail"]["tags"]["ses:configuration-set"] == json::array({"marketing"}));
    CHECK(e["mail"]["tags"]["campaign"] == json::array({"winter"}));
    CHECK(e["mail"]["commonHeaders"]["subject"] == "Sale");
    CHECK(e["open"] == json{{"ipAddress", "198.51.100.7"},
                            {"timestamp", "2026-11-18T11:06:52.345Z"},
                            {"userAgent", "Mozilla/5.0"}});
    CHECK(e["mta"] == json{{"machine", true},
                           {"machineReason", "apple-mpp"},
                           {"recipient", "bob@example.org"}});
  }

  TEST_CASE("Click event: link, linkTags as lists, link index") {
    events::Click c;
    c.recipient = "alice@example.org";
    c.now_ms = 1795000000000;
    c.ip_address = "2001:db8::1";
    c.user_agent = "Chrome";
    c.link = "https://example.com/?a=1&b=2";
    c.link_tags = "campaign:winter; variant : b;;flag;:x";
    c.link_index = 4;
    json e = json::parse(events::click_json(message(), c));
    CHECK(e["eventType"] == "Click");
    CHECK(e["mail"]["destination"] == json::array({"alice@example.org"}));
    CHECK(e["click"]["link"] == "https://example.com/?a=1&b=2");
    CHECK(e["click"]["linkTags"] ==
          json{{"campaign", {"winter"}}, {"variant", {"b"}}, {"flag", {""}}});
    CHECK(e["click"]["ipAddress"] == "2001:db8::1");
    CHECK(e["click"]["userAgent"] == "Chrome");
    CHECK(e["mta"]["machine"] == false);
    CHECK_FALSE(e["mta"].contains("machineReason"));
    CHECK(e["mta"]["linkIndex"] == 4);
    c.link_tags.clear();
    e = json::parse(events::click_json(message(), c));
    CHECK(e["click"]["linkTags"] == json::object());
  }

  TEST_CASE("Subscription event: topic, whole list, configuration set") {
    events::Subscription s;
    s.recipient = "alice@example.org";
    s.now_ms = 1795000000000;
    s.contact_list = "newsletter";
    s.topic = "weekly";
    s.ip_address = "198.51.100.7";
    json e = json::parse(events::subscription_json(message(), s));
    CHECK(e["eventType"] == "Subscription");
    CHECK(e["mail"]["destination"] == json::array({"alice@example.org"}));
    CHECK(e["subscription"]["contactList"] == "newsletter");
    CHECK(e["subscription"]["source"] == "UnsubscribeHeader");
    CHECK(e["subscription"]["timestamp"] == "2026-11-18T11:06:40.000Z");
    CHECK(e["subscription"]["newTopicPreferences"] ==
          json{{"unsubscribeAll", false},
               {"topicSubscriptionStatus",
                {{{"topicName", "weekly"}, {"subscriptionStatus", "OptOut"}}}}});
    CHECK(e["subscription"]["oldTopicPreferences"] ==
          json{{"unsubscribeAll", false},
               {"topicSubscriptionStatus",
                {{{"topicName", "weekly"}, {"subscriptionStatus", "OptIn"}}}}});
    CHECK(e["mta"]["scope"] == "contact_list");

    s.topic.clear();
    e = json::parse(events::subscription_json(message(), s));
    CHECK(e["subscription"]["newTopicPreferences"] ==
          json{{"unsubscribeAll", true}, {"topicSubscriptionStatus", json::array()}});

    s.contact_list = "marketing";
    s.configuration_set_scope = true;
    e = json::parse(events::subscription_json(message(), s));
    CHECK(e["subscription"]["contactList"] == "marketing");
    CHECK(e["mta"]["scope"] == "configuration_set");
  }

  TEST_CASE("a message known only from its token still has SES's mail fields") {
    queue::Message m;
    m.id = *core::MessageId::from_hex("0006613bb0d8761e0000ea3321954545");
    m.received_ms = 1795000000000;
    m.recipients = {"alice@example.org"};
    m.configuration_set = "marketing";
    events::Open o;
    o.recipient = "alice@example.org";
    json e = json::parse(events::open_json(m, o));
    CHECK(e["mail"]["commonHeaders"] == json::object());
    CHECK(e["mail"]["headers"] == json::array());
    CHECK(e["mail"]["tags"] == json{{"ses:configuration-set", {"marketing"}}});
    CHECK(e["mail"]["destination"] == json::array({"alice@example.org"}));
  }

  TEST_CASE("invalid UTF-8 in a user agent does not throw") {
    events::Open o;
    o.recipient = "bob@example.org";
    o.user_agent = std::string("bad \xff\xfe agent");
    std::string j;
    CHECK_NOTHROW(j = events::open_json(message(), o));
    CHECK(json::parse(j)["open"]["userAgent"].get<std::string>().find("bad ") == 0);
  }
}
