#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mta/bounce/classifier.hpp"
#include "tests/bounce/replies_table.hpp"

using namespace mta::bounce;
using mta::protocol::Reply;

namespace {

const std::string kRulesPath = std::string(MTA_SOURCE_DIR) + "/config/bounce-rules.yaml";
const std::string kTablePath = std::string(MTA_SOURCE_DIR) + "/tests/bounce/replies.tsv";

std::vector<Rule> shipped_rules() {
  auto rules = load_rules_file(kRulesPath);
  REQUIRE_MESSAGE(rules.ok(), (rules.ok() ? "" : rules.error().message));
  return *rules;
}

Classifier build(std::vector<Rule> shipped, std::vector<Rule> operator_rules = {}) {
  auto c = Classifier::build(std::move(shipped), std::move(operator_rules));
  REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
  return std::move(c).value();
}

std::vector<Rule> parse(const std::string& yaml) {
  auto rules = parse_rules(yaml, "operator.yaml");
  REQUIRE_MESSAGE(rules.ok(), (rules.ok() ? "" : rules.error().message));
  return *rules;
}

// The error parse_rules() gives for `yaml`, or "" when it parses.
std::string parse_error(const std::string& yaml) {
  auto rules = parse_rules(yaml, "ops.yaml");
  return rules.ok() ? "" : rules.error().message;
}

std::string describe(const Classification& c) {
  return std::string(to_string(c.type)) + "/" + to_string(c.subtype) + "/" + to_string(c.category) +
         " suppress=" + (c.suppress ? "1" : "0") + " throttle=" + (c.throttle ? "1" : "0") +
         " rule=" + c.rule_id;
}

std::string percent(int ok, int total) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", total ? 100.0 * ok / total : 0.0);
  return std::string(buf) + " (" + std::to_string(ok) + "/" + std::to_string(total) + ")";
}

}  // namespace

