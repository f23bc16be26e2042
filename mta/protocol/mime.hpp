// MIME pieces for messages we compose ourselves (the HTTP API's "Simple"
// content) and for reading address headers of messages we are given: RFC
// 5322 mailboxes and address lists, RFC 2047 encoded-words, RFC 2045
// quoted-printable and base64 bodies, charset conversion (iconv) and the
// builder of a whole message (multipart/alternative when both a text and an
// HTML part are given). Pure functions: no I/O, no clock, no randomness (the
// caller passes the date, Message-ID and boundary), so every output is
// reproducible in tests. All output uses CRLF line ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mta::protocol {

// "a@x.test", "Name <a@x.test>", "\"Last, First\" <a@x.test>". The
// display name is kept as given (UTF-8 allowed; quotes removed, \-escapes
// undone); the address is checked with is_valid_mailbox().
struct Mailbox {
  std::string name;
  std::string address;
};
std::optional<Mailbox> parse_mailbox(std::string_view text);

// An address-list header value (To, Cc, Bcc, From): comma-separated
// mailboxes, comments removed, groups ("team: a@x, b@y;") flattened, empty
// groups ("undisclosed-recipients:;") give nothing. nullopt when an element
// is not a mailbox. RFC 2047 words in names are left encoded.
std::optional<std::vector<Mailbox>> parse_address_list(std::string_view value);

// "Name <a@x.test>" for a header: the name as atoms when it is plain ASCII
// words, quoted when it has specials, RFC 2047 encoded-words when it is not
// ASCII; "a@x.test" alone when there is no name.
std::string format_mailbox(const Mailbox& m);

// An unstructured header value (Subject): unchanged when it is printable
// ASCII without "=?"; otherwise RFC 2047 B encoded-words of at most 75
// characters, separated by spaces (format_header() folds between them),
// never splitting a character. `utf8` is UTF-8; it is converted to
// `charset` first. nullopt when the text cannot be represented in it (or
// the charset is unknown).
std::optional<std::string> encode_header_text(std::string_view utf8,
                                              std::string_view charset = "UTF-8");

// UTF-8 → `charset` (iconv; "UTF-8" and "US-ASCII" are checked without it).
// nullopt when the input is not valid UTF-8, a character has no
// representation in `charset`, or the charset is unknown.
std::optional<std::string> transcode(std::string_view utf8, std::string_view charset);

// LF and lone CR line ends → CRLF.
std::string to_crlf(std::string_view text);

// RFC 2045 6.7: lines of at most 76 characters (soft breaks "=" CRLF),
// "=" and non-printable octets as =XX, trailing white space encoded, line
// breaks of the input (CRLF) kept as hard breaks.
std::string quoted_printable_encode(std::string_view data);
// Base64 in lines of 76 characters, each ending in CRLF.
std::string base64_body(std::string_view data);

// The transfer encoding for a body: quoted-printable when it is mostly
// ASCII, base64 otherwise.
enum class TransferEncoding { kQuotedPrintable, kBase64 };
TransferEncoding choose_encoding(std::string_view data);

struct TextBody {
  std::string data;  // UTF-8, any line ends
  std::string charset = "UTF-8";
};

struct SimpleMessage {
  Mailbox from;
  std::vector<Mailbox> to, cc, reply_to;  // Bcc never appears in the message
  std::string subject;                    // UTF-8
  std::string subject_charset = "UTF-8";
  std::optional<TextBody> text, html;
  // Extra header fields, already checked by the caller (no CR/LF, no
  // structural names); values are encoded like the subject when not ASCII.
  std::vector<std::pair<std::string, std::string>> headers;
  int64_t date = 0;        // Unix seconds
  std::string message_id;  // "<...>"
  std::string boundary;    // for multipart; must not occur in the parts
};

// Which input could not be encoded: "Subject", "Body.Text", "Body.Html",
// "Headers[i]", "From", "To[i]", ...; and why.
struct MimeError {
  std::string field;
  std::string message;
};

std::variant<std::string, MimeError> build_simple(const SimpleMessage& m);

}  // namespace mta::protocol
