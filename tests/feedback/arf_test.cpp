#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "mta/feedback/arf.hpp"
#include "reports.hpp"

using namespace mta::feedback;

namespace {

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

Report must_parse(std::string_view text) {
  auto p = parse_report(text);
  INFO("error: ", p.error);
  REQUIRE(p.report.has_value());
  return *p.report;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_SUITE("feedback") {
  TEST_CASE("RFC 5965 B.1: the simple example has the required fields and the message") {
    for (auto text : {std::string(reports::kRfc5965Simple), crlf(reports::kRfc5965Simple)}) {
      Report r = must_parse(text);
      CHECK(r.format == Report::Format::kArf);
      CHECK(r.feedback_type == "abuse");
      CHECK(r.user_agent == "SomeGenerator/1.0");
      CHECK(r.version == "1");
      CHECK(r.original_rcpt_to.empty());
      CHECK(r.has_original);
      CHECK(r.message_id == "8787KJKJ3K4J3K4J3K4J3.mail@example.net");
      CHECK(r.mta_message_id.empty());
      CHECK(r.to_cc.empty());  // "<Undisclosed Recipients>" is no address
    }
  }

  TEST_CASE("RFC 5965 B.2: the optional fields") {
    Report r = must_parse(crlf(reports::kRfc5965Full));
    CHECK(r.original_mail_from == "somespammer@example.net");
    CHECK(r.original_rcpt_to == Strings{"user@example.com", "user@example.com"});
    CHECK(r.arrival_date == "Thu, 8 Mar 2005 14:00:00 EDT");
    CHECK(r.source_ip == "192.0.2.1");
    CHECK(r.reported_domain == "example.net");
  }

  TEST_CASE("AOL SComp: redacted recipient, Received-Date, our id in the copy") {
    Report r = must_parse(reports::kAol);
    CHECK(r.feedback_type == "abuse");
    CHECK(r.user_agent == "AOL SComp");
    CHECK(r.version == "0.1");
    CHECK(r.arrival_date == "Thu,  2 Sep 2010 15:12:11 -0400 (EDT)");
    CHECK(r.source_ip == "192.0.2.10");
    CHECK(r.original_rcpt_to.empty());
    CHECK(r.mta_message_id == reports::kOurId);  // lowercased
    CHECK(r.message_id == "<1283450583.6569@news.shop.example>");
    CHECK(r.to_cc == Strings{"redacted@aol.com"});
  }

  TEST_CASE("Yahoo CFL: Original-Rcpt-To and the full copy") {
    Report r = must_parse(crlf(reports::kYahoo));
    CHECK(r.user_agent == "Yahoo!-Mail-Feedback/2.0");
    CHECK(r.original_mail_from == "bounces@shop.example");
    CHECK(r.original_rcpt_to == Strings{"Some.User@yahoo.example"});
    CHECK(r.arrival_date == "Sun, 24 Feb 2013 13:44:08 PST");
    CHECK(r.mta_message_id == reports::kOurId);
    CHECK(r.message_id == "<deals-2013-02@shop.example>");
    CHECK(r.to_cc == Strings{"some.user@yahoo.example", "other@yahoo.example"});
  }

  TEST_CASE("Microsoft JMRP in ARF: the recipient only in X-HmXmrOriginalRecipient") {
    Report r = must_parse(reports::kJmrpArf);
    CHECK(r.format == Report::Format::kArf);
    CHECK(r.user_agent == "Microsoft JMRP");
    CHECK(r.arrival_date == "Tue, 03 Mar 2026 09:59:58 +0000");
    CHECK(r.original_rcpt_to.empty());
    CHECK(r.original_recipients == Strings{"complainer@outlook.example"});
    CHECK(r.mta_message_id == reports::kOurId);
  }

  TEST_CASE("Microsoft JMRP's older attachment format is read as an abuse report") {
    Report r = must_parse(reports::kJmrpLegacy);
    CHECK(r.format == Report::Format::kLegacyJmrp);
    CHECK(r.feedback_type == "abuse");
    CHECK(r.original_recipients == Strings{"complainer@hotmail.example"});
    CHECK(r.message_id == "<deals-2026-03@shop.example>");
    CHECK(r.mta_message_id.empty());
  }

  TEST_CASE("an ARF forwarded inside multipart/mixed is still found") {
    std::string wrapped = std::string(
                              "From: postmaster@isp.example\nTo: fbl@mta.example.com\n"
                              "Subject: Fwd: complaint\nMIME-Version: 1.0\n"
                              "Content-Type: multipart/mixed; boundary=outer\n\n"
                              "--outer\nContent-Type: text/plain\n\nForwarded report below.\n"
                              "--outer\n") +
                          reports::kYahoo + "\n--outer--\n";
    Report r = must_parse(wrapped);
    CHECK(r.user_agent == "Yahoo!-Mail-Feedback/2.0");
    CHECK(r.mta_message_id == reports::kOurId);
  }

  TEST_CASE("a boundary that is a prefix of an inner one does not split the inner part") {
    std::string text = crlf(
        "Content-Type: multipart/mixed; boundary=\"x\"\n\n"
        "--x\nContent-Type: text/plain\n\nForwarded:\n"
        "--x\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"x1\"\n\n"
        "--x1\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: P/1\n"
        "Version: 1\n\n"
        "--x1\nContent-Type: text/rfc822-headers\n\n"
        "X-MTA-Message-ID: 0005f1e2d3c4b5a60000002a1b2c3d4e\n"
        "--x1--\n"
        "--x--\n");
    Report r = must_parse(text);
    CHECK(r.user_agent == "P/1");
    CHECK(r.mta_message_id == reports::kOurId);
  }

  TEST_CASE("a line that merely starts with the delimiter does not start a part") {
    // A text part quoting report-like lines after "--xx": not a report.
    std::string text = crlf(
        "Content-Type: multipart/mixed; boundary=\"x\"\n\n"
        "--x\nContent-Type: text/plain\n\nquoted:\n"
        "--xx\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
        "--x--\n");
    auto p = parse_report(text);
    CHECK_FALSE(p.report.has_value());
  }

  TEST_CASE("text/rfc822-headers, quoted-printable, is decoded") {
    std::string text = crlf(
        "From: fbl@isp.example\nTo: fbl@mta.example.com\nSubject: report\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n"
        "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: fraud\n"
        "User-Agent: ISP/1\nVersion: 1\n\n"
        "--b\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: quoted-printable\n\n"
        "X-MTA-Message-ID: 0005f1e2d3c4b5a6=\n0000002a1b2c3d4e\nSubject: =3D sale =3D\n"
        "--b--\n");
    Report r = must_parse(text);
    CHECK(r.feedback_type == "fraud");
    CHECK(r.mta_message_id == reports::kOurId);
  }

  TEST_CASE("a base64 message/feedback-report part is decoded") {
    // "Feedback-Type: virus\r\nUser-Agent: B64/1\r\nVersion: 1\r\n"
    std::string text = crlf(
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\n\n"
        "--b\nContent-Type: message/feedback-report\nContent-Transfer-Encoding: base64\n\n"
        "RmVlZGJhY2stVHlwZTogdmlydXMNClVzZXItQWdlbnQ6IEI2NC8xDQpWZXJzaW9uOiAxDQo=\n"
        "--b--\n");
    Report r = must_parse(text);
    CHECK(r.feedback_type == "virus");
    CHECK(r.user_agent == "B64/1");
    CHECK_FALSE(r.has_original);
  }

  TEST_CASE("what is not a feedback report is refused with the reason") {
    struct Case {
      std::string text;
      std::string error;  // substring
    };
    std::vector<Case> cases = {
        {"From: a@b.example\nSubject: hi\n\nJust a message.\n", "no message/feedback-report part"},
        {"", "no message/feedback-report part"},
        {"garbage without any header\x01\x02", "no message/feedback-report part"},
        {"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n"
         "--x\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n--x--\n",
         "of type \"delivery-status\""},
        {"Content-Type: multipart/report; report-type=feedback-report; boundary=x\n\n"
         "--x\nContent-Type: message/feedback-report\n\nUser-Agent: X/1\nVersion: 1\n--x--\n",
         "no Feedback-Type"},
        {"Content-Type: multipart/report; report-type=feedback-report\n\n"
         "--x\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n--x--\n",
         "no message/feedback-report part"},  // no boundary: the parts cannot be found
    };
    for (const auto& c : cases) {
      auto p = parse_report(c.text);
      INFO("input: ", c.text);
      CHECK_FALSE(p.report.has_value());
      CHECK(p.error.find(c.error) != std::string::npos);
    }
  }

  TEST_CASE("deep nesting stops at a bounded depth") {
    std::string text = "Content-Type: multipart/mixed; boundary=b0\n\n";
    for (int i = 1; i < 50; ++i)
      text += "--b" + std::to_string(i - 1) + "\nContent-Type: multipart/mixed; boundary=b" +
              std::to_string(i) + "\n\n";
    text += "--b49\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n";
    CHECK_FALSE(parse_report(text).report.has_value());
  }

  TEST_CASE("complained recipients: strong evidence, then one To/Cc, then the only one") {
    struct Case {
      const char* name;
      Report r;
      Strings recipients;
      Strings want;
      bool certain;
    };
    Report strong;
    strong.original_rcpt_to = {"B@Example.test"};
    Report jmrp;
    jmrp.original_recipients = {"c@example.test"};
    Report to_one;
    to_one.to_cc = {"a@example.test", "stranger@example.test"};
    Report to_all;
    to_all.to_cc = {"a@example.test", "b@example.test"};
    Report redacted;
    redacted.original_rcpt_to = {"redacted@aol.example"};
    std::vector<Case> cases = {
        {"Original-Rcpt-To, case-insensitive",
         strong,
         {"a@example.test", "b@example.test"},
         {"b@example.test"},
         true},
        {"X-HmXmrOriginalRecipient",
         jmrp,
         {"a@example.test", "c@example.test"},
         {"c@example.test"},
         true},
        {"one To address among the recipients",
         to_one,
         {"a@example.test", "b@example.test"},
         {"a@example.test"},
         true},
        {"To lists several recipients: unknown which",
         to_all,
         {"a@example.test", "b@example.test"},
         {"a@example.test", "b@example.test"},
         false},
        {"redacted, one recipient", redacted, {"only@example.test"}, {"only@example.test"}, true},
        {"redacted, two recipients",
         redacted,
         {"a@example.test", "b@example.test"},
         {"a@example.test", "b@example.test"},
         false},
        {"duplicate recipient listed once",
         strong,
         {"b@example.test", "B@example.test"},
         {"b@example.test"},
         true},
    };
    for (const auto& c : cases) {
      auto got = complained_recipients(c.r, c.recipients);
      INFO(c.name);
      CHECK(got.recipients == c.want);
      CHECK(got.certain == c.certain);
    }
  }

  TEST_CASE("which feedback types suppress") {
    CHECK(suppresses("abuse"));
    CHECK(suppresses("fraud"));
    CHECK(suppresses("virus"));
    CHECK(suppresses("other"));
    CHECK(suppresses("something-new"));
    CHECK_FALSE(suppresses("not-spam"));
    CHECK_FALSE(suppresses("auth-failure"));
  }

  TEST_CASE("RFC 5322 dates, obsolete zones and comments included") {
    struct Case {
      const char* text;
      int64_t want_ms;  // -1: nullopt
    };
    std::vector<Case> cases = {
        {"Thu, 8 Mar 2005 14:00:00 EDT", 1110304800000},
        {"Thu,  2 Sep 2010 15:12:11 -0400 (EDT)", 1283454731000},
        {"Sun, 24 Feb 2013 13:44:08 PST", 1361742248000},
        {"Tue, 03 Mar 2026 09:59:58 +0000", 1772531998000},
        {"3 Mar 2026 09:59 GMT", 1772531940000},
        {"Tue, 03 Mar 26 09:59:58 +0100", 1772528398000},
        {"Tue, 03 Mar 2026 09:59:58", 1772531998000},
        {"Tue, 03 Foo 2026 09:59:58 +0000", -1},
        {"Tue, 32 Mar 2026 09:59:58 +0000", -1},
        {"Tue, 03 Mar 2026 25:00:00 +0000", -1},
        {"Tue, 03 Mar 2026", -1},
        {"", -1},
        {"yesterday", -1},
    };
    for (const auto& c : cases) {
      auto got = parse_date(c.text);
      INFO(c.text);
      if (c.want_ms < 0) {
        CHECK_FALSE(got.has_value());
      } else {
        REQUIRE(got.has_value());
        CHECK(*got == c.want_ms);
      }
    }
  }

  TEST_CASE("Content-Type parameters: quoted, unquoted, case of names") {
    auto ct = parse_content_type(
        "Multipart/Report; Report-Type=feedback-report;\r\n\tboundary=\"a \\\"b\\\";c\"");
    CHECK(ct.type == "multipart/report");
    CHECK(ct.param("report-type") == "feedback-report");
    CHECK(ct.param("boundary") == "a \"b\";c");
    CHECK(ct.param("missing").empty());
    CHECK(parse_content_type("text/plain").params.empty());
    CHECK(parse_content_type("text/plain; junk; =x; charset=utf-8").param("charset") == "utf-8");
  }

  TEST_CASE("quoted-printable decoding") {
    CHECK(quoted_printable_decode("a=3Db") == "a=b");
    CHECK(quoted_printable_decode("soft=\r\nbreak") == "softbreak");
    CHECK(quoted_printable_decode("soft=\nbreak") == "softbreak");
    CHECK(quoted_printable_decode("bad=ZZ end=") == "bad=ZZ end=");
    CHECK(quoted_printable_decode("=e2=80=93") == "\xe2\x80\x93");
  }
}
