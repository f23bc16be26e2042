// Tracking rewrite cost on one core: a ~20 KB HTML newsletter (table
// layout, inline styles, ~40 links with utm parameters and &amp;) in a
// multipart/alternative with a text part, the HTML part quoted-printable
// (and a second run with it base64). Reports
//   parse+render: Template::parse() and one render(), as a message with a
//                 single recipient costs; MB/s of decoded HTML;
//   render:       render() alone of one parsed template, per recipient
//                 (what each further recipient of the message costs).
// The click URLs look like real ones ({base_url}/c/{~90-character token}).
//
//   mta_rewrite_bench [CPU seconds per measurement]

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "mta/core/base64.hpp"
#include "mta/rewrite/codec.hpp"
#include "mta/rewrite/rewrite.hpp"

using mta::rewrite::Template;

namespace {

std::string newsletter_html() {
  std::string h =
      "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" "
      "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\r\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head>\r\n"
      "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\r\n"
      "<title>Weekly digest</title>\r\n"
      "<style type=\"text/css\">body{margin:0;padding:0;background:#f4f4f4}"
      "table{border-collapse:collapse}a{color:#1a73e8;text-decoration:none}"
      ".btn a{display:inline-block;padding:12px 24px}</style>\r\n"
      "</head><body style=\"margin:0;padding:0;background-color:#f4f4f4;\">\r\n"
      "<!--[if mso]><table role=\"presentation\" width=\"600\"><tr><td><![endif]-->\r\n"
      "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" "
      "border=\"0\" style=\"max-width:600px;margin:0 auto;background:#ffffff;\">\r\n";
  for (int i = 0; i < 19; ++i) {
    std::string n = std::to_string(i);
    h += "<tr><td style=\"padding:24px 32px 8px 32px;font-family:Helvetica,Arial,sans-serif;"
         "font-size:20px;line-height:28px;color:#202124;\">\r\n"
         "<a href=\"https://news.example.com/articles/2026/11/story-" +
         n +
         "?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=weekly-48&amp;"
         "utm_content=headline-" +
         n + "\" style=\"color:#202124;text-decoration:none;\">Story number " + n +
         ": what changed this week in the things you follow</a></td></tr>\r\n"
         "<tr><td style=\"padding:0 32px 16px 32px;font-family:Helvetica,Arial,sans-serif;"
         "font-size:15px;line-height:22px;color:#5f6368;\">Lorem ipsum dolor sit amet, "
         "consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore "
         "magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris "
         "nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit "
         "in voluptate velit esse cillum dolore &mdash; "
         "<a href='https://news.example.com/articles/2026/11/story-" +
         n + "#comments' style=\"color:#1a73e8;\">read the comments</a>.</td></tr>\r\n";
  }
  h += "<tr><td style=\"padding:24px 32px;font-size:12px;color:#9aa0a6;\">"
       "You receive this because you subscribed. "
       "<a href=\"{{unsubscribe_url}}\">Unsubscribe</a> &middot; "
       "<a href=\"mailto:help@example.com\">Contact</a> &middot; "
       "<a href=\"https://example.com/preferences?u=12345&amp;l=weekly\">Preferences</a>"
       "</td></tr>\r\n</table>\r\n<!--[if mso]></td></tr></table><![endif]-->\r\n"
       "</body></html>\r\n";
  return h;
}

std::string message(const std::string& html, bool base64) {
  std::string body;
  if (base64) {
    std::string b = mta::core::base64_encode(html);
    for (size_t i = 0; i < b.size(); i += 76) body += b.substr(i, 76) + "\r\n";
  } else {
    mta::rewrite::detail::qp_encode(html, body);
    body += "\r\n";
  }
  return "From: News <news@example.com>\r\nTo: reader@example.org\r\n"
         "Subject: Weekly digest\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
         "Message-ID: <digest-48@example.com>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/alternative; boundary=\"b1_digest\"\r\n\r\n"
         "--b1_digest\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
         "Weekly digest. Read online: https://news.example.com/weekly-48\r\n\r\n"
         "--b1_digest\r\nContent-Type: text/html; charset=utf-8\r\n"
         "Content-Transfer-Encoding: " +
         std::string(base64 ? "base64" : "quoted-printable") + "\r\n\r\n" + body +
         "\r\n--b1_digest--\r\n";
}

std::optional<std::string> click(uint32_t i, std::string_view) {
  // A token the size tracking's are (HMAC-SHA256 + ids, base64url).
  static const std::string base =
      "https://t.example.com/c/"
      "AZ3kQ9x_7mPcW2vB8nLr0TqYs5HdJf1Ug6Ki4Ee_Oa9Xw3Zb7Mc2Nv8Rp0Ls5Tj1Dh6Fg4Yk9Qm3Wn7Bx2Cz8Va0";
  return base + std::to_string(i);
}

// CPU time of this thread: the machine is shared, wall time would count
// other processes' turns.
double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void run(const char* name, const std::string& msg, double seconds) {
  const std::string pixel =
      "https://t.example.com/o/"
      "AZ3kQ9x_7mPcW2vB8nLr0TqYs5HdJf1Ug6Ki4Ee_Oa9Xw3Zb7Mc2Nv8Rp0Ls5Tj1Dh6Fg4Yk9Qm3Wn7Bx.gif";
  Template probe = Template::parse(msg);
  const double html_mb = static_cast<double>(probe.html_bytes()) / 1e6;
  size_t out_size = probe.render(click, pixel).size();

  uint64_t n = 0;
  size_t sink = 0;
  double t0 = now_s(), t1 = t0;
  while (t1 - t0 < seconds) {
    for (int k = 0; k < 100; ++k, ++n) {
      Template t = Template::parse(msg);
      sink += t.render(click, pixel).size();
    }
    t1 = now_s();
  }
  double pr = static_cast<double>(n) / (t1 - t0);

  uint64_t m = 0;
  t0 = t1 = now_s();
  while (t1 - t0 < seconds) {
    for (int k = 0; k < 100; ++k, ++m) sink += probe.render(click, pixel).size();
    t1 = now_s();
  }
  double r = static_cast<double>(m) / (t1 - t0);
  std::printf(
      "%-17s message %zu B, HTML %zu B, %zu links, output %zu B\n"
      "  parse+render: %8.0f msg/s  %7.1f MB/s of HTML  (%.1f us)\n"
      "  render only:  %8.0f renders/s  %7.1f MB/s of HTML  (%.1f us)\n",
      name, msg.size(), probe.html_bytes(), probe.links().size(), out_size, pr, pr * html_mb,
      1e6 / pr, r, r * html_mb, 1e6 / r);
  if (sink == 0) std::printf("?\n");
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const std::string html = newsletter_html();
  run("quoted-printable", message(html, false), seconds);
  run("base64", message(html, true), seconds);
  return 0;
}
