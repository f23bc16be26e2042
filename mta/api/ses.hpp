// The SES request and reply shapes, as pure functions: SendEmail of the v2
// JSON API and SendEmail/SendRawEmail of the v1 query API parsed into one
// SendRequest; compose() turns it into the message and envelope that
// intake::prepare() takes (building MIME for Simple content, checking and
// normalising Raw content); the v1 XML replies and errors and the v2 JSON
// errors. Every refusal is an ApiError whose message starts with the name
// of the offending field as the API spells it ("Destination.ToAddresses[1]",
// "Message.Subject.Data", "RawMessage.Data").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mta/api/form.hpp"
#include "mta/protocol/mime.hpp"

namespace mta::api {

struct ApiError {
  int status = 400;
  std::string code;  // SES's error code, e.g. BadRequestException, InvalidParameterValue
  std::string message;
};

enum class Api { kV1, kV2 };

struct SendRequest {
  Api api = Api::kV2;
  bool raw = false;
  std::string action;  // "SendEmail" or "SendRawEmail"
  // How this API names the fields compose() may complain about.
  std::string content_field;  // "Content.Simple", "Content.Raw.Data", "Message", "RawMessage.Data"
  std::string recipients_field;           // "Destination", "Destinations"
  std::optional<protocol::Mailbox> from;  // FromEmailAddress / Source
  std::string return_path;                // ReturnPath / FeedbackForwardingEmailAddress
  std::vector<protocol::Mailbox> to, cc, bcc, reply_to;
  // Simple content.
  std::string subject;
  std::string subject_charset = "UTF-8";
  std::optional<protocol::TextBody> text, html;
  std::vector<std::pair<std::string, std::string>> headers;
  // Raw content, decoded.
  std::string raw_message;
  std::optional<std::string> configuration_set;
  std::vector<std::pair<std::string, std::string>> tags;
  std::optional<std::string> idempotency_key;  // v2 "IdempotencyKey" (ours)
  // v2 ListManagementOptions {ContactListName, TopicName?}.
  std::optional<std::pair<std::string, std::string>> list_management;
};

// POST /v2/email/outbound-emails.
std::variant<SendRequest, ApiError> parse_v2_send(std::string_view json_body);
// POST / with Action=SendEmail or Action=SendRawEmail.
std::variant<SendRequest, ApiError> parse_v1_send(const Params& form);

struct Limits {
  uint32_t max_recipients = 50;
  uint64_t max_message_bytes = 41943040;
};

struct Composed {
  std::string mail_from;
  std::vector<std::string> recipients;
  std::string message;  // CRLF line ends, without our trace headers
  bool eight_bit = false;
};

// `message_id` ("<id@host>") and `now_s` go into the Simple message's
// Message-ID and Date; `boundary` separates its parts. Raw messages keep
// theirs (intake adds them when missing) and lose any Bcc header.
std::variant<Composed, ApiError> compose(const SendRequest& req, const Limits& limits,
                                         const std::string& message_id, int64_t now_s,
                                         const std::string& boundary);

// A validation error in the API's own code: BadRequestException (v2) or
// InvalidParameterValue (v1), status 400.
ApiError bad_request(Api api, std::string message);

std::string v1_send_result(std::string_view action, std::string_view message_id,
                           std::string_view request_id);
std::string v1_error(const ApiError& e, std::string_view request_id);
std::string v2_error(const ApiError& e);  // {"__type": code, "message": ...}

}  // namespace mta::api
