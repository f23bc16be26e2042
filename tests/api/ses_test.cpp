#include <doctest/doctest.h>

#include "mta/api/ses.hpp"
#include "mta/core/base64.hpp"
#include "mta/protocol/message.hpp"

using namespace mta::api;
using mta::protocol::header_value;

namespace {

const Limits kLimits{3, 2000};

SendRequest v2(const std::string& body) {
  auto r = parse_v2_send(body);
  if (auto* e = std::get_if<ApiError>(&r)) FAIL_CHECK("unexpected error: " << e->message);
  return std::get<SendRequest>(r);
}

Composed composed(const SendRequest& r) {
  auto c = compose(r, kLimits, "<id1@mta.test>", 1795000000, "=_mta_id1");
  if (auto* e = std::get_if<ApiError>(&c)) FAIL_CHECK("unexpected error: " << e->message);
  return std::get<Composed>(c);
}

ApiError v2_error_of(const std::string& body) {
  auto r = parse_v2_send(body);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  auto c = compose(std::get<SendRequest>(r), kLimits, "<id1@mta.test>", 1795000000, "b");
  REQUIRE(std::holds_alternative<ApiError>(c));
  return std::get<ApiError>(c);
}

ApiError v1_error_of(const std::string& form) {
  auto p = parse_form(form);
  REQUIRE(p);
  auto r = parse_v1_send(*p);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  auto c = compose(std::get<SendRequest>(r), kLimits, "<id1@mta.test>", 1795000000, "b");
  REQUIRE(std::holds_alternative<ApiError>(c));
  return std::get<ApiError>(c);
}

std::string b64(const std::string& s) {
  return mta::core::base64_encode(s);
}

}  // namespace

