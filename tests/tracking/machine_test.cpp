#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mta/tracking/machine.hpp"

using namespace mta::tracking;

namespace {

const std::string kRulesPath = std::string(MTA_SOURCE_DIR) + "/config/tracking-rules.yaml";

std::vector<MachineRule> shipped() {
  auto r = load_machine_rules_file(kRulesPath);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return *r;
}

MachineRules build(std::vector<MachineRule> local = {}) {
  auto r = MachineRules::build(shipped(), std::move(local));
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(r).value();
}

std::vector<MachineRule> parse(const std::string& yaml) {
  auto r = parse_machine_rules(yaml, "local.yaml");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return *r;
}

std::string parse_error(const std::string& yaml) {
  auto r = parse_machine_rules(yaml, "local.yaml");
  return r.ok() ? "" : r.error().message;
}

const char* kChrome =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36";
const char* kAppleMailNoMpp =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";
const char* kGoogleProxy =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

}  // namespace

TEST_SUITE("tracking") {
  TEST_CASE("the shipped machine rules parse and build") {
    auto rules = build();
    CHECK(rules.rules().size() >= 10);
  }

  TEST_CASE("shipped machine rules table") {
    struct Case {
      Kind kind;
      std::string ua;
      std::string ip;
      int64_t since;
      bool head;
      bool machine;
      std::string reason;
    };
    const std::vector<Case> cases = {
        // humans
        {Kind::kOpen, kChrome, "198.51.100.7", 3600, false, false, ""},
        {Kind::kClick, kChrome, "198.51.100.7", 3600, false, false, ""},
        {Kind::kOpen, kAppleMailNoMpp, "198.51.100.7", 5, false, false, ""},
        {Kind::kClick, kChrome, "2001:db8::1", 60, false, false, ""},
        // a click from Apple's network is a person (Safari, Private Relay)
        {Kind::kClick, kChrome, "17.58.1.1", 60, false, false, ""},
        // a phone brand that contains "bot" is not a bot
        {Kind::kClick, "Mozilla/5.0 (Linux; Android 10; CUBOT X30)", "198.51.100.7", 60, false,
         false, ""},
        // Apple MPP
        {Kind::kOpen, "Mozilla/5.0", "203.0.113.9", 1, false, true, "apple-mpp"},
        {Kind::kOpen, "mozilla/5.0", "203.0.113.9", 86400, false, true, "apple-mpp"},
        {Kind::kOpen, kAppleMailNoMpp, "17.58.1.1", 3, false, true, "apple-mpp-ranges"},
        {Kind::kOpen, kAppleMailNoMpp, "::ffff:17.58.1.1", 3, false, true, "apple-mpp-ranges"},
        // image proxies
        {Kind::kOpen, kGoogleProxy, "66.249.84.1", 300, false, true, "google-image-proxy"},
        {Kind::kOpen, "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
         "98.136.1.1", 300, false, true, "yahoo-mail-proxy"},
        // scripts, empty user agents
        {Kind::kClick, "python-requests/2.31.0", "198.51.100.7", 600, false, true, "http-library"},
        {Kind::kOpen, "curl/8.4.0", "198.51.100.7", 600, false, true, "http-library"},
        {Kind::kClick, "Go-http-client/1.1", "198.51.100.7", 600, false, true, "http-library"},
        {Kind::kClick, "Mozilla/5.0 HeadlessChrome/120.0", "198.51.100.7", 600, false, true,
         "http-library"},
        {Kind::kClick, "", "198.51.100.7", 600, false, true, "empty-user-agent"},
        {Kind::kOpen, "  ", "198.51.100.7", 600, false, true, "empty-user-agent"},
        // link scanners
        {Kind::kClick, kChrome, "40.107.22.5", 600, false, true, "safe-links"},
        {Kind::kClick, kChrome, "104.47.1.9", 600, false, true, "safe-links"},
        {Kind::kClick, kChrome, "2a01:111:f400:fe1f::1", 600, false, true, "safe-links"},
        {Kind::kOpen, kChrome, "40.107.22.5", 600, false, false, ""},  // clicks only
        {Kind::kClick, "Mozilla/5.0 (compatible; Barracuda Sentinel)", "198.51.100.7", 600, false,
         true, "link-scanner"},
        {Kind::kClick, "Microsoft Office Existence Discovery", "198.51.100.7", 600, false, true,
         "link-scanner"},
        {Kind::kClick, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "198.51.100.7",
         600, false, true, "link-preview-bot"},
        {Kind::kClick, "Mozilla/5.0 (compatible; bot; +http://x)", "198.51.100.7", 600, false, true,
         "link-preview-bot"},
        // behaviour
        {Kind::kClick, kChrome, "198.51.100.7", 600, true, true, "head-then-get"},
        {Kind::kOpen, kChrome, "198.51.100.7", 600, true, true, "head-then-get"},
        {Kind::kClick, kChrome, "198.51.100.7", 1, false, true, "click-on-delivery"},
        {Kind::kClick, kChrome, "198.51.100.7", 0, false, true, "click-on-delivery"},
        {Kind::kClick, kChrome, "198.51.100.7", -3, false, true, "click-on-delivery"},
        {Kind::kClick, kChrome, "198.51.100.7", 2, false, false, ""},
        {Kind::kOpen, kChrome, "198.51.100.7", 0, false, false, ""},  // a quick open is fine
        // unknown client address: IP rules do not match
        {Kind::kOpen, kAppleMailNoMpp, "", 5, false, false, ""},
        {Kind::kOpen, kAppleMailNoMpp, "not-an-ip", 5, false, false, ""},
    };
    auto rules = build();
    for (const auto& c : cases) {
      Verdict v = rules.classify({c.kind, c.ua, c.ip, c.since, c.head});
      CAPTURE(to_string(c.kind));
      CAPTURE(c.ua);
      CAPTURE(c.ip);
      CAPTURE(c.since);
      CHECK_MESSAGE(v.machine == c.machine, "got reason=" << v.reason);
      CHECK(v.reason == c.reason);
    }
  }

  TEST_CASE("local rules come first and replace shipped rules of the same id") {
    auto local = parse(R"(rules:
  - id: qa-browser
    user_agent_contains: [OurQA/]
    machine: false
  - id: apple-mpp-ranges
    kind: open
    ips: [203.0.113.0/24]
)");
    auto rules = build(local);
    CHECK(rules.rules().front().id == "qa-browser");
    // The local human rule wins over the shipped scanner rules.
    auto v = rules.classify({Kind::kClick, "curl/8 OurQA/1", "198.51.100.7", 0, true});
    CHECK_FALSE(v.machine);
    CHECK(v.reason == "qa-browser");
    // The replaced rule no longer matches Apple's range, the new one matches.
    CHECK(rules.classify({Kind::kOpen, kAppleMailNoMpp, "17.1.1.1", 60, false}).reason == "");
    CHECK(rules.classify({Kind::kOpen, kAppleMailNoMpp, "203.0.113.4", 60, false}).reason ==
          "apple-mpp-ranges");
    int n = 0;
    for (const auto& r : rules.rules()) n += r.id == "apple-mpp-ranges";
    CHECK(n == 1);
  }

  TEST_CASE("every condition of a rule must hold") {
    auto rules = MachineRules::build(parse(R"(rules:
  - id: all
    kind: click
    user_agent: 'scan'
    ips: [192.0.2.0/24]
    within: 10s
    head_seen: false
)"),
                                     {});
    REQUIRE(rules.ok());
    CHECK(rules->classify({Kind::kClick, "Scanner", "192.0.2.1", 9, false}).machine);
    CHECK_FALSE(rules->classify({Kind::kOpen, "Scanner", "192.0.2.1", 9, false}).machine);
    CHECK_FALSE(rules->classify({Kind::kClick, "Browser", "192.0.2.1", 9, false}).machine);
    CHECK_FALSE(rules->classify({Kind::kClick, "Scanner", "192.0.3.1", 9, false}).machine);
    CHECK_FALSE(rules->classify({Kind::kClick, "Scanner", "192.0.2.1", 10, false}).machine);
    CHECK_FALSE(rules->classify({Kind::kClick, "Scanner", "192.0.2.1", 9, true}).machine);
  }

  TEST_CASE("bad rules files give FILE:LINE:COL errors") {
    struct Case {
      std::string yaml, want;
    };
    const std::vector<Case> cases = {
        {"rules:\n  - id: a\n    kind: bounce\n", "local.yaml:3:11: rule \"a\": kind: expected"},
        {"rules:\n  - id: a\n    user_agent: '('\n",
         "local.yaml:3:17: rule \"a\": user_agent: bad regex"},
        {"rules:\n  - id: a\n    ips: [10.0.0.0/33]\n", "local.yaml:3:11: rule \"a\": ips: not an"},
        {"rules:\n  - id: a\n    within: 10\n", "local.yaml:3:13: rule \"a\": within: expected"},
        {"rules:\n  - id: a\n    within: 0s\n", "local.yaml:3:13: rule \"a\": within: expected"},
        {"rules:\n  - id: a\n    head_seen: maybe\n", "local.yaml:3:16: rule \"a\": head_seen:"},
        {"rules:\n  - id: a\n    colour: red\n",
         "local.yaml:3:5: rule \"a\": unknown key \"colour\""},
        {"rules:\n  - kind: open\n", "local.yaml:2:5: rules[0]: missing id"},
        {"rules:\n  - id: Bad Id\n    kind: open\n", "local.yaml:2:9: rules[0]: id \"Bad Id\""},
        {"rules:\n  - id: a\n    machine: false\n", "local.yaml:2:5: rule \"a\": a rule needs"},
        {"rules:\n  - id: a\n    kind: open\n  - id: a\n    kind: click\n",
         "local.yaml:4:9: duplicate rule id \"a\""},
        {"rules:\n  - id: a\n    user_agent_contains: ['']\n",
         "local.yaml:3:27: rule \"a\": user_agent_contains"},
        {"rulez: []\n", "local.yaml:1:1: unknown key \"rulez\""},
        {"rules: {a: 1}\n", "local.yaml:1:8: rules: expected a list"},
        {"rules: [\n", "local.yaml:"},
        {"- a\n", "local.yaml:1:1: expected a map"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.yaml);
      std::string got = parse_error(c.yaml);
      CHECK_MESSAGE(got.rfind(c.want, 0) == 0, "got: " << got);
    }
  }

  TEST_CASE("build checks rules made in code and duplicate local ids") {
    MachineRule empty;
    empty.id = "x";
    auto r = MachineRules::build({}, {empty});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("at least one condition") != std::string::npos);

    MachineRule bad;
    bad.id = "y";
    bad.user_agent = "[";
    r = MachineRules::build({bad}, {});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("bad regex") != std::string::npos);

    MachineRule a;
    a.id = "a";
    a.head_seen = true;
    r = MachineRules::build({}, {a, a});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("duplicate rule id") != std::string::npos);
  }

  TEST_CASE("a missing rules file is an error naming it") {
    auto r = MachineRules::load_file("/nonexistent/tracking-rules.yaml");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("/nonexistent/tracking-rules.yaml: cannot open") == 0);
  }
}
