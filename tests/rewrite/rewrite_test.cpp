#include "mta/rewrite/rewrite.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "mta/core/base64.hpp"
#include "mta/rewrite/codec.hpp"

using mta::rewrite::ClickUrl;
using mta::rewrite::Template;

namespace {

std::string crlf(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const std::string kHeader =
    "From: Sender <a@sender.test>\r\nTo: b@rcpt.test\r\nSubject: News\r\n"
    "MIME-Version: 1.0\r\n";

std::string html_message(std::string_view html, std::string_view cte = "") {
  std::string m = kHeader + "Content-Type: text/html; charset=\"utf-8\"\r\n";
  if (!cte.empty()) m += "Content-Transfer-Encoding: " + std::string(cte) + "\r\n";
  return m + "\r\n" + std::string(html);
}

std::optional<std::string> numbered(uint32_t i, std::string_view) {
  return "https://t.test/c/" + std::to_string(i);
}
std::optional<std::string> untouched(uint32_t, std::string_view) {
  return std::nullopt;
}

std::vector<std::string> urls(const Template& t) {
  std::vector<std::string> out;
  for (size_t i = 0; i < t.links().size(); ++i) {
    CHECK(t.links()[i].index == i);
    out.push_back(t.links()[i].url);
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& s) {
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

size_t longest_line(const std::string& s) {
  size_t n = 0;
  for (const auto& l : split_lines(s)) n = std::max(n, l.size());
  return n;
}

std::string qp_decode(std::string_view enc) {
  std::string dec;
  std::vector<mta::rewrite::detail::QpLine> lines;
  mta::rewrite::detail::qp_decode(enc, dec, lines);
  return dec;
}

std::string base64_76(std::string_view data) {
  std::string b = mta::core::base64_encode(data), out;
  for (size_t i = 0; i < b.size(); i += 76) {
    if (i) out += "\r\n";
    out += b.substr(i, 76);
  }
  return out;
}

const std::string kPixelUrl = "https://t.test/o/a&b.gif";
const std::string kPixel =
    "<img src=\"https://t.test/o/a&amp;b.gif\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" "
    "style=\"display:block;width:1px;height:1px;border:0;margin:0;padding:0\" />";

using V = std::vector<std::string>;

}  // namespace

TEST_SUITE("rewrite") {
  TEST_CASE("a single-part HTML message gets its links replaced and the pixel") {
    std::string html = crlf(
        "<html><body>\n"
        "<p><a href=\"https://example.com/a?x=1&amp;y=2\">A</a> <a "
        "href='mailto:x@y.test'>m</a></p>\n"
        "</body></html>\n");
    std::string msg = html_message(html);
    Template t = Template::parse(msg);
    CHECK(t.has_html());
    CHECK(urls(t) == V{"https://example.com/a?x=1&y=2"});
    CHECK(t.html_bytes() == html.size());
    std::string got = t.render(
        [](uint32_t i, std::string_view url) -> std::optional<std::string> {
          CHECK(i == 0);
          CHECK(url == "https://example.com/a?x=1&y=2");
          return "https://t.test/c/T0?q=1&r=2";
        },
        kPixelUrl);
    CHECK(got == html_message(crlf("<html><body>\n"
                                   "<p><a href=\"https://t.test/c/T0?q=1&amp;r=2\">A</a> <a "
                                   "href='mailto:x@y.test'>m</a></p>\n" +
                                   kPixel + "</body></html>\n")));
  }

  TEST_CASE("links: which are offered and how they are rewritten") {
    struct Case {
      std::string html;
      V want_urls;
      std::string want_html;
    };
    Case cases[] = {
        {R"(<a href="https://e.test/x">a</a>)",
         {"https://e.test/x"},
         R"(<a href="https://t.test/c/0">a</a>)"},
        {R"(<a href='http://e.test/x'>)", {"http://e.test/x"}, R"(<a href='https://t.test/c/0'>)"},
        {R"(<a href=http://e.test/x>)", {"http://e.test/x"}, R"(<a href=https://t.test/c/0>)"},
        {R"(<A HREF="HTTPS://E.TEST/X">)",
         {"HTTPS://E.TEST/X"},
         R"(<A HREF="https://t.test/c/0">)"},
        {R"(<a href = "http://e.test/">)",
         {"http://e.test/"},
         R"(<a href = "https://t.test/c/0">)"},
        {"<a\r\n  class=\"b\"\r\n  href=\"http://e.test/\"\r\n>",
         {"http://e.test/"},
         "<a\r\n  class=\"b\"\r\n  href=\"https://t.test/c/0\"\r\n>"},
        {R"(<map><area shape="rect" href="https://e.test/m"></map>)",
         {"https://e.test/m"},
         R"(<map><area shape="rect" href="https://t.test/c/0"></map>)"},
        {R"(<a href="  https://e.test/t  ">)",
         {"https://e.test/t"},
         R"(<a href="https://t.test/c/0">)"},
        {R"(<a href="https://e.test/?a=1&amp;b=2">)",
         {"https://e.test/?a=1&b=2"},
         R"(<a href="https://t.test/c/0">)"},
        {R"(<a href="https://e.test/?a=1&#38;b=2&#x26;c=3">)",
         {"https://e.test/?a=1&b=2&c=3"},
         R"(<a href="https://t.test/c/0">)"},
        {R"(<a href="https://e.test/?a=1&b=2">)",
         {"https://e.test/?a=1&b=2"},
         R"(<a href="https://t.test/c/0">)"},
        {R"(<a href="https&colon;//e.test/">)",
         {"https://e.test/"},
         R"(<a href="https://t.test/c/0">)"},
        {R"(<a href="https://e.test/&bogusentity;">)",
         {},
         R"(<a href="https://e.test/&bogusentity;">)"},
        {R"(<a href="mailto:a@e.test">)", {}, R"(<a href="mailto:a@e.test">)"},
        {R"(<a href="tel:+15551234">)", {}, R"(<a href="tel:+15551234">)"},
        {R"(<a href="#top">)", {}, R"(<a href="#top">)"},
        {R"(<a href="/account">)", {}, R"(<a href="/account">)"},
        {R"(<a href="{{unsubscribe}}">)", {}, R"(<a href="{{unsubscribe}}">)"},
        {R"(<a href="https://e.test/?u={{id}}">)", {}, R"(<a href="https://e.test/?u={{id}}">)"},
        {R"(<a href="*|ARCHIVE|*">)", {}, R"(<a href="*|ARCHIVE|*">)"},
        {R"(<a href="%%view%%">)", {}, R"(<a href="%%view%%">)"},
        {R"(<a href="[unsubscribe]">)", {}, R"(<a href="[unsubscribe]">)"},
        {R"(<a href>x</a>)", {}, R"(<a href>x</a>)"},
        {R"(<a href="">x</a>)", {}, R"(<a href="">x</a>)"},
        {R"(<a name="top">)", {}, R"(<a name="top">)"},
        {R"(<link href="https://e.test/s.css"><img src="https://e.test/i.png">)",
         {},
         R"(<link href="https://e.test/s.css"><img src="https://e.test/i.png">)"},
        {R"(<a href="https://e.test/1" href="https://e.test/2">)",
         {"https://e.test/1"},
         R"(<a href="https://t.test/c/0" href="https://e.test/2">)"},
        {R"(<!-- <a href="https://e.test/c"> --><a href="https://e.test/d">)",
         {"https://e.test/d"},
         R"(<!-- <a href="https://e.test/c"> --><a href="https://t.test/c/0">)"},
        {R"(<script>x='<a href="https://e.test/s">'</script><a href="https://e.test/d">)",
         {"https://e.test/d"},
         R"(<script>x='<a href="https://e.test/s">'</script><a href="https://t.test/c/0">)"},
        {R"(<style>/* <a href="https://e.test/s"> */</style>)",
         {},
         R"(<style>/* <a href="https://e.test/s"> */</style>)"},
        {R"(<a href="https://e.test/1">1</a><a href='https://e.test/2'>2</a>)",
         {"https://e.test/1", "https://e.test/2"},
         R"(<a href="https://t.test/c/0">1</a><a href='https://t.test/c/1'>2</a>)"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      std::string msg = html_message("<html><body>" + c.html + "</body></html>\r\n");
      Template t = Template::parse(msg);
      CHECK(urls(t) == c.want_urls);
      CHECK(t.render(numbered, "") ==
            html_message("<html><body>" + c.want_html + "</body></html>\r\n"));
    }
  }

  TEST_CASE("replacement URLs are escaped for their attribute") {
    struct Case {
      std::string html, replacement, want;
    };
    Case cases[] = {
        {R"(<a href="http://e.test/">)", R"(https://t.test/c?a=1&b="x")",
         R"(<a href="https://t.test/c?a=1&amp;b=&quot;x&quot;">)"},
        {R"(<a href='http://e.test/'>)", "https://t.test/c?a='x'&b",
         R"(<a href='https://t.test/c?a=&#39;x&#39;&amp;b'>)"},
        {R"(<a href=http://e.test/>)", "https://t.test/c/abc", R"(<a href=https://t.test/c/abc>)"},
        {R"(<a href=http://e.test/>)", "https://t.test/c?a=1&b=2",
         R"(<a href="https://t.test/c?a=1&amp;b=2">)"},
        {R"(<a href=http://e.test/>)", "https://t.test/c d", R"(<a href="https://t.test/c d">)"},
        {R"(<a href="http://e.test/">)", "https://t.test/\r\nc\n/\r",
         R"(<a href="https://t.test/c/">)"},
        {R"(<a href="http://e.test/">)", std::string("https://t.test/\0c", 17),
         R"(<a href="https://t.test/c">)"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      Template t = Template::parse(html_message(c.html));
      REQUIRE(t.links().size() == 1);
      auto repl = c.replacement;
      CHECK(t.render([&](uint32_t, std::string_view) { return std::optional<std::string>(repl); },
                     "") == html_message(c.want));
    }
  }

  TEST_CASE("ses:no-track links are not offered and lose the attribute") {
    struct Case {
      std::string html, want;
    };
    Case cases[] = {
        {R"(<a ses:no-track href="https://e.test/a">x</a>)", R"(<a href="https://e.test/a">x</a>)"},
        {R"(<a href="https://e.test/a" ses:no-track>x</a>)", R"(<a href="https://e.test/a">x</a>)"},
        {R"(<a href="https://e.test/a" SES:No-Track="true" class="c">)",
         R"(<a href="https://e.test/a" class="c">)"},
        {"<a href=\"https://e.test/a\"\r\n    ses:no-track\r\n>",
         "<a href=\"https://e.test/a\"\r\n>"},
        {R"(<a ses:no-track="1"href="https://e.test/a">)", R"(<a href="https://e.test/a">)"},
        {R"(<a ses:no-track>plain anchor</a>)", R"(<a>plain anchor</a>)"},
        {R"(<span ses:no-track>not a link</span>)", R"(<span ses:no-track>not a link</span>)"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      std::string msg = html_message(c.html + R"(<a href="https://e.test/b">)");
      Template t = Template::parse(msg);
      CHECK(urls(t) == V{"https://e.test/b"});
      CHECK(t.render(untouched, "") == html_message(c.want + R"(<a href="https://e.test/b">)"));
    }
  }

  TEST_CASE("ses:tags becomes the link's tags and is removed") {
    std::string msg = html_message(
        R"(<a ses:tags="campaign:nov;slot:hero&amp;x" href="https://e.test/a">a</a>)"
        R"(<a href="https://e.test/b" SES:TAGS='k:v'>b</a><a href="https://e.test/c">c</a>)"
        R"(<a ses:tags="k:v" ses:no-track href="https://e.test/d">d</a>)");
    Template t = Template::parse(msg);
    REQUIRE(t.links().size() == 3);
    CHECK(t.links()[0].tags == "campaign:nov;slot:hero&x");
    CHECK(t.links()[1].tags == "k:v");
    CHECK(t.links()[2].tags == "");
    CHECK(t.render(untouched, "") ==
          html_message(R"(<a href="https://e.test/a">a</a>)"
                       R"(<a href="https://e.test/b">b</a><a href="https://e.test/c">c</a>)"
                       R"(<a href="https://e.test/d">d</a>)"));
  }

  TEST_CASE("the pixel goes before the last </body>, else at the end") {
    struct Case {
      std::string html, want;
    };
    Case cases[] = {
        {"<html><body>x</body></html>\r\n", "<html><body>x" + kPixel + "</body></html>\r\n"},
        {"<body>a</body>b</BODY >\r\n", "<body>a</body>b" + kPixel + "</BODY >\r\n"},
        {"<body>x<!-- </body> --></body>", "<body>x<!-- </body> -->" + kPixel + "</body>"},
        {"<body>x<script>'</body>'</script>\r\n",
         "<body>x<script>'</body>'</script>" + kPixel + "\r\n"},
        {"<b>no body</b>\r\n", "<b>no body</b>" + kPixel + "\r\n"},
        {"<b>no newline</b>", "<b>no newline</b>" + kPixel},
        {"<b>lf</b>\n", "<b>lf</b>" + kPixel + "\n"},
        {"", kPixel},
    };
    for (const auto& c : cases) {
      CAPTURE(c.html);
      Template t = Template::parse(html_message(c.html));
      CHECK(t.render(untouched, kPixelUrl) == html_message(c.want));
      CHECK(t.render(untouched, "") == html_message(c.html));
    }
  }

  // A newsletter the way mailers build them: everything a rewriter must
  // not touch around two HTML parts (QP and base64).
  const std::string kHtmlQp = crlf(
      "<html><body>\n"
      "<p>Hello! <a href=3D\"https://example.com/one?a=3D1&amp;b=3D2\">One</a></p>\n"
      "<p>An untouched line =E2=80=94 stays byte for byte.</p>\n"
      "</body></html>");
  const std::string kHtmlB64Decoded =
      "<html><body><a href=\"http://example.com/two\">Two</a></body></html>\r\n";
  std::string newsletter() {
    return kHeader +
           crlf(
               "Content-Type: multipart/mixed; boundary=\"==mixed b:1==\"\n"
               "\n"
               "This is a preamble with <a href=\"http://preamble.test/\">a link</a>.\n"
               "--==mixed b:1==\n"
               "Content-Type: multipart/alternative;\n"
               " boundary=alt (a comment)\n"
               "\n"
               "--alt\n"
               "Content-Type: text/plain; charset=utf-8\n"
               "\n"
               "Visit http://plain.test/ or <a href=\"http://plain.test/\">this</a>.\n"
               "--alt\n"
               "Content-Type: multipart/related; type=\"text/html\"; boundary=\"rel\"\n"
               "\n"
               "--rel\n"
               "Content-Type: text/html; charset=utf-8\n"
               "Content-Transfer-Encoding: quoted-printable\n"
               "\n") +
           kHtmlQp +
           crlf(
               "\n"
               "--rel\n"
               "Content-Type: image/png\n"
               "Content-Transfer-Encoding: base64\n"
               "\n"
               "iVBORw0KGgo=\n"
               "--rel--\n"
               "--alt--\n"
               "--==mixed b:1==\n"
               "Content-Type: text/html; charset=iso-8859-1\n"
               "Content-Transfer-Encoding: BASE64\n"
               "\n") +
           base64_76(kHtmlB64Decoded) +
           crlf(
               "\n"
               "--==mixed b:1==\n"
               "Content-Type: message/rfc822\n"
               "\n"
               "Subject: forwarded\n"
               "Content-Type: text/html\n"
               "\n"
               "<a href=\"http://forwarded.test/\">theirs</a>\n"
               "--==mixed b:1==\n"
               "Content-Type: text/html; name=\"invoice.html\"\n"
               "Content-Disposition: attachment; filename=\"invoice.html\"\n"
               "\n"
               "<a href=\"http://attachment.test/\">file</a>\n"
               "--==mixed b:1==--\n"
               "epilogue <a href=\"http://epilogue.test/\">x</a>\n");
  }

  TEST_CASE("nested multiparts: only the text/html parts change") {
    const std::string msg = newsletter();
    Template t = Template::parse(msg);
    CHECK(t.has_html());
    CHECK(t.message() == msg);
    CHECK(urls(t) == V{"https://example.com/one?a=1&b=2", "http://example.com/two"});
    Template owned = Template::parse_owned(std::string(msg));
    CHECK(owned.message() == msg);
    CHECK(owned.links().size() == 2);
    // Nothing to change: the exact input comes back.
    CHECK(t.render(untouched, "") == msg);

    std::vector<std::pair<uint32_t, std::string>> calls;
    std::string got = t.render(
        [&](uint32_t i, std::string_view url) -> std::optional<std::string> {
          calls.emplace_back(i, std::string(url));
          return "https://t.test/c/" + std::to_string(i);
        },
        kPixelUrl);
    CHECK(calls == std::vector<std::pair<uint32_t, std::string>>{
                       {0, "https://example.com/one?a=1&b=2"}, {1, "http://example.com/two"}});

    // Everything before the QP body is identical; so is everything between
    // the two HTML bodies and after the base64 one.
    size_t qp_at = msg.find(kHtmlQp);
    REQUIRE(qp_at != std::string::npos);
    CHECK(got.compare(0, qp_at, msg, 0, qp_at) == 0);
    const std::string between_begin = "\r\n--rel\r\nContent-Type: image/png";
    const std::string between_end = "Content-Transfer-Encoding: BASE64\r\n\r\n";
    size_t mb = msg.find(between_begin), me = msg.find(between_end) + between_end.size();
    size_t gb = got.find(between_begin), ge = got.find(between_end) + between_end.size();
    REQUIRE(gb != std::string::npos);
    CHECK(got.substr(gb, ge - gb) == msg.substr(mb, me - mb));
    const std::string tail = "\r\n--==mixed b:1==\r\nContent-Type: message/rfc822";
    size_t mt = msg.find(tail), gt = got.find(tail);
    REQUIRE(gt != std::string::npos);
    CHECK(got.substr(gt) == msg.substr(mt));

    // The QP part: the untouched line is copied as it was, the changed
    // lines decode to the rewritten HTML, every line within 76.
    std::string qp_out = got.substr(qp_at, gb - qp_at);
    CHECK(qp_out.find("<p>An untouched line =E2=80=94 stays byte for byte.</p>\r\n") !=
          std::string::npos);
    CHECK(qp_decode(qp_out) ==
          "<html><body>\r\n<p>Hello! <a href=\"https://t.test/c/0\">One</a></p>\r\n"
          "<p>An untouched line \xE2\x80\x94 stays byte for byte.</p>\r\n" +
              kPixel + "</body></html>");
    CHECK(longest_line(qp_out) <= 76);

    // The base64 part: re-encoded in 76-character lines.
    std::string b64_out = got.substr(ge, gt - ge);
    for (const auto& l : split_lines(b64_out)) CHECK(l.size() <= 76);
    CHECK(mta::core::base64_decode(b64_out) ==
          "<html><body><a href=\"https://t.test/c/1\">Two</a>" + kPixel + "</body></html>\r\n");
  }

  TEST_CASE("multipart boundaries per RFC 2046") {
    struct Case {
      const char* name;
      std::string msg, want;
    };
    const std::string link = "<a href=\"http://e.test/\">x</a>";
    const std::string repl = "<a href=\"https://t.test/c/0\">x</a>";
    Case cases[] = {
        {"transport padding after the delimiters",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b \t\r\n"
         "Content-Type: text/html\r\n\r\n" +
             link + "\r\n--b-- \r\n",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b \t\r\n"
         "Content-Type: text/html\r\n\r\n" +
             repl + "\r\n--b-- \r\n"},
        {"no close delimiter",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
         "Content-Type: text/html\r\n\r\n" +
             link + "\r\n",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
         "Content-Type: text/html\r\n\r\n" +
             repl + "\r\n"},
        {"a line that only starts like the boundary is content",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
         "Content-Type: text/html\r\n\r\n--bx\r\n" +
             link + "\r\n--b--\r\n",
         "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
         "Content-Type: text/html\r\n\r\n--bx\r\n" +
             repl + "\r\n--b--\r\n"},
        {"quoted boundary with spaces and a case-insensitive type",
         "Content-Type: Multipart/Mixed; BOUNDARY=\"a b\"\r\n\r\n--a b\r\n"
         "Content-Type: TEXT/HTML\r\n\r\n" +
             link + "\r\n--a b--\r\n",
         "Content-Type: Multipart/Mixed; BOUNDARY=\"a b\"\r\n\r\n--a b\r\n"
         "Content-Type: TEXT/HTML\r\n\r\n" +
             repl + "\r\n--a b--\r\n"},
        {"a part without headers is text/plain",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + link + "\r\n--b--\r\n",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + link + "\r\n--b--\r\n"},
        {"no boundary parameter",
         "Content-Type: multipart/mixed\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n" + link +
             "\r\n",
         "Content-Type: multipart/mixed\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n" + link +
             "\r\n"},
        {"no Content-Type at all is text/plain", "\r\n" + link + "\r\n", "\r\n" + link + "\r\n"},
        {"folded Content-Type header",
         "Content-Type:\r\n text/html;\r\n\tcharset=utf-8\r\n\r\n" + link,
         "Content-Type:\r\n text/html;\r\n\tcharset=utf-8\r\n\r\n" + repl},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      Template t = Template::parse(kHeader + c.msg);
      CHECK(t.render(numbered, "") == kHeader + c.want);
    }
  }

  TEST_CASE("quoted-printable: a soft-wrapped long URL is found and rewritten") {
    const std::string enc = crlf(
        "<p>First line, not changed =E2=80=94 at all.</p>\n"
        "<p>Read <a class=3D\"btn\" href=3D\"https://example.com/articles/2026/11/a-ve=\n"
        "ry-long-path-segment-that-wraps?utm_source=3Dnews&amp;utm_medium=3Demail&a=\n"
        "mp;utm_campaign=3Dnov\">more</a> today.</p>\n"
        "<p>Last line, not changed.</p>\n");
    const std::string url =
        "https://example.com/articles/2026/11/a-very-long-path-segment-that-wraps"
        "?utm_source=news&utm_medium=email&utm_campaign=nov";
    Template t = Template::parse(html_message(enc, "quoted-printable"));
    CHECK(urls(t) == V{url});
    std::string long_repl = "https://t.test/c/" + std::string(120, 'T');
    std::string got = t.render(
        [&](uint32_t, std::string_view) { return std::optional<std::string>(long_repl); }, "");
    std::string body = got.substr(html_message("", "quoted-printable").size());
    CHECK(body.find("<p>First line, not changed =E2=80=94 at all.</p>\r\n") == 0);
    CHECK(body.find("\r\n<p>Last line, not changed.</p>\r\n") != std::string::npos);
    CHECK(longest_line(body) <= 76);
    CHECK(qp_decode(body) == crlf("<p>First line, not changed \xE2\x80\x94 at all.</p>\n"
                                  "<p>Read <a class=\"btn\" href=\"" +
                                  long_repl +
                                  "\">more</a> today.</p>\n"
                                  "<p>Last line, not changed.</p>\n"));
  }

  TEST_CASE("quoted-printable: only the encoded lines holding a change are re-encoded") {
    const std::string l1 =
        "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmo=\r\n";
    const std::string l2 =
        "d tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim v=\r\n";
    const std::string l3 =
        "eniam <a href=3D\"https://e.test/x\">quis</a> nostrud exercitation ullamc=\r\n";
    const std::string l4 =
        "o laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor=\r\n";
    const std::string l5 = " in reprehenderit in voluptate velit esse.</p>\r\n";
    Template t = Template::parse(html_message(l1 + l2 + l3 + l4 + l5, "quoted-printable"));
    CHECK(urls(t) == V{"https://e.test/x"});
    const std::string repl = "https://t.test/c/" + std::string(100, 'T');
    std::string got =
        t.render([&](uint32_t, std::string_view) { return std::optional<std::string>(repl); }, "");
    std::string body = got.substr(html_message("", "quoted-printable").size());
    CHECK(body.compare(0, l1.size() + l2.size(), l1 + l2) == 0);
    REQUIRE(body.size() > l4.size() + l5.size());
    CHECK(body.substr(body.size() - l4.size() - l5.size()) == l4 + l5);
    CHECK(body.find(l3) == std::string::npos);
    CHECK(longest_line(body) <= 76);
    CHECK(qp_decode(body) == qp_decode(l1 + l2 + "eniam <a href=3D\"" + repl +
                                       "\">quis</a> nostrud exercitation ullamc=\r\n" + l4 + l5));
  }

  TEST_CASE("quoted-printable: a URL with =3D and an href split across hard lines") {
    // A browser drops the line break inside the value; so does the rewriter.
    const std::string enc =
        crlf("<a href=3D\"https://e.test/?a=3D1\n&amp;b=3D2\">x</a>\n<p>end</p>");
    Template t = Template::parse(html_message(enc, "quoted-printable"));
    CHECK(urls(t) == V{"https://e.test/?a=1&b=2"});
    std::string got = t.render(numbered, kPixelUrl);
    std::string body = got.substr(html_message("", "quoted-printable").size());
    CHECK(longest_line(body) <= 76);
    CHECK(qp_decode(body) == "<a href=\"https://t.test/c/0\">x</a>\r\n<p>end</p>" + kPixel);
  }

  TEST_CASE("base64: a single-part message keeps its final line break") {
    std::string html = "<html><body><a href=\"https://e.test/a\">a</a></body></html>\r\n";
    std::string msg = html_message(base64_76(html) + "\r\n", "base64");
    Template t = Template::parse(msg);
    CHECK(urls(t) == V{"https://e.test/a"});
    std::string got = t.render(numbered, kPixelUrl);
    std::string body = got.substr(html_message("", "base64").size());
    REQUIRE(body.size() > 2);
    CHECK(body.compare(body.size() - 2, 2, "\r\n") == 0);
    CHECK(longest_line(body) <= 76);
    CHECK(mta::core::base64_decode(body) ==
          "<html><body><a href=\"https://t.test/c/0\">a</a>" + kPixel + "</body></html>\r\n");
    CHECK(t.render(untouched, "") == msg);
  }

  TEST_CASE("7bit: no line exceeds 998 octets after rewriting") {
    const std::string repl = "https://t.test/c/" + std::string(300, 'R');
    auto render = [&](const std::string& html) {
      Template t = Template::parse(html_message(html));
      REQUIRE(t.links().size() >= 1);
      std::string got = t.render(
          [&](uint32_t, std::string_view) { return std::optional<std::string>(repl); }, kPixelUrl);
      return got.substr(html_message("").size());
    };
    struct Case {
      const char* name;
      std::string html, want;
    };
    const std::string x900(900, 'x'), y900(900, 'y');
    Case cases[] = {
        {"break before href", x900 + "<a class=\"c\" href=\"http://e.test/\">L</a>\r\n",
         x900 + "<a class=\"c\" \r\nhref=\"" + repl + "\">L</a>" + kPixel + "\r\n"},
        {"break after the value", "<a href=\"http://e.test/\">" + y900 + "</a>\r\n",
         "<a href=\"" + repl + "\"\r\n>" + y900 + "</a>\r\n" + kPixel + "\r\n"},
        {"both", x900 + "<a href=http://e.test/ id=z>" + y900 + "\r\n",
         x900 + "<a \r\nhref=" + repl + "\r\n id=z>" + y900 + "\r\n" + kPixel + "\r\n"},
        {"short lines are left alone", "<a href=\"http://e.test/\">L</a>\r\n",
         "<a href=\"" + repl + "\">L</a>" + kPixel + "\r\n"},
        {"two links on one line",
         x900 + "<a href='http://e.test/1'>1</a><a href='http://e.test/2'>2</a>",
         x900 + "<a \r\nhref='" + repl + "'>1</a><a href='" + repl + "'>2</a>" + kPixel},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      std::string got = render(c.html);
      CHECK(got == c.want);
      CHECK(longest_line(got) <= 998);
    }
    // The pixel at the end of a long line.
    Template t = Template::parse(html_message(std::string(990, 'z') + "</body>\r\n"));
    std::string got = t.render(untouched, kPixelUrl).substr(html_message("").size());
    CHECK(got == std::string(990, 'z') + "\r\n" + kPixel + "</body>\r\n");
    // Quoted-printable and base64 have no such limit on the decoded text.
  }

  TEST_CASE("parts that must not be rewritten are left exactly as they are") {
    struct Case {
      const char* name;
      std::string msg;
    };
    const std::string link = "<a href=\"http://e.test/\">x</a></body>\r\n";
    Case cases[] = {
        {"text/plain", "Content-Type: text/plain\r\n\r\n" + link},
        {"UTF-16", "Content-Type: text/html; charset=UTF-16\r\n\r\n" + link},
        {"UTF-16LE quoted", "Content-Type: text/html; charset=\"utf-16le\"\r\n\r\n" + link},
        {"ISO-2022-JP", "Content-Type: text/html; charset=iso-2022-jp\r\n\r\n" + link},
        {"NUL octets (UTF-16 without a label)",
         "Content-Type: text/html\r\n\r\n" + std::string("<\0a\0 \0h\0", 8) + link},
        {"byte order mark", "Content-Type: text/html\r\n\r\n\xFF\xFE" + link},
        {"unknown transfer encoding",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n" + link},
        {"attachment", "Content-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n" + link},
        {"message/rfc822",
         "Content-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n" + link},
        {"base64 with garbage",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGE+!!!*\r\n"},
        {"no body", "Content-Type: text/html\r\nSubject: x\r\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      std::string msg = kHeader + c.msg;
      Template t = Template::parse(msg);
      CHECK_FALSE(t.has_html());
      CHECK(t.links().empty());
      CHECK(t.render(numbered, kPixelUrl) == msg);
    }
  }

  TEST_CASE("link indices run over all HTML parts in document order") {
    std::string msg =
        kHeader + crlf(
                      "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                      "Content-Type: text/html\n\n"
                      "<a href=\"http://e.test/0\">0</a><a href=\"http://e.test/1\">1</a>\n"
                      "--b\n"
                      "Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
                      "<a href=3D\"http://e.test/2\">2</a>\n"
                      "--b--\n");
    Template t = Template::parse(msg);
    CHECK(urls(t) == V{"http://e.test/0", "http://e.test/1", "http://e.test/2"});
    // Leaving one link alone keeps it as it was.
    std::string got = t.render(
        [](uint32_t i, std::string_view u) -> std::optional<std::string> {
          if (i == 1) return std::nullopt;
          return "https://t.test/c/" + std::to_string(i) + "?u=" + std::string(u.substr(14));
        },
        "");
    CHECK(got ==
          kHeader +
              crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n"
                   "Content-Type: text/html\n\n"
                   "<a href=\"https://t.test/c/0?u=0\">0</a><a href=\"http://e.test/1\">1</a>\n"
                   "--b\n"
                   "Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n"
                   "<a href=3D\"https://t.test/c/2?u=3D2\">2</a>\n"
                   "--b--\n"));
  }

  TEST_CASE("malformed input never crashes and changes nothing it cannot parse") {
    struct Case {
      const char* name;
      std::string msg;
      size_t links;
    };
    Case cases[] = {
        {"truncated multipart (cut in a part header)",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/ht", 0},
        {"truncated multipart (cut in the HTML)",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
         "<a href=\"http://e.test/\">x</a><a hr",
         1},
        {"multipart with only a close delimiter",
         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n", 0},
        {"empty boundary", "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\n<a>", 0},
        {"unterminated tag", "Content-Type: text/html\r\n\r\n<a href=\"http://e.test/\"", 0},
        {"unterminated quote", "Content-Type: text/html\r\n\r\n<a href=\"http://e.test/>x</a>", 0},
        {"href without value", "Content-Type: text/html\r\n\r\n<a href>x</a><a href=>y</a>", 0},
        {"lone <", "Content-Type: text/html\r\n\r\n<", 0},
        {"unterminated comment", "Content-Type: text/html\r\n\r\n<!-- <a href=\"http://e.test/\">",
         0},
        {"QP with bad escapes",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
         "=ZZ=4<a href=3D\"http://e.test/?x=3\">x</a>=\r\n=",
         1},
        {"QP ending in '='",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=", 0},
        {"base64 with a bad length",
         "Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGE", 0},
        {"unterminated Content-Type comment and quote",
         "Content-Type: multipart/mixed; (comment \\\r\n\r\n", 0},
        {"unterminated quoted boundary",
         "Content-Type: multipart/mixed; boundary=\"b\r\n\r\n--b\r\n\r\n", 0},
        {"header without a colon", "Content-Type text/html\r\n\r\n<a href=\"http://e.test/\">", 0},
        {"nothing", "", 0},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      Template t = Template::parse(c.msg);
      CHECK(t.links().size() == c.links);
      std::string got = t.render(numbered, kPixelUrl);
      if (!t.has_html()) CHECK(got == c.msg);
    }
    // Deep nesting stops at a limit instead of the stack.
    std::string deep;
    for (int i = 0; i < 200; ++i) {
      deep += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
              std::to_string(i) + "\r\n";
    }
    deep += "Content-Type: text/html\r\n\r\n<a href=\"http://e.test/\">x</a>\r\n";
    Template t = Template::parse(deep);
    CHECK_FALSE(t.has_html());
    CHECK(t.render(numbered, kPixelUrl) == deep);
  }

  TEST_CASE("truncated and corrupted messages parse and render safely") {
    // Run under ASan/UBSan this is a small fuzzer: every prefix of a real
    // message, and random damage with the octets that matter to MIME/HTML.
    const std::string msg = newsletter();
    auto check = [](const std::string& m) {
      Template t = Template::parse(m);
      std::string got = t.render(numbered, kPixelUrl);
      CHECK(!got.empty() == !m.empty());
      CHECK(t.render(untouched, "") == m);  // no ses:no-track in these inputs
    };
    for (size_t n = 0; n <= msg.size(); n += 3) check(msg.substr(0, n));
    const char kOctets[] = {'<', '>', '"',  '\'',   '=', '&', '-', '\r', '\n', ' ',
                            '/', '!', '\0', '\xFF', 'a', '3', 'D', '#',  ';'};
    uint32_t seed = 12345;
    auto next = [&] {
      seed = seed * 1103515245u + 12345u;
      return seed >> 8;
    };
    for (int round = 0; round < 1500; ++round) {
      std::string m = msg;
      for (uint32_t k = next() % 4 + 1; k > 0; --k) {
        size_t at = next() % m.size();
        char c = kOctets[next() % sizeof(kOctets)];
        switch (next() % 3) {
          case 0:
            m[at] = c;
            break;
          case 1:
            m.insert(at, 1, c);
            break;
          default:
            m.erase(at, next() % 40);
            break;
        }
      }
      check(m);
    }
  }

  TEST_CASE("concurrent renders of one template give each recipient its own copy") {
    Template t = Template::parse(newsletter());
    std::vector<std::string> got(4);
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; ++k) {
      threads.emplace_back([&, k] {
        for (int n = 0; n < 50; ++n) {
          got[k] = t.render(
              [&](uint32_t i, std::string_view) {
                return std::optional<std::string>("https://t.test/c/r" + std::to_string(k) + "/" +
                                                  std::to_string(i));
              },
              "https://t.test/o/r" + std::to_string(k) + ".gif");
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int k = 0; k < 4; ++k) {
      CAPTURE(k);
      CHECK(got[k].find("https://t.test/c/r" + std::to_string(k) + "/0") != std::string::npos);
      Template again = Template::parse(got[k]);  // the output parses back to the new links
      CHECK(urls(again) == V{"https://t.test/c/r" + std::to_string(k) + "/0",
                             "https://t.test/c/r" + std::to_string(k) + "/1"});
    }
  }
}
