// SMTP commands as the server reads them (RFC 5321 section 4.1, RFC 1870
// SIZE, RFC 6152 8BITMIME, RFC 4954 AUTH, RFC 3207 STARTTLS). Pure parsing:
// no sockets, no state. The session decides what is allowed when.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::protocol {

enum class Verb {
  kHelo,
  kEhlo,
  kMail,
  kRcpt,
  kData,
  kRset,
  kNoop,
  kQuit,
  kVrfy,
  kExpn,
  kHelp,
  kStarttls,
  kAuth,
  kBdat,
  kUnknown
};
const char* to_string(Verb v);

struct Command {
  Verb verb = Verb::kUnknown;
  std::string_view arg;  // everything after the verb and one space, CRLF removed; views the line
};

// `line` is one command line without its CRLF (or LF). Verbs are
// case-insensitive. A verb must be followed by a space or the end of the
// line ("MAILX" is kUnknown). For MAIL/RCPT, `arg` is "FROM:<a@b> SIZE=10" /
// "TO:<a@b>": parse_mail_from/parse_rcpt_to check the prefix.
Command parse_command(std::string_view line);

enum class Body { k7Bit, k8BitMime };

struct MailFrom {
  std::string address;           // "" for the null reverse-path <>
  std::optional<uint64_t> size;  // SIZE=
  Body body = Body::k7Bit;       // BODY=
};

struct RcptTo {
  std::string address;
};

// Parse errors carry the reply the server should send.
struct ParseError {
  int code;              // 501, 553, 555
  std::string enhanced;  // "5.5.4"
  std::string text;
};

template <class T>
struct Parsed {
  std::optional<T> value;
  std::optional<ParseError> error;
};

// `arg` is Command::arg of a MAIL/RCPT command: "FROM:<a@b.c> SIZE=123".
// Accepts "FROM: <a@b>" (a space after the colon, as many clients send) and
// ignores a source route ("<@a,@b:u@c>" gives "u@c", RFC 5321 4.1.1.3).
// Refuses unbalanced brackets and bad paths (501 5.5.4), invalid mailboxes
// and addresses without a domain (501 5.1.7 sender / 501 5.1.3 recipient;
// the null path <> only for MAIL; "RCPT TO:<Postmaster>" gives "postmaster"),
// unknown parameters (555 5.5.4) and bad SIZE/BODY values (501 5.5.4).
// MAIL takes SIZE, BODY and AUTH (RFC 4954; checked, then ignored); RCPT
// takes no parameters.
Parsed<MailFrom> parse_mail_from(std::string_view arg);
Parsed<RcptTo> parse_rcpt_to(std::string_view arg);

// A mailbox "local@domain" per RFC 5321 4.1.2: dot-atom or quoted local
// part (max 64 octets), a domain of LDH labels (max 255) or an address
// literal ([192.0.2.1], [IPv6:...]). 8-bit octets are refused (no SMTPUTF8).
bool is_valid_mailbox(std::string_view address);

// The domain part of a mailbox (after the last '@'), lowercased.
std::string domain_of(std::string_view address);

}  // namespace mta::protocol
