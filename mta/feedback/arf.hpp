// Feedback: reading the complaint reports that mailbox providers send back
// (feedback loops) and deciding whom they are about.
//
// parse_report() reads an Abuse Reporting Format report (RFC 5965: a
// multipart/report; report-type=feedback-report with a
// message/feedback-report part and the reported message as message/rfc822
// or text/rfc822-headers), and also Microsoft's older JMRP shape (the
// reported message attached or forwarded with an X-HmXmrOriginalRecipient
// header, no feedback-report part). What it keeps of the reported message is
// what lets us find our copy: X-MTA-Message-ID (every message we deliver
// carries it), Message-ID, and the recipient evidence (To, Cc,
// X-HmXmrOriginalRecipient). Pure functions: no I/O, no clock; the
// Processor (processor.hpp) calls them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::feedback {

struct Report {
  enum class Format { kArf, kLegacyJmrp };
  Format format = Format::kArf;
  // From the message/feedback-report part (RFC 5965 3.1, 3.2).
  std::string feedback_type;  // lowercased; "abuse" for the legacy JMRP shape
  std::string user_agent;
  std::string version;
  std::string arrival_date;  // Arrival-Date, else the older Received-Date, as written
  std::string source_ip;
  std::string original_mail_from;             // without <>
  std::vector<std::string> original_rcpt_to;  // Original-Rcpt-To and Removal-Recipient
  std::string reported_domain;
  // From the reported message, when the report includes it.
  bool has_original = false;
  std::string mta_message_id;  // X-MTA-Message-ID: 32 lowercase hex digits, or ""
  std::string message_id;      // Message-ID as written ("<...>")
  // X-HmXmrOriginalRecipient: the complainer, as Microsoft stamps it.
  std::vector<std::string> original_recipients;
  std::vector<std::string> to_cc;  // the To and Cc addresses (weak evidence)
};

struct Parsed {
  std::optional<Report> report;
  std::string error;  // why it is not a feedback report, when report is empty
};

// `message` is the whole mail the provider sent (CRLF or LF line ends).
Parsed parse_report(std::string_view message);

// Who complained, among the recipients of the message the report matched:
// the Original-Rcpt-To / Removal-Recipient / X-HmXmrOriginalRecipient
// addresses that are recipients of it; else the one To/Cc address that is;
// else the only recipient. When none of that decides (a redacted report
// about a message with several recipients), every recipient is listed (SES:
// "recipients that may have submitted the complaint") and `certain` is
// false, so no address is suppressed on a guess.
struct Complained {
  std::vector<std::string> recipients;  // spelled as in the message's envelope
  bool certain = false;
};
Complained complained_recipients(const Report& r, const std::vector<std::string>& recipients);

// Whether a report of this Feedback-Type suppresses the complainer: yes for
// abuse, fraud, virus, other and unknown types; no for "not-spam" (the user
// says it is wanted mail) and "auth-failure" (RFC 6591: about
// authentication, not about the recipient's wishes).
bool suppresses(std::string_view feedback_type);

// RFC 5322 date-time (also the obsolete zone names EDT, PST, UT... and
// two-digit years, and a trailing comment) -> Unix milliseconds.
std::optional<int64_t> parse_date(std::string_view text);

// "type/subtype; name=value; name2="quoted value"": the lowercased type and
// the parameters (lowercased names, unquoted values).
struct ContentType {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;
  std::string param(std::string_view name) const;  // "" when absent
};
ContentType parse_content_type(std::string_view value);

// RFC 2045 6.7 quoted-printable decoding (soft line breaks removed; a
// malformed =XX is kept as it is).
std::string quoted_printable_decode(std::string_view in);

}  // namespace mta::feedback
