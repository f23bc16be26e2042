#include <doctest/doctest.h>

#include <sstream>

#include "mta/core/base64.hpp"
#include "mta/protocol/message.hpp"
#include "mta/protocol/mime.hpp"

using namespace mta::protocol;

namespace {

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t e = s.find("\r\n", start);
    if (e == std::string::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, e - start));
    start = e + 2;
  }
}

// Reference decoder for the round-trip checks.
std::string qp_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '=' && s.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else if (s[i] == '=') {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Decodes a header value made only of =?UTF-8?B?...?= words.
std::string decode_words(const std::string& v) {
  std::string out;
  std::istringstream in(v);
  std::string w;
  while (in >> w) {
    REQUIRE(w.rfind("=?UTF-8?B?", 0) == 0);
    REQUIRE(w.size() <= 75);
    auto d = mta::core::base64_decode(w.substr(10, w.size() - 12));
    REQUIRE(d);
    out += *d;
  }
  return out;
}

}  // namespace

TEST_SUITE("protocol") {
  TEST_CASE("mailboxes parse from the forms SES accepts") {
    struct Case {
      const char* in;
      bool ok;
      const char* name;
      const char* address;
    };
    const Case cases[] = {
        {"a@x.test", true, "", "a@x.test"},
        {"  a@x.test ", true, "", "a@x.test"},
        {"Alice <a@x.test>", true, "Alice", "a@x.test"},
        {"\"Last, First\" <a@x.test>", true, "Last, First", "a@x.test"},
        {"\"Say \\\"hi\\\"\" <a@x.test>", true, "Say \"hi\"", "a@x.test"},
        {"Zoë Ünal <z@x.test>", true, "Zoë Ünal", "z@x.test"},
        {"<a@x.test>", true, "", "a@x.test"},
        {"", false, "", ""},
        {"not an address", false, "", ""},
        {"a@", false, "", ""},
        {"Alice <a@x.test", false, "", ""},
        {"Alice <a@x.test>\r\nBcc: b@y.test", false, "", ""},
        {"\"unterminated <a@x.test>", false, "", ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.in);
      auto m = parse_mailbox(c.in);
      CHECK(m.has_value() == c.ok);
      if (m && c.ok) {
        CHECK(m->name == c.name);
        CHECK(m->address == c.address);
      }
    }
  }

  TEST_CASE("address lists: commas inside quotes, comments, groups") {
    auto l = parse_address_list(
        "\"Doe, Jane\" <j@x.test>, b@y.test (Bob), team: c@z.test, d@z.test;, "
        "undisclosed-recipients:;");
    REQUIRE(l);
    REQUIRE(l->size() == 4);
    CHECK((*l)[0].name == "Doe, Jane");
    CHECK((*l)[0].address == "j@x.test");
    CHECK((*l)[1].address == "b@y.test");
    CHECK((*l)[2].address == "c@z.test");
    CHECK((*l)[3].address == "d@z.test");
    CHECK(parse_address_list("")->empty());
    CHECK_FALSE(parse_address_list("a@x.test, nonsense"));
    CHECK_FALSE(parse_address_list("\"open <a@x.test>"));
  }

  TEST_CASE("mailboxes format as atoms, quoted strings or encoded-words") {
    CHECK(format_mailbox({"", "a@x.test"}) == "a@x.test");
    CHECK(format_mailbox({"Alice Smith", "a@x.test"}) == "Alice Smith <a@x.test>");
    CHECK(format_mailbox({"Smith, Alice", "a@x.test"}) == "\"Smith, Alice\" <a@x.test>");
    CHECK(format_mailbox({"a \"b\" \\c", "a@x.test"}) == "\"a \\\"b\\\" \\\\c\" <a@x.test>");
    std::string enc = format_mailbox({"Zoë", "z@x.test"});
    CHECK(enc == "=?UTF-8?B?Wm/Dqw==?= <z@x.test>");
    CHECK(format_mailbox({"bad \xff", "z@x.test"}).empty());
  }

  TEST_CASE("header text: ASCII unchanged, everything else in encoded-words of <= 75") {
    CHECK(*encode_header_text("Hello, World!") == "Hello, World!");
    // "=?" in plain text would be read as an encoded-word: encode it.
    CHECK(decode_words(*encode_header_text("a =?b?= c")) == "a =?b?= c");
    std::string s = "Grüße aus Köln — 東京の天気は晴れです。";
    for (int i = 0; i < 4; ++i) s += " Ünïcödé ünd mehr";
    auto e = encode_header_text(s);
    REQUIRE(e);
    CHECK(decode_words(*e) == s);
    // An unbreakable ASCII run longer than a line is encoded so it can fold.
    std::string run(200, 'x');
    CHECK(decode_words(*encode_header_text(run)) == run);
    // Another charset: converted first, labelled with its name.
    CHECK(*encode_header_text("café", "ISO-8859-1") == "=?ISO-8859-1?B?Y2Fm6Q==?=");
    CHECK_FALSE(encode_header_text("€", "ISO-8859-1"));  // no euro sign in Latin-1
    CHECK_FALSE(encode_header_text("x", "no-such-charset"));
    CHECK_FALSE(encode_header_text("x", "UTF-8\r\nBcc: a@b"));
    CHECK_FALSE(encode_header_text("bad \xc3\x28 utf8"));
  }

  TEST_CASE("transcode: UTF-8 to other charsets, refusing what cannot be represented") {
    CHECK(*transcode("é", "iso-8859-1") == "\xe9");
    CHECK(*transcode("abc", "US-ASCII") == "abc");
    CHECK_FALSE(transcode("é", "US-ASCII"));
    CHECK(transcode("日本", "Shift_JIS")->size() == 4);
    CHECK_FALSE(transcode("\xed\xa0\x80", "UTF-8"));  // a UTF-16 surrogate
    CHECK_FALSE(transcode("\xc0\xaf", "UTF-8"));      // overlong
  }

  TEST_CASE("to_crlf turns LF and lone CR into CRLF") {
    CHECK(to_crlf("a\nb\r\nc\rd") == "a\r\nb\r\nc\r\nd");
    CHECK(to_crlf("") == "");
  }

  TEST_CASE("quoted-printable: short lines, '=' and trailing white space encoded, round trip") {
    CHECK(quoted_printable_encode("a=b") == "a=3Db");
    CHECK(quoted_printable_encode("end \r\nnext\t") == "end=20\r\nnext=09");
    CHECK(quoted_printable_encode("caf\xc3\xa9") == "caf=C3=A9");
    std::string long_line;
    for (int i = 0; i < 50; ++i) long_line += "word= é ";
    std::string data = long_line + "\r\n\r\nshort\r\n";
    std::string enc = quoted_printable_encode(data);
    for (const auto& l : lines(enc)) {
      CAPTURE(l);
      CHECK(l.size() <= 76);
      CHECK((l.empty() || (l.back() != ' ' && l.back() != '\t')));
    }
    CHECK(qp_decode(enc) == data);
  }

  TEST_CASE("base64 bodies come in lines of 76") {
    std::string data(1000, '\x01');
    std::string enc = base64_body(data);
    auto ls = lines(enc);
    CHECK(ls.back().empty());
    for (size_t i = 0; i + 1 < ls.size(); ++i) CHECK(ls[i].size() <= 76);
    CHECK(ls[0].size() == 76);
    CHECK(*mta::core::base64_decode(enc) == data);
  }

  TEST_CASE("choose_encoding: mostly ASCII is quoted-printable, the rest base64") {
    CHECK(choose_encoding("Hello, Grüße") == TransferEncoding::kQuotedPrintable);
    CHECK(choose_encoding("東京の天気は晴れです") == TransferEncoding::kBase64);
    CHECK(choose_encoding("") == TransferEncoding::kQuotedPrintable);
  }

  TEST_CASE("a simple message with text and HTML is multipart/alternative") {
    SimpleMessage m;
    m.from = {"Shop Ä", "shop@src.test"};
    m.to = {{"", "a@dst.test"}, {"Bob, B", "b@dst.test"}};
    m.cc = {{"", "c@dst.test"}};
    m.reply_to = {{"", "help@src.test"}};
    m.subject = "Your order — Nr. 5";
    m.text = TextBody{"Hello\nline two = three\n", "UTF-8"};
    m.html = TextBody{"<p>Hello</p>", "UTF-8"};
    m.headers = {{"X-Campaign", "spring"}};
    m.date = 1795000000;
    m.message_id = "<abc@mta.test>";
    m.boundary = "=_mta_abc";
    auto r = build_simple(m);
    REQUIRE(std::holds_alternative<std::string>(r));
    const auto& msg = std::get<std::string>(r);
    CHECK(header_value(msg, "From") == "=?UTF-8?B?U2hvcCDDhA==?= <shop@src.test>");
    CHECK(header_value(msg, "To") == "a@dst.test, \"Bob, B\" <b@dst.test>");
    CHECK(header_value(msg, "Cc") == "c@dst.test");
    CHECK(header_value(msg, "Reply-To") == "help@src.test");
    CHECK_FALSE(header_value(msg, "Bcc"));
    CHECK(decode_words(*header_value(msg, "Subject")) == "Your order — Nr. 5");
    CHECK(header_value(msg, "Date") == rfc5322_date(1795000000));
    CHECK(header_value(msg, "Message-ID") == "<abc@mta.test>");
    CHECK(header_value(msg, "MIME-Version") == "1.0");
    CHECK(header_value(msg, "X-Campaign") == "spring");
    CHECK(header_value(msg, "Content-Type") == "multipart/alternative; boundary=\"=_mta_abc\"");
    std::string body = msg.substr(header_block_size(msg));
    const std::string want =
        "--=_mta_abc\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Hello\r\n"
        "line two =3D three\r\n"
        "\r\n"
        "--=_mta_abc\r\n"
        "Content-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<p>Hello</p>\r\n"
        "--=_mta_abc--\r\n";
    // The text's final line break is kept (the CRLF before a delimiter is
    // the delimiter's); the HTML had none.
    CHECK(body == want);
    for (const auto& l : lines(msg)) CHECK(l.size() <= 78);
  }

  TEST_CASE("a single part is the message itself; bodies in other charsets and base64") {
    SimpleMessage m;
    m.from = {"", "s@src.test"};
    m.to = {{"", "a@dst.test"}};
    m.subject = "x";
    m.html = TextBody{"<p>東京の天気は晴れです</p>", "UTF-8"};
    m.message_id = "<1@h>";
    auto r = build_simple(m);
    REQUIRE(std::holds_alternative<std::string>(r));
    const auto& msg = std::get<std::string>(r);
    CHECK(header_value(msg, "Content-Type") == "text/html; charset=UTF-8");
    CHECK(header_value(msg, "Content-Transfer-Encoding") == "base64");
    CHECK(*mta::core::base64_decode(msg.substr(header_block_size(msg))) ==
          "<p>東京の天気は晴れです</p>");

    m.html.reset();
    m.text = TextBody{"café", "ISO-8859-1"};
    auto latin = std::get<std::string>(build_simple(m));
    CHECK(header_value(latin, "Content-Type") == "text/plain; charset=ISO-8859-1");
    CHECK(latin.substr(header_block_size(latin)) == "caf=E9\r\n");
  }

  TEST_CASE("build_simple names the input it cannot encode") {
    SimpleMessage m;
    m.from = {"", "s@src.test"};
    m.message_id = "<1@h>";
    auto r = build_simple(m);
    REQUIRE(std::holds_alternative<MimeError>(r));
    CHECK(std::get<MimeError>(r).field == "Body");
    m.text = TextBody{"€", "ISO-8859-1"};
    CHECK(std::get<MimeError>(build_simple(m)).field == "Body.Text");
    m.text = TextBody{"x", "UTF-8"};
    m.subject_charset = "nope-charset";
    CHECK(std::get<MimeError>(build_simple(m)).field == "Subject");
    m.subject_charset = "UTF-8";
    m.to = {{"\xff", "a@dst.test"}};
    CHECK(std::get<MimeError>(build_simple(m)).field == "To[0]");
  }
}
