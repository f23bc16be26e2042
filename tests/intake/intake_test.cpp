#include <doctest/doctest.h>

#include "mta/intake/intake.hpp"
#include "mta/protocol/message.hpp"

using namespace mta;

namespace {

config::Config make_config() {
  config::Config c;
  c.hostname = "mta.test";
  c.spool_dir = "/nonexistent";
  c.ip_pools = {{"p", {}, {}}};
  auto set = [](const char* name, config::Priority p) {
    config::ConfigurationSet s;
    s.name = name;
    s.ip_pool = "p";
    s.priority = p;
    return s;
  };
  c.configuration_sets = {set("default", config::Priority::kNormal),
                          set("marketing", config::Priority::kBulk),
                          set("app", config::Priority::kHigh)};
  c.default_configuration_set = "default";
  c.smtp.users = {{"app1", "secret", "app"}, {"plain", "secret", ""}};
  return c;
}

intake::Submission submission(std::string body) {
  intake::Submission s;
  s.mail_from = "a@src.test";
  s.recipients = {"b@dst.test"};
  s.body = std::move(body);
  s.client_ip = "127.0.0.1";
  s.helo = "client.test";
  s.protocol = "smtp";
  return s;
}

const int64_t kNow = 1795000000000;  // 2026-11-18T...Z

}  // namespace