TEST_SUITE("api") {
  TEST_CASE("v2 SendEmail with Simple text and HTML, as boto3 sends it") {
    auto r = v2(R"({"FromEmailAddress": "Shop <a@x.test>",
      "Destination": {"ToAddresses": ["b@y.test"], "CcAddresses": ["c@y.test"],
                      "BccAddresses": ["d@y.test"]},
      "ReplyToAddresses": ["help@x.test"],
      "Content": {"Simple": {"Subject": {"Data": "S", "Charset": "UTF-8"},
                  "Body": {"Text": {"Data": "T"}, "Html": {"Data": "<p>H</p>"}},
                  "Headers": [{"Name": "X-Campaign", "Value": "nov"}]}},
      "ConfigurationSetName": "cs", "EmailTags": [{"Name": "k", "Value": "v"}]})");
    CHECK(r.api == Api::kV2);
    CHECK_FALSE(r.raw);
    CHECK(r.from->name == "Shop");
    CHECK(r.configuration_set == "cs");
    CHECK(r.tags == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});
    auto c = composed(r);
    CHECK(c.mail_from == "a@x.test");
    CHECK(c.recipients == std::vector<std::string>{"b@y.test", "c@y.test", "d@y.test"});
    CHECK_FALSE(c.eight_bit);
    CHECK(header_value(c.message, "From") == "Shop <a@x.test>");
    CHECK(header_value(c.message, "To") == "b@y.test");
    CHECK(header_value(c.message, "Cc") == "c@y.test");
    CHECK_FALSE(header_value(c.message, "Bcc"));
    CHECK(header_value(c.message, "Reply-To") == "help@x.test");
    CHECK(header_value(c.message, "Subject") == "S");
    CHECK(header_value(c.message, "Message-ID") == "<id1@mta.test>");
    CHECK(header_value(c.message, "X-Campaign") == "nov");
    CHECK(header_value(c.message, "Content-Type") ==
          "multipart/alternative; boundary=\"=_mta_id1\"");
  }

  TEST_CASE("v2 Raw: recipients and sender from the headers, Bcc removed, LF made CRLF") {
    std::string raw =
        "From: Shop <shop@x.test>\nTo: a@y.test, \"B, b\" <b@y.test>\nBcc: hidden@y.test\n"
        "Subject: raw\n\nbody \xc3\xa9\n";
    auto r = v2(R"({"Content": {"Raw": {"Data": ")" + b64(raw) + R"("}}})");
    CHECK(r.raw);
    auto c = composed(r);
    CHECK(c.mail_from == "shop@x.test");
    CHECK(c.recipients == std::vector<std::string>{"a@y.test", "b@y.test", "hidden@y.test"});
    CHECK(c.eight_bit);
    CHECK_FALSE(header_value(c.message, "Bcc"));
    CHECK(c.message.find("\r\nSubject: raw\r\n\r\nbody") != std::string::npos);
    // Explicit destinations and sender win over the headers.
    auto r2 = v2(R"({"FromEmailAddress": "bounce@x.test",
                     "Destination": {"ToAddresses": ["only@y.test"]},
                     "Content": {"Raw": {"Data": ")" +
                 b64(raw) + R"("}}})");
    auto c2 = composed(r2);
    CHECK(c2.mail_from == "bounce@x.test");
    CHECK(c2.recipients == std::vector<std::string>{"only@y.test"});
  }

  TEST_CASE("v2 validation: each case is a 400 that names the field") {
    const std::string simple_tail =
        R"("Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {"Text": {"Data": "T"}}}})";
    const std::string ok_dest = R"("Destination": {"ToAddresses": ["b@y.test"]})";
    struct Case {
      std::string body;
      const char* field;
    };
    const Case cases[] = {
        {"{not json", "not valid JSON"},
        {"[]", "JSON object"},
        {"{" + ok_dest + "," + simple_tail + "}", "FromEmailAddress: is required"},
        {R"({"FromEmailAddress": 5, )" + ok_dest + "," + simple_tail + "}",
         "FromEmailAddress: must be a string"},
        {R"({"FromEmailAddress": "not-an-address", )" + ok_dest + "," + simple_tail + "}",
         "FromEmailAddress: not a valid email address"},
        {R"({"FromEmailAddress": "a@x.test", )" + simple_tail + "}", "Destination: is required"},
        {R"({"FromEmailAddress": "a@x.test", "Destination": {"ToAddresses": ["ok@y.test", "bad"]}, )" +
             simple_tail + "}",
         "Destination.ToAddresses[1]: not a valid email address"},
        {R"({"FromEmailAddress": "a@x.test", "Destination": {"ToAddresses": "b@y.test"}, )" +
             simple_tail + "}",
         "Destination.ToAddresses: must be a list"},
        {R"({"FromEmailAddress": "a@x.test", "Destination": {}, )" + simple_tail + "}",
         "Destination: at least one recipient"},
        {R"({"FromEmailAddress": "a@x.test", "Destination": {"ToAddresses": ["a@y.test", "b@y.test", "c@y.test", "d@y.test"]}, )" +
             simple_tail + "}",
         "Destination: 4 recipients, more than the limit of 3 (max_recipients)"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest + "}", "Content: is required"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Body": {"Text": {"Data": "T"}}}}})",
         "Content.Simple.Subject: is required"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S\r\nBcc: x@evil.test"}, "Body": {"Text": {"Data": "T"}}}}})",
         "Content.Simple.Subject.Data: must not contain CR or LF"},
        {R"({"FromEmailAddress": "a@x.test\nBcc: x@evil.test", )" + ok_dest + "," + simple_tail +
             "}",
         "FromEmailAddress: must not contain CR or LF"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {}}}})",
         "Content.Simple.Body: Text or Html is required"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S", "Charset": "klingon"}, "Body": {"Text": {"Data": "T"}}}}})",
         "Content.Simple.Subject.Charset: unknown charset"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {"Text": {"Data": "€", "Charset": "ISO-8859-1"}}}}})",
         "Content.Simple.Body.Text.Charset: cannot be encoded"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {"Text": {"Data": "T"}}, "Headers": [{"Name": "Bcc", "Value": "x@evil.test"}]}}})",
         "Content.Simple.Headers[0].Name: Bcc is set by the API itself"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {"Text": {"Data": "T"}}, "Headers": [{"Name": "X-A", "Value": "v\r\nBcc: x"}]}}})",
         "Content.Simple.Headers[0].Value: must not contain CR or LF"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Simple": {"Subject": {"Data": "S"}, "Body": {"Text": {"Data": ")" +
             std::string(2100, 'x') + R"("}}}}})",
         "Content.Simple: the message is"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Raw": {"Data": "***"}, "Simple": {}}})",
         "Content: exactly one of Simple or Raw"},
        {R"({"Content": {"Raw": {"Data": "***"}}})", "Content.Raw.Data: not valid base64"},
        {R"({"Content": {"Raw": {"Data": ")" + b64("To: a@y.test\r\n\r\nx") + R"("}}})",
         "Content.Raw.Data: the message has no From header"},
        {R"({"Content": {"Raw": {"Data": ")" + b64("From: a@x.test\r\n\r\nx") + R"("}}})",
         "Destination: at least one recipient"},
        {R"({"Content": {"Raw": {"Data": ")" +
             b64("From: a@x.test\r\nTo: a@y.test\r\n\r\n" + std::string(1000, 'x')) + R"("}}})",
         "Content.Raw.Data: line 4 is longer than 998 octets"},
        {R"({"Content": {"Raw": {"Data": ")" +
             b64(std::string("From: a@x.test\r\nTo: a@y.test\r\n\r\nx\0y", 35)) + R"("}}})",
         "Content.Raw.Data: the message contains a NUL"},
        {R"({"Content": {"Raw": {"Data": ")" +
             b64("From: a@x.test\r\nTo: a@y.test\r\n\r\n" + std::string(2000, 'x')) + R"("}}})",
         "Content.Raw.Data: the message is 2032 bytes, over the limit of 2000 (max_message_bytes)"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest + "," + simple_tail +
             R"(, "EmailTags": [{"Name": "k k", "Value": "v"}]})",
         "EmailTags[0].Name:"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest + "," + simple_tail +
             R"(, "EmailTags": [{"Name": "k"}]})",
         "EmailTags[0].Value: is required"},
        {R"({"FromEmailAddress": "a@x.test", )" + ok_dest +
             R"(, "Content": {"Template": {"TemplateName": "t"}}})",
         "Content.Template: templates are not supported"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.body);
      auto e = v2_error_of(c.body);
      CHECK(e.status == 400);
      CHECK((e.code == "BadRequestException" || e.code == "MessageRejected"));
      CHECK_MESSAGE(e.message.find(c.field) != std::string::npos, "got: " << e.message);
    }
  }

  TEST_CASE("v1 SendEmail exactly as boto3 sends the seed example") {
    auto p = parse_form(
        "Action=SendEmail&Version=2010-12-01&Source=a%40x.test&"
        "Destination.ToAddresses.member.1=b%40y.test&Message.Subject.Data=Hello%2C+World%21&"
        "Message.Body.Text.Data=Hello%2C+World%21&ConfigurationSetName=cs&"
        "Tags.member.1.Name=k&Tags.member.1.Value=v");
    REQUIRE(p);
    auto r = parse_v1_send(*p);
    REQUIRE(std::holds_alternative<SendRequest>(r));
    auto& req = std::get<SendRequest>(r);
    CHECK(req.action == "SendEmail");
    CHECK(req.configuration_set == "cs");
    CHECK(req.tags.size() == 1);
    auto c = composed(req);
    CHECK(c.mail_from == "a@x.test");
    CHECK(c.recipients == std::vector<std::string>{"b@y.test"});
    CHECK(header_value(c.message, "Subject") == "Hello, World!");
    CHECK(header_value(c.message, "Content-Type") == "text/plain; charset=UTF-8");
  }

  TEST_CASE("v1 SendRawEmail with Destinations and ReturnPath") {
    std::string raw = "From: a@x.test\r\nTo: b@y.test\r\nSubject: r\r\n\r\nbody\r\n";
    auto p = parse_form(
        "Action=SendRawEmail&Source=a%40x.test&Destinations.member.1=z%40y.test&"
        "ReturnPath=bounce%40x.test&RawMessage.Data=" +
        uri_encode(b64(raw)));
    REQUIRE(p);
    auto r = parse_v1_send(*p);
    REQUIRE(std::holds_alternative<SendRequest>(r));
    auto c = composed(std::get<SendRequest>(r));
    CHECK(c.mail_from == "bounce@x.test");
    CHECK(c.recipients == std::vector<std::string>{"z@y.test"});
    CHECK(c.message == raw);
  }

  TEST_CASE("v1 validation names the parameter") {
    struct Case {
      const char* form;
      const char* code;
      const char* text;
    };
    const Case cases[] = {
        {"Action=DeleteIdentity", "InvalidAction", "Action: DeleteIdentity is not supported"},
        {"Action=SendEmail&Destination.ToAddresses.member.1=b%40y.test&Message.Subject.Data=s&"
         "Message.Body.Text.Data=t",
         "MissingParameter", "Source: is required"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=nope&"
         "Message.Subject.Data=s&Message.Body.Text.Data=t",
         "InvalidParameterValue", "Destination.ToAddresses.member.1: not a valid email address"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.2=b%40y.test&"
         "Message.Subject.Data=s&Message.Body.Text.Data=t",
         "InvalidParameterValue", "Destination.ToAddresses.member.1: missing"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=b%40y.test&"
         "Message.Subject.Data=s%0D%0ABcc%3A+x%40evil.test&Message.Body.Text.Data=t",
         "InvalidParameterValue", "Message.Subject.Data: must not contain CR or LF"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=b%40y.test&"
         "Message.Subject.Data=s",
         "MissingParameter", "Message.Body: Text.Data or Html.Data is required"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=b%40y.test&"
         "Message.Subject.Data=s&Message.Body.Text.Data=%FF",
         "InvalidParameterValue", "Message.Body.Text.Data: is not valid UTF-8"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=a%40y.test&"
         "Destination.CcAddresses.member.1=b%40y.test&Destination.BccAddresses.member.1=c%40y.test&"
         "Destination.BccAddresses.member.2=d%40y.test&Message.Subject.Data=s&"
         "Message.Body.Text.Data=t",
         "InvalidParameterValue", "Destination: 4 recipients"},
        {"Action=SendRawEmail&Destinations.member.1=b%40y.test", "MissingParameter",
         "RawMessage.Data: is required"},
        {"Action=SendEmail&Source=a%40x.test&Destination.ToAddresses.member.1=b%40y.test&"
         "Message.Subject.Data=s&Message.Body.Text.Data=t&Tags.member.1.Name=k",
         "InvalidParameterValue", "Tags.member.1.Value: is required"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.form);
      auto e = v1_error_of(c.form);
      CHECK(e.status == 400);
      CHECK(e.code == c.code);
      CHECK_MESSAGE(e.message.find(c.text) != std::string::npos, "got: " << e.message);
    }
  }

  TEST_CASE("v1 XML replies and errors in SES's shapes; v2 JSON errors") {
    CHECK(v1_send_result("SendEmail", "abc", "req-1") ==
          "<SendEmailResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\">\n"
          "  <SendEmailResult>\n    <MessageId>abc</MessageId>\n  </SendEmailResult>\n"
          "  <ResponseMetadata>\n    <RequestId>req-1</RequestId>\n  </ResponseMetadata>\n"
          "</SendEmailResponse>\n");
    std::string err =
        v1_error(ApiError{403, "SignatureDoesNotMatch", "bad <sig> & \"more\""}, "r2");
    CHECK(err.find("<Type>Sender</Type>") != std::string::npos);
    CHECK(err.find("<Code>SignatureDoesNotMatch</Code>") != std::string::npos);
    CHECK(err.find("<Message>bad &lt;sig&gt; &amp; &quot;more&quot;</Message>") !=
          std::string::npos);
    CHECK(err.find("<RequestId>r2</RequestId>") != std::string::npos);
    CHECK(v1_error(ApiError{503, "ServiceUnavailable", "x"}, "r").find("<Type>Receiver</Type>") !=
          std::string::npos);
    CHECK(v2_error(ApiError{400, "BadRequestException", "FromEmailAddress: x"}) ==
          R"({"__type":"BadRequestException","message":"FromEmailAddress: x"})");
  }
}