TEST_SUITE("bounce") {
  TEST_CASE("the shipped rules parse and build") {
    auto rules = shipped_rules();
    CHECK(rules.size() > 50);
    Classifier c = build(rules);
    CHECK(c.rules().size() == rules.size());
    // Every rule id is unique and every rule says where it was written.
    std::set<std::string> ids;
    for (const Rule& r : rules) {
      CHECK(ids.insert(r.id).second);
      CHECK(r.where.file == kRulesPath);
      CHECK(r.where.line > 0);
    }
  }

  TEST_CASE("real provider replies are classified as their providers mean them") {
    std::string error;
    auto rows = testing::load_rows(kTablePath, &error);
    REQUIRE_MESSAGE(error.empty(), error);
    REQUIRE(rows.size() >= 150);
    Classifier c = build(shipped_rules());

    int type_ok = 0, subtype_ok = 0, category_ok = 0, suppress_ok = 0, throttle_ok = 0, all_ok = 0;
    for (const auto& row : rows) {
      Classification got = c.classify(row.reply, row.stage, row.provider);
      const Classification& want = row.want;
      bool t = got.type == want.type, s = got.subtype == want.subtype,
           k = got.category == want.category, p = got.suppress == want.suppress,
           h = got.throttle == want.throttle;
      type_ok += t;
      subtype_ok += s;
      category_ok += k;
      suppress_ok += p;
      throttle_ok += h;
      all_ok += t && s && k && p && h;
      INFO("replies.tsv:", row.line, " [", row.provider, "] ", row.wire);
      INFO("got  ", describe(got));
      INFO("want ", describe(want));
      INFO("source ", row.source);
      CHECK((t && s && k && p && h));
    }
    int n = static_cast<int>(rows.size());
    MESSAGE("classified ", n, " real replies; accuracy per field:");
    MESSAGE("  type     ", percent(type_ok, n));
    MESSAGE("  subtype  ", percent(subtype_ok, n));
    MESSAGE("  category ", percent(category_ok, n));
    MESSAGE("  suppress ", percent(suppress_ok, n));
    MESSAGE("  throttle ", percent(throttle_ok, n));
    MESSAGE("  all five ", percent(all_ok, n));
  }

  TEST_CASE("the table covers every category, the providers and the misleading codes") {
    std::string error;
    auto rows = testing::load_rows(kTablePath, &error);
    REQUIRE_MESSAGE(error.empty(), error);
    std::set<Category> categories;
    std::map<std::string, int> providers;
    int misleading = 0, suppressed = 0, throttled = 0;
    for (const auto& row : rows) {
      categories.insert(row.want.category);
      ++providers[row.provider];
      misleading += row.source.find("[misleading") != std::string::npos;
      suppressed += row.want.suppress;
      throttled += row.want.throttle;
    }
    for (int i = 0; i <= static_cast<int>(Category::kVirusRelated); ++i) {
      INFO("category ", to_string(static_cast<Category>(i)));
      CHECK(categories.count(static_cast<Category>(i)) == 1);
    }
    for (const char* p : {"gmail", "microsoft", "yahoo", "icloud", "comcast", "gmx", "orange",
                          "yandex", "mailru"}) {
      INFO("provider ", p);
      CHECK(providers[p] > 0);
    }
    CHECK(misleading >= 20);
    CHECK(suppressed >= 30);
    CHECK(throttled >= 30);
    MESSAGE(rows.size(), " rows: ", misleading, " misleading codes, ", suppressed, " suppress, ",
            throttled, " throttle");
  }

  TEST_CASE("texts win over misleading codes") {
    Classifier c = build(shipped_rules());
    struct Case {
      Reply reply;
      Stage stage;
      const char* provider;
      const char* want_rule;
      bool suppress;
      bool throttle;
      BounceType type;
    } cases[] = {
        // Over quota sent as 5.1.1 (Orange): no suppression, retry.
        {{552, "5.1.1", "Boite du destinataire pleine. Recipient overquota."},
         Stage::kRcpt,
         "orange",
         "mailbox-full",
         false,
         false,
         BounceType::kTransient},
        // A rate limit sent as 5.2.1 (Gmail).
        {{550, "5.2.1",
          "The user you are trying to contact is receiving email at a rate that prevents "
          "additional messages from being delivered."},
         Stage::kRcpt,
         "gmail",
         "rate-limit",
         false,
         true,
         BounceType::kTransient},
        // A sender rate limit sent as 5.1.90 (Microsoft).
        {{550, "5.1.90",
          "Your message can't be sent because you've reached your daily limit for message "
          "recipients"},
         Stage::kMail,
         "microsoft",
         "sender-limit-exceeded",
         false,
         true,
         BounceType::kTransient},
        // A 4xx carrying 5.x.x: the parser leaves the code in the text.
        {{421, "",
          "5.7.32 Your email was blocked because the From: header (RFC5322) in this message "
          "isn't aligned with either the authenticated SPF or DKIM organizational domain."},
         Stage::kData,
         "gmail",
         "gmail-dmarc-alignment-blocked",
         false,
         false,
         BounceType::kPermanent},
        // The Postal pain point: a reputation block is not a bad address.
        {{550, "5.7.1",
          "Our system has detected that this message is likely suspicious due to the very low "
          "reputation of the sending IP address."},
         Stage::kData,
         "gmail",
         "gmail-reputation-block",
         false,
         false,
         BounceType::kPermanent},
        // "No such user!" sent as 5.7.1 (Yandex) is a bad address.
        {{550, "5.7.1", "No such user!"},
         Stage::kRcpt,
         "yandex",
         "unknown-recipient",
         true,
         false,
         BounceType::kPermanent},
    };
    for (const auto& cs : cases) {
      Classification got = c.classify(cs.reply, cs.stage, cs.provider);
      INFO(cs.reply.to_string(), " -> ", describe(got));
      CHECK(got.rule_id == cs.want_rule);
      CHECK(got.suppress == cs.suppress);
      CHECK(got.throttle == cs.throttle);
      CHECK(got.type == cs.type);
    }
  }

  TEST_CASE("an operator rule replaces the shipped rule with the same id") {
    auto shipped = shipped_rules();
    // An operator who never wants automatic suppression of unknown users.
    auto ops = parse(R"(rules:
  - id: unknown-recipient
    pattern: 'does not exist|user unknown'
    category: bad-mailbox
)");
    Classifier c = build(shipped, ops);
    CHECK(c.rules().size() == shipped.size());
    CHECK(c.rules().front().id == "unknown-recipient");
    CHECK(c.rules().front().where.file == "operator.yaml");
    int copies = 0;
    for (const Rule& r : c.rules()) copies += r.id == "unknown-recipient";
    CHECK(copies == 1);

    Reply gmail{550, "5.1.1", "The email account that you tried to reach does not exist."};
    Classification got = c.classify(gmail, Stage::kRcpt, "gmail");
    CHECK(got.rule_id == "unknown-recipient");
    CHECK(got.category == Category::kBadMailbox);
    CHECK_FALSE(got.suppress);
    CHECK(got.subtype == SubType::kGeneral);

    // The shipped rule still suppresses without the override.
    Classifier plain = build(shipped);
    CHECK(plain.classify(gmail, Stage::kRcpt, "gmail").suppress);
  }

  TEST_CASE("operator rules are tried first, in their order") {
    auto ops = parse(R"(rules:
  - id: acme-quota-is-final
    provider: acme
    pattern: 'over quota'
    type: Permanent
    category: quota-issues
  - id: acme-everything-else
    provider: acme
    category: other
  - id: rate-limit
    pattern: 'slow down'
    type: Transient
    category: policy-related
    throttle: true
)");
    Classifier c = build(shipped_rules(), ops);
    REQUIRE(c.rules().size() >= 3);
    CHECK(c.rules()[0].id == "acme-quota-is-final");
    CHECK(c.rules()[1].id == "acme-everything-else");
    CHECK(c.rules()[2].id == "rate-limit");

    Reply full{452, "4.2.2", "user is over quota"};
    Classification acme = c.classify(full, Stage::kRcpt, "acme");
    CHECK(acme.rule_id == "acme-quota-is-final");
    CHECK(acme.type == BounceType::kPermanent);
    // Another provider still gets the shipped rule.
    Classification other = c.classify(full, Stage::kRcpt, "gmail");
    CHECK(other.rule_id == "mailbox-full");
    CHECK(other.type == BounceType::kTransient);
    CHECK(other.subtype == SubType::kMailboxFull);
    // Provider names compare without case.
    CHECK(c.classify(full, Stage::kRcpt, "ACME").rule_id == "acme-quota-is-final");
    // The first matching operator rule wins over the later one.
    CHECK(c.classify({550, "5.1.1", "no such user"}, Stage::kRcpt, "acme").rule_id ==
          "acme-everything-else");
    // The replaced "rate-limit" no longer knows "too many sessions".
    CHECK(c.classify({421, "", "Too many sessions opened"}, Stage::kMail, "").rule_id !=
          "rate-limit");
  }

  TEST_CASE("build refuses an id used twice among the operator rules") {
    auto first = parse("rules:\n  - id: a\n    category: other\n");
    auto second = parse_rules(
        "rules:\n  - id: b\n    category: other\n  - id: a\n    category: spam-related\n",
        "second.yaml");
    REQUIRE(second.ok());
    std::vector<Rule> ops = first;
    ops.insert(ops.end(), second->begin(), second->end());
    auto c = Classifier::build({}, ops);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message ==
          "second.yaml:4:5: duplicate rule id \"a\" (first defined at operator.yaml:2:5)");
  }

  TEST_CASE("build checks rules made in code") {
    Rule r;
    r.id = "bad";
    r.pattern = "(unclosed";
    r.category = Category::kOther;
    auto c = Classifier::build({r}, {});
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message == "rule \"bad\": bad pattern: missing ): (unclosed");

    Rule pairing;
    pairing.id = "pairing";
    pairing.type = BounceType::kPermanent;
    pairing.subtype = SubType::kMailboxFull;
    auto p = Classifier::build({pairing}, {});
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message ==
          "rule \"pairing\": subtype MailboxFull does not go with type Permanent (SES pairs)");
  }

  TEST_CASE("parse errors point at the offending node") {
    struct Case {
      const char* yaml;
      const char* want;
    } cases[] = {
        {"rules:\n  - id: a\n    pattern: 'user (unknown'\n    category: bad-mailbox\n",
         "ops.yaml:3:14: rule \"a\": pattern: bad pattern: missing ): user (unknown"},
        {"rules:\n  - id: a\n    category: bad-mailboxes\n",
         "ops.yaml:3:15: rule \"a\": category: unknown category \"bad-mailboxes\" (expected one "
         "of: bad-configuration, bad-connection, bad-domain, bad-mailbox, content-related, "
         "inactive-mailbox, invalid-sender, message-expired, no-answer-from-host, other, "
         "policy-related, protocol-errors, quota-issues, relaying-issues, routing-errors, "
         "spam-related, virus-related)"},
        {"rules:\n  - id: a\n    category: other\n    patern: 'x'\n",
         "ops.yaml:4:5: rule \"a\": unknown key \"patern\""},
        {"rules:\n  - id: a\n    category: other\n  - id: b\n    category: other\n  - id: a\n    "
         "category: spam-related\n",
         "ops.yaml:6:9: duplicate rule id \"a\" (first defined at line 2)"},
        {"rules:\n  - category: other\n    pattern: x\n", "ops.yaml:2:5: rules[0]: missing id"},
        {"rules:\n  - id: a\n    category: other\n    stages: [rcpt, helo]\n",
         "ops.yaml:4:20: rule \"a\": stages: unknown stage \"helo\" (expected one of: connect, "
         "ehlo, mail, rcpt, data)"},
        {"rules:\n  - id: a\n    type: Temporary\n    category: other\n",
         "ops.yaml:3:11: rule \"a\": type: unknown type \"Temporary\" (expected one of: "
         "Permanent, Transient, Undetermined)"},
        {"rules:\n  - id: a\n    subtype: Full\n    category: other\n",
         "ops.yaml:3:14: rule \"a\": subtype: unknown subtype \"Full\" (expected one of: General, "
         "NoEmail, Suppressed, OnAccountSuppressionList, MailboxFull, MessageTooLarge, "
         "ContentRejected, AttachmentRejected)"},
        {"rules:\n  - id: a\n    type: Permanent\n    subtype: MailboxFull\n    category: "
         "quota-issues\n",
         "ops.yaml:4:14: rule \"a\": subtype MailboxFull does not go with type Permanent (SES "
         "pairs)"},
        {"rules:\n  - id: a\n    type: Transient\n    category: other\n    suppress: true\n",
         "ops.yaml:5:15: rule \"a\": suppress needs type Permanent (or no type), not Transient"},
        {"rules:\n  - id: a\n    codes: [550, 5x1]\n    category: other\n",
         "ops.yaml:3:18: rule \"a\": codes: bad reply code \"5x1\" (expected e.g. 550 or "
         "\"5xx\")"},
        {"rules:\n  - id: a\n    enhanced: '5.1'\n    category: other\n",
         "ops.yaml:3:15: rule \"a\": enhanced: bad enhanced code \"5.1\" (e.g. \"5.1.1\", "
         "\"5.1.\", \"x.7.\")"},
        {"rules:\n  - id: a\n    suppress: yes\n    category: other\n",
         "ops.yaml:3:15: rule \"a\": suppress: expected true or false, got \"yes\""},
        {"rules:\n  - id: a\n", "ops.yaml:2:5: rule \"a\": missing category"},
        {"rules:\n  - id: a\n    category: other\n   bad indent: [\n",
         "ops.yaml:4:4: end of sequence not found"},
        {"rule:\n  - id: a\n", "ops.yaml:1:1: unknown key \"rule\" (expected \"rules\")"},
        {"- id: a\n", "ops.yaml:1:1: expected a map with a top-level \"rules\" list"},
        {"rules:\n  - id: a\n    provider: Gmail\n    category: other\n",
         "ops.yaml:3:15: rule \"a\": provider: bad provider \"Gmail\" (lowercase letters, "
         "digits, - _ .)"},
    };
    for (const auto& cs : cases) {
      INFO(cs.yaml);
      CHECK(parse_error(cs.yaml) == std::string(cs.want));
    }
  }

  TEST_CASE("a missing rules file is an error naming it") {
    auto rules = load_rules_file("/nonexistent/bounce-rules.yaml");
    REQUIRE_FALSE(rules.ok());
    CHECK(rules.error().message ==
          "/nonexistent/bounce-rules.yaml: cannot open: No such file or directory");
  }

  TEST_CASE("with no rule matching, the reply class decides and nothing is suppressed") {
    Classifier c = build({});
    struct Case {
      Reply reply;
      BounceType type;
      Category category;
      const char* rule;
    } cases[] = {
        {{451, "4.3.0", "try later"}, BounceType::kTransient, Category::kOther, "fallback:4xx"},
        {{550, "5.1.1", "user unknown"}, BounceType::kPermanent, Category::kOther, "fallback:5xx"},
        {{0, "", "connection reset"},
         BounceType::kTransient,
         Category::kBadConnection,
         "fallback:connection"},
        {{250, "2.0.0", "ok"}, BounceType::kUndetermined, Category::kOther, "fallback:other"},
    };
    for (const auto& cs : cases) {
      Classification got = c.classify(cs.reply, Stage::kRcpt);
      INFO(cs.reply.to_string(), " -> ", describe(got));
      CHECK(got.type == cs.type);
      CHECK(got.subtype == SubType::kGeneral);
      CHECK(got.category == cs.category);
      CHECK_FALSE(got.suppress);
      CHECK_FALSE(got.throttle);
      CHECK(got.rule_id == cs.rule);
    }
  }

  TEST_CASE("conditions: codes, enhanced codes, stages, providers") {
    auto rules = parse(R"(rules:
  - id: class-4
    codes: ["4xx"]
    enhanced: "x.7."
    category: policy-related
  - id: exact
    codes: [550]
    enhanced: "5.1.1"
    stages: [rcpt]
    category: bad-mailbox
  - id: provider-only
    provider: gmail
    category: other
)");
    Classifier c = build(rules);
    CHECK(c.classify({421, "4.7.0", "x"}, Stage::kMail).rule_id == "class-4");
    CHECK(c.classify({421, "", "4.7.0 x"}, Stage::kMail).rule_id == "class-4");
    // Enhanced code in the text only when it is the first token.
    CHECK(c.classify({421, "", "see 4.7.0"}, Stage::kMail).rule_id == "fallback:4xx");
    CHECK(c.classify({550, "5.1.1", "x"}, Stage::kRcpt).rule_id == "exact");
    CHECK(c.classify({550, "5.1.1", "x"}, Stage::kData).rule_id == "fallback:5xx");
    // An unknown stage never satisfies a stage condition.
    CHECK(c.classify({550, "5.1.1", "x"}, Stage::kAny).rule_id == "fallback:5xx");
    CHECK(c.classify({551, "5.1.1", "x"}, Stage::kRcpt).rule_id == "fallback:5xx");
    CHECK(c.classify({551, "5.1.1", "x"}, Stage::kRcpt, "gmail").rule_id == "provider-only");
  }

  TEST_CASE("a temporary reply never suppresses and subtypes follow the resolved type") {
    auto rules = parse(R"(rules:
  - id: unknown
    pattern: 'unknown'
    subtype: NoEmail
    category: bad-mailbox
    suppress: true
  - id: full
    pattern: 'full'
    subtype: MailboxFull
    category: quota-issues
)");
    Classifier c = build(rules);
    Classification perm = c.classify({550, "", "user unknown"}, Stage::kRcpt);
    CHECK(perm.type == BounceType::kPermanent);
    CHECK(perm.subtype == SubType::kNoEmail);
    CHECK(perm.suppress);
    Classification temp = c.classify({450, "", "user unknown"}, Stage::kRcpt);
    CHECK(temp.type == BounceType::kTransient);
    CHECK(temp.subtype == SubType::kGeneral);
    CHECK_FALSE(temp.suppress);
    CHECK(c.classify({452, "", "mailbox full"}, Stage::kRcpt).subtype == SubType::kMailboxFull);
    CHECK(c.classify({552, "", "mailbox full"}, Stage::kRcpt).subtype == SubType::kGeneral);
  }

  TEST_CASE("patterns see multi-line replies with whitespace collapsed") {
    auto rules = parse(
        "rules:\n  - id: r\n    pattern: 'unusual rate of unsolicited mail'\n"
        "    category: spam-related\n");
    Classifier c = build(rules);
    Reply r = testing::make_reply(
        "421-4.7.0 Our system has detected an unusual rate of\\n421 4.7.0 unsolicited   mail");
    REQUIRE(r.code == 421);
    CHECK(r.text.find('\n') != std::string::npos);
    CHECK(c.classify(r, Stage::kData).rule_id == "r");
  }

  TEST_CASE("long and non-UTF-8 reply texts are classified, not refused") {
    Classifier c = build(shipped_rules());
    // 1 MiB of filler before the words that matter.
    Reply long_reply{550, "5.1.1", std::string(1 << 20, 'x') + " user unknown"};
    CHECK(c.classify(long_reply, Stage::kRcpt).rule_id == "unknown-recipient");
    // Latin-1 and broken UTF-8 bytes around the text.
    Reply bytes{552, "5.2.2", "Bo\xeete pleine \xff\xfe mailbox full \xc3"};
    Classification got = c.classify(bytes, Stage::kRcpt);
    CHECK(got.rule_id == "mailbox-full");
    CHECK(got.subtype == SubType::kMailboxFull);
  }

  TEST_CASE("names round-trip") {
    for (int i = 0; i < 5; ++i) {
      auto s = static_cast<Stage>(i);
      CHECK(parse_stage(to_string(s)) == s);
    }
    CHECK_FALSE(parse_stage("any"));
    for (int i = 0; i < 3; ++i) {
      auto t = static_cast<BounceType>(i);
      CHECK(parse_bounce_type(to_string(t)) == t);
    }
    for (int i = 0; i < 8; ++i) {
      auto s = static_cast<SubType>(i);
      CHECK(parse_subtype(to_string(s)) == s);
    }
    for (int i = 0; i < 17; ++i) {
      auto k = static_cast<Category>(i);
      CHECK(parse_category(to_string(k)) == k);
    }
    CHECK(std::string(to_string(Category::kNoAnswerFromHost)) == "no-answer-from-host");
    CHECK(std::string(to_string(SubType::kMailboxFull)) == "MailboxFull");
    CHECK_FALSE(parse_category("Bad-Mailbox"));
  }

  TEST_CASE("provider names from MX hosts") {
    struct Case {
      const char* mx;
      const char* want;
    } cases[] = {
        {"gmail-smtp-in.l.google.com", "gmail"},
        {"aspmx.l.google.com.", "gmail"},
        {"example-com.mail.protection.outlook.com", "microsoft"},
        {"hotmail-com.olc.protection.outlook.com", "microsoft"},
        {"mta5.am0.yahoodns.net", "yahoo"},
        {"mx-aol.mail.gm0.yahoodns.net", "yahoo"},
        {"mx01.mail.icloud.com", "icloud"},
        {"mx1.comcast.net", "comcast"},
        {"mx00.emig.gmx.net", "gmx"},
        {"MX-HA03.WEB.DE", "gmx"},
        {"mx00.kundenserver.de", "gmx"},
        {"smtp-in.orange.fr", "orange"},
        {"mx.yandex.net", "yandex"},
        {"mxs.mail.ru", "mailru"},
        {"mx.gmail.com.example", ""},
        {"notgmail.com", ""},
        {"mail.example.com", ""},
        {"", ""},
    };
    for (const auto& cs : cases) {
      INFO(cs.mx);
      CHECK(provider_from_mx(cs.mx) == std::string_view(cs.want));
    }
  }
}