TEST_SUITE("intake") {
  TEST_CASE("the configuration set comes from the header, then the user, then the default") {
    auto cfg = make_config();
    struct Case {
      const char* headers;
      const char* user;
      const char* want;
    } cases[] = {
        {"X-SES-CONFIGURATION-SET: marketing\r\n", "", "marketing"},
        {"x-ses-configuration-set: marketing\r\n", "app1", "marketing"},
        {"X-Configuration-Set: marketing\r\n", "", "marketing"},
        {"", "app1", "app"},
        {"", "plain", "default"},
        {"", "", "default"},
    };
    for (auto& c : cases) {
      INFO("headers=", c.headers, " user=", c.user, " want=", c.want);
      auto sub = submission(std::string(c.headers) + "Subject: hi\r\n\r\nbody\r\n");
      sub.auth_user = c.user;
      auto r = intake::prepare(cfg, std::move(sub), core::next_message_id(), kNow);
      REQUIRE(std::holds_alternative<intake::Prepared>(r));
      CHECK(std::get<intake::Prepared>(r).message.configuration_set == c.want);
    }
  }

  TEST_CASE("an unknown configuration set is refused with 554 5.3.0") {
    auto cfg = make_config();
    auto r = intake::prepare(cfg, submission("X-SES-CONFIGURATION-SET: nope\r\n\r\nx\r\n"),
                             core::next_message_id(), kNow);
    REQUIRE(std::holds_alternative<intake::Rejected>(r));
    auto& rej = std::get<intake::Rejected>(r);
    CHECK(rej.reply.code == 554);
    CHECK(rej.reply.enhanced == "5.3.0");
    CHECK(rej.reason == "unknown_configuration_set");
  }

  TEST_CASE("tags are parsed and both SES headers are removed from the stored message") {
    auto cfg = make_config();
    auto id = core::next_message_id();
    auto r = intake::prepare(cfg,
                             submission("From: a@src.test\r\n"
                                        "X-SES-CONFIGURATION-SET: marketing\r\n"
                                        "X-SES-MESSAGE-TAGS: campaign=nov, tier=gold\r\n"
                                        "Subject: hi\r\n\r\n"
                                        "X-SES-MESSAGE-TAGS: in the body stays\r\n"),
                             id, kNow);
    REQUIRE(std::holds_alternative<intake::Prepared>(r));
    auto& p = std::get<intake::Prepared>(r);
    using Tags = std::vector<std::pair<std::string, std::string>>;
    CHECK(p.message.tags == Tags{{"campaign", "nov"}, {"tier", "gold"}});
    std::string head = p.body.substr(0, p.body.find("\r\n\r\n"));
    CHECK(head.find("X-SES") == std::string::npos);
    CHECK(p.body.find("X-SES-MESSAGE-TAGS: in the body stays") != std::string::npos);
    CHECK(p.message.size == p.body.size());
  }

  TEST_CASE("malformed tags are refused with 554 5.6.0") {
    auto cfg = make_config();
    auto r = intake::prepare(cfg, submission("X-SES-MESSAGE-TAGS: no equals sign\r\n\r\nx\r\n"),
                             core::next_message_id(), kNow);
    REQUIRE(std::holds_alternative<intake::Rejected>(r));
    CHECK(std::get<intake::Rejected>(r).reply.enhanced == "5.6.0");
  }

  TEST_CASE("list management options: header or HTTP field, parsed, header removed") {
    auto cfg = make_config();
    struct Case {
      const char* value;
      const char* list;
      const char* topic;
    } ok[] = {{"newsletter", "newsletter", ""},
              {" newsletter ; topic=weekly-deals", "newsletter", "weekly-deals"},
              {"News_1;TOPIC=t", "News_1", "t"}};
    for (auto& c : ok) {
      INFO(c.value);
      auto r = intake::prepare(
          cfg,
          submission(std::string("X-SES-LIST-MANAGEMENT-OPTIONS: ") + c.value + "\r\n\r\nx\r\n"),
          core::next_message_id(), kNow);
      REQUIRE(std::holds_alternative<intake::Prepared>(r));
      auto& p = std::get<intake::Prepared>(r);
      CHECK(p.message.list_name == c.list);
      CHECK(p.message.list_topic == c.topic);
      CHECK(p.body.find("X-SES-LIST") == std::string::npos);
    }
    for (const char* bad : {"", "news letter", "list; topic=", "list; weekly", "l\xc3\xa9"}) {
      INFO(bad);
      auto r = intake::prepare(
          cfg, submission(std::string("X-SES-LIST-MANAGEMENT-OPTIONS: ") + bad + "\r\n\r\nx\r\n"),
          core::next_message_id(), kNow);
      REQUIRE(std::holds_alternative<intake::Rejected>(r));
      CHECK(std::get<intake::Rejected>(r).reply.enhanced == "5.6.0");
      CHECK(std::get<intake::Rejected>(r).reason == "bad_list_options");
    }
    // The HTTP field wins over the header.
    auto sub = submission("X-SES-LIST-MANAGEMENT-OPTIONS: fromheader\r\n\r\nx\r\n");
    sub.list_management = std::make_pair(std::string("api"), std::string("topic"));
    auto r = intake::prepare(cfg, std::move(sub), core::next_message_id(), kNow);
    REQUIRE(std::holds_alternative<intake::Prepared>(r));
    CHECK(std::get<intake::Prepared>(r).message.list_name == "api");
    CHECK(std::get<intake::Prepared>(r).message.list_topic == "topic");
  }

  TEST_CASE("trace headers are added first and Message-ID and Date only when missing") {
    auto cfg = make_config();
    auto id = core::next_message_id();
    auto r = intake::prepare(cfg, submission("Subject: hi\r\n\r\nbody\r\n"), id, kNow);
    auto& p = std::get<intake::Prepared>(r);
    CHECK(p.body.rfind("Received: from client.test ([127.0.0.1])", 0) == 0);
    auto received = protocol::header_value(p.body, "Received");
    REQUIRE(received);
    CHECK(received->find("by mta.test (mta) with ESMTP id " + id.hex()) != std::string::npos);
    CHECK(p.body.find("X-MTA-Message-ID: " + id.hex() + "\r\n") != std::string::npos);
    CHECK(p.body.find("Message-ID: <" + id.hex() + "@mta.test>\r\n") != std::string::npos);
    CHECK(p.body.find("\r\nDate: ") != std::string::npos);

    auto kept = intake::prepare(cfg,
                                submission("Message-ID: <mine@x>\r\nDate: Thu, 1 Jan 2026 "
                                           "00:00:00 +0000\r\n\r\nbody\r\n"),
                                id, kNow);
    auto& k = std::get<intake::Prepared>(kept);
    CHECK(k.body.find("Message-ID: <" + id.hex()) == std::string::npos);
    CHECK(k.body.find("Message-ID: <mine@x>") != std::string::npos);
    CHECK(k.body.find("Date: Thu, 1 Jan 2026") != std::string::npos);
    size_t dates = 0;
    for (size_t at = k.body.find("\nDate:"); at != std::string::npos;
         at = k.body.find("\nDate:", at + 1))
      ++dates;
    CHECK(dates == 1);
  }
}
