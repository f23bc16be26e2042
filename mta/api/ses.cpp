#include "mta/api/ses.hpp"

#include <nlohmann/json.hpp>

#include "mta/core/base64.hpp"
#include "mta/core/text.hpp"
#include "mta/intake/intake.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/message.hpp"

namespace mta::api {
namespace {

using json = nlohmann::json;
using protocol::Mailbox;

// Thrown inside the parsers only, caught at their boundary: it keeps the
// many "field X is wrong" exits short.
struct Refusal {
  ApiError error;
};

[[noreturn]] void refuse(Api api, std::string message) {
  throw Refusal{bad_request(api, std::move(message))};
}

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

bool valid_utf8(std::string_view s) {
  // transcode() to UTF-8 validates without converting.
  return protocol::transcode(s, "UTF-8").has_value();
}

// Text that goes into a header: no CR/LF (header injection), valid UTF-8.
void header_text(Api api, const std::string& field, std::string_view v) {
  if (has_crlf(v)) refuse(api, field + ": must not contain CR or LF");
  if (!valid_utf8(v)) refuse(api, field + ": is not valid UTF-8");
}

Mailbox mailbox(Api api, const std::string& field, std::string_view text) {
  header_text(api, field, text);
  auto m = protocol::parse_mailbox(text);
  if (!m) refuse(api, field + ": not a valid email address: \"" + std::string(text) + "\"");
  return *m;
}

void charset(Api api, const std::string& field, std::string_view cs) {
  if (!protocol::transcode("", cs))
    refuse(api, field + ": unknown charset \"" + std::string(cs) + "\"");
}

// SES tag names and values: 1..256 of ASCII letters, digits, '_', '-' (we
// also take '.' and '@', as X-SES-MESSAGE-TAGS does); "ses:" is reserved.
void tag(Api api, const std::string& field, const std::string& name, const std::string& value) {
  auto ok = [](const std::string& s) {
    if (s.empty() || s.size() > 256) return false;
    for (char c : s)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || c == '.' || c == '@'))
        return false;
    return true;
  };
  if (!ok(name))
    refuse(api, field + ".Name: 1 to 256 of letters, digits, '_', '-', '.', '@' required");
  if (!ok(value))
    refuse(api, field + ".Value: 1 to 256 of letters, digits, '_', '-', '.', '@' required");
}

// Headers a Simple message builds itself, and ours.
bool reserved_header(std::string_view name) {
  static constexpr std::string_view kReserved[] = {"From",
                                                   "To",
                                                   "Cc",
                                                   "Bcc",
                                                   "Reply-To",
                                                   "Subject",
                                                   "Date",
                                                   "Message-ID",
                                                   "MIME-Version",
                                                   "Content-Type",
                                                   "Content-Transfer-Encoding",
                                                   "Return-Path",
                                                   "Received",
                                                   "X-MTA-Message-ID",
                                                   "X-SES-CONFIGURATION-SET",
                                                   "X-Configuration-Set",
                                                   "X-SES-MESSAGE-TAGS"};
  auto ieq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
      if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
      if (x != y) return false;
    }
    return true;
  };
  for (auto r : kReserved)
    if (ieq(name, r)) return true;
  return false;
}

void custom_header(Api api, const std::string& field, const std::string& name,
                   const std::string& value) {
  if (name.empty() || name.size() > 126) refuse(api, field + ".Name: 1 to 126 characters required");
  for (char c : name)
    if (c < 33 || c > 126 || c == ':')
      refuse(api, field + ".Name: not a header field name: \"" + name + "\"");
  if (reserved_header(name))
    refuse(api, field + ".Name: " + name + " is set by the API itself and cannot be given");
  header_text(api, field + ".Value", value);
  if (value.size() > 870) refuse(api, field + ".Value: longer than 870 characters");
}

std::string raw_data(Api api, const std::string& field, std::string_view b64) {
  if (b64.empty()) refuse(api, field + ": is required");
  auto d = core::base64_decode(b64);
  if (!d) refuse(api, field + ": not valid base64");
  if (d->empty()) refuse(api, field + ": the message is empty");
  return std::move(*d);
}

// ---- v2 JSON ------------------------------------------------------------

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& object(const json* v, const std::string& field) {
  if (!v) refuse(Api::kV2, field + ": is required");
  if (!v->is_object()) refuse(Api::kV2, field + ": must be an object");
  return *v;
}

std::optional<std::string> str(const json& obj, const char* key, const std::string& field,
                               bool required) {
  const json* v = member(obj, key);
  if (!v) {
    if (required) refuse(Api::kV2, field + ": is required");
    return std::nullopt;
  }
  if (!v->is_string()) refuse(Api::kV2, field + ": must be a string");
  return v->get<std::string>();
}

std::vector<std::string> str_list(const json& obj, const char* key, const std::string& field) {
  std::vector<std::string> out;
  const json* v = member(obj, key);
  if (!v) return out;
  if (!v->is_array()) refuse(Api::kV2, field + ": must be a list of strings");
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      refuse(Api::kV2, field + "[" + std::to_string(i) + "]: must be a string");
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

std::vector<Mailbox> mailboxes(Api api, const std::vector<std::string>& list,
                               const std::string& field) {
  std::vector<Mailbox> out;
  for (size_t i = 0; i < list.size(); ++i)
    out.push_back(mailbox(api, field + "[" + std::to_string(i) + "]", list[i]));
  return out;
}

std::optional<protocol::TextBody> v2_text(const json& body, const char* key,
                                          const std::string& field) {
  const json* v = member(body, key);
  if (!v) return std::nullopt;
  const json& o = object(v, field);
  protocol::TextBody t;
  t.data = *str(o, "Data", field + ".Data", true);
  if (auto cs = str(o, "Charset", field + ".Charset", false)) {
    header_text(Api::kV2, field + ".Charset", *cs);
    charset(Api::kV2, field + ".Charset", *cs);
    t.charset = *cs;
  }
  return t;
}

SendRequest v2_send(std::string_view body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    refuse(Api::kV2, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) refuse(Api::kV2, "the body must be a JSON object");
  SendRequest r;
  r.api = Api::kV2;
  r.action = "SendEmail";
  r.recipients_field = "Destination";
  const json& content = object(member(j, "Content"), "Content");
  if (member(content, "Template"))
    refuse(Api::kV2, "Content.Template: templates are not supported; use Simple or Raw");
  const json* simple = member(content, "Simple");
  const json* raw = member(content, "Raw");
  if ((simple != nullptr) == (raw != nullptr))
    refuse(Api::kV2, "Content: exactly one of Simple or Raw is required");
  r.raw = raw != nullptr;

  auto from = str(j, "FromEmailAddress", "FromEmailAddress", !r.raw);
  if (from) r.from = mailbox(Api::kV2, "FromEmailAddress", *from);
  if (auto fb = str(j, "FeedbackForwardingEmailAddress", "FeedbackForwardingEmailAddress", false))
    r.return_path = mailbox(Api::kV2, "FeedbackForwardingEmailAddress", *fb).address;
  if (const json* d = member(j, "Destination")) {
    const json& dest = object(d, "Destination");
    r.to = mailboxes(Api::kV2, str_list(dest, "ToAddresses", "Destination.ToAddresses"),
                     "Destination.ToAddresses");
    r.cc = mailboxes(Api::kV2, str_list(dest, "CcAddresses", "Destination.CcAddresses"),
                     "Destination.CcAddresses");
    r.bcc = mailboxes(Api::kV2, str_list(dest, "BccAddresses", "Destination.BccAddresses"),
                      "Destination.BccAddresses");
  } else if (!r.raw) {
    refuse(Api::kV2, "Destination: is required");
  }
  r.reply_to =
      mailboxes(Api::kV2, str_list(j, "ReplyToAddresses", "ReplyToAddresses"), "ReplyToAddresses");

  if (r.raw) {
    r.content_field = "Content.Raw.Data";
    const json& o = object(raw, "Content.Raw");
    r.raw_message =
        raw_data(Api::kV2, "Content.Raw.Data", *str(o, "Data", "Content.Raw.Data", true));
  } else {
    r.content_field = "Content.Simple";
    const json& s = object(simple, "Content.Simple");
    const json& subj = object(member(s, "Subject"), "Content.Simple.Subject");
    r.subject = *str(subj, "Data", "Content.Simple.Subject.Data", true);
    header_text(Api::kV2, "Content.Simple.Subject.Data", r.subject);
    if (auto cs = str(subj, "Charset", "Content.Simple.Subject.Charset", false)) {
      header_text(Api::kV2, "Content.Simple.Subject.Charset", *cs);
      charset(Api::kV2, "Content.Simple.Subject.Charset", *cs);
      r.subject_charset = *cs;
    }
    const json& b = object(member(s, "Body"), "Content.Simple.Body");
    r.text = v2_text(b, "Text", "Content.Simple.Body.Text");
    r.html = v2_text(b, "Html", "Content.Simple.Body.Html");
    if (!r.text && !r.html) refuse(Api::kV2, "Content.Simple.Body: Text or Html is required");
    if (const json* h = member(s, "Headers")) {
      if (!h->is_array()) refuse(Api::kV2, "Content.Simple.Headers: must be a list");
      for (size_t i = 0; i < h->size(); ++i) {
        std::string field = "Content.Simple.Headers[" + std::to_string(i) + "]";
        const json& o = object(&(*h)[i], field);
        auto name = *str(o, "Name", field + ".Name", true);
        auto value = *str(o, "Value", field + ".Value", true);
        custom_header(Api::kV2, field, name, value);
        r.headers.emplace_back(std::move(name), std::move(value));
      }
    }
  }
  if (auto cs = str(j, "ConfigurationSetName", "ConfigurationSetName", false)) {
    header_text(Api::kV2, "ConfigurationSetName", *cs);
    r.configuration_set = *cs;
  }
  // Our extension (SES has none): the Idempotency-Key header's value in
  // the body, for clients that cannot set headers.
  if (auto k = str(j, "IdempotencyKey", "IdempotencyKey", false)) r.idempotency_key = *k;
  if (const json* lm = member(j, "ListManagementOptions")) {
    const json& o = object(lm, "ListManagementOptions");
    auto list = *str(o, "ContactListName", "ListManagementOptions.ContactListName", true);
    if (!intake::valid_list_name(list))
      refuse(Api::kV2,
             "ListManagementOptions.ContactListName: 1 to 128 letters, digits, '_' or '-'");
    std::string topic;
    if (auto t = str(o, "TopicName", "ListManagementOptions.TopicName", false)) {
      if (!intake::valid_list_name(*t))
        refuse(Api::kV2, "ListManagementOptions.TopicName: 1 to 128 letters, digits, '_' or '-'");
      topic = *t;
    }
    r.list_management = std::make_pair(std::move(list), std::move(topic));
  }
  if (const json* tags = member(j, "EmailTags")) {
    if (!tags->is_array()) refuse(Api::kV2, "EmailTags: must be a list");
    for (size_t i = 0; i < tags->size(); ++i) {
      std::string field = "EmailTags[" + std::to_string(i) + "]";
      const json& o = object(&(*tags)[i], field);
      auto name = *str(o, "Name", field + ".Name", true);
      auto value = *str(o, "Value", field + ".Value", true);
      tag(Api::kV2, field, name, value);
      r.tags.emplace_back(std::move(name), std::move(value));
    }
  }
  return r;
}

// ---- v1 form ------------------------------------------------------------

std::optional<std::string> param(const Params& p, const char* name, bool required) {
  const std::string* v = find_param(p, name);
  if (!v || (required && v->empty())) {
    if (required)
      throw Refusal{ApiError{400, "MissingParameter", std::string(name) + ": is required"}};
    return std::nullopt;
  }
  return *v;
}

std::vector<Mailbox> v1_list(const Params& p, const char* prefix) {
  auto l = member_list(p, prefix);
  if (auto* err = std::get_if<std::string>(&l)) refuse(Api::kV1, *err);
  const auto& v = std::get<std::vector<std::string>>(l);
  std::vector<Mailbox> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(
        mailbox(Api::kV1, std::string(prefix) + ".member." + std::to_string(i + 1), v[i]));
  return out;
}

std::optional<protocol::TextBody> v1_text(const Params& p, const std::string& prefix) {
  auto data = param(p, (prefix + ".Data").c_str(), false);
  if (!data) return std::nullopt;
  if (!valid_utf8(*data)) refuse(Api::kV1, prefix + ".Data: is not valid UTF-8");
  protocol::TextBody t;
  t.data = std::move(*data);
  if (auto cs = param(p, (prefix + ".Charset").c_str(), false)) {
    header_text(Api::kV1, prefix + ".Charset", *cs);
    charset(Api::kV1, prefix + ".Charset", *cs);
    t.charset = *cs;
  }
  return t;
}

SendRequest v1_send(const Params& p) {
  SendRequest r;
  r.api = Api::kV1;
  r.action = *param(p, "Action", true);
  if (r.action != "SendEmail" && r.action != "SendRawEmail")
    throw Refusal{ApiError{400, "InvalidAction",
                           "Action: " + r.action + " is not supported (SendEmail, SendRawEmail)"}};
  r.raw = r.action == "SendRawEmail";
  auto source = param(p, "Source", !r.raw);
  if (source) r.from = mailbox(Api::kV1, "Source", *source);
  if (auto rp = param(p, "ReturnPath", false))
    r.return_path = mailbox(Api::kV1, "ReturnPath", *rp).address;
  if (r.raw) {
    r.recipients_field = "Destinations";
    r.content_field = "RawMessage.Data";
    r.bcc = v1_list(p, "Destinations");
    r.raw_message = raw_data(Api::kV1, "RawMessage.Data", *param(p, "RawMessage.Data", true));
  } else {
    r.recipients_field = "Destination";
    r.content_field = "Message";
    r.to = v1_list(p, "Destination.ToAddresses");
    r.cc = v1_list(p, "Destination.CcAddresses");
    r.bcc = v1_list(p, "Destination.BccAddresses");
    r.reply_to = v1_list(p, "ReplyToAddresses");
    r.subject = *param(p, "Message.Subject.Data", true);
    header_text(Api::kV1, "Message.Subject.Data", r.subject);
    if (auto cs = param(p, "Message.Subject.Charset", false)) {
      header_text(Api::kV1, "Message.Subject.Charset", *cs);
      charset(Api::kV1, "Message.Subject.Charset", *cs);
      r.subject_charset = *cs;
    }
    r.text = v1_text(p, "Message.Body.Text");
    r.html = v1_text(p, "Message.Body.Html");
    if (!r.text && !r.html)
      throw Refusal{
          ApiError{400, "MissingParameter", "Message.Body: Text.Data or Html.Data is required"}};
  }
  if (auto cs = param(p, "ConfigurationSetName", false)) {
    header_text(Api::kV1, "ConfigurationSetName", *cs);
    r.configuration_set = *cs;
  }
  auto tags = member_structs(p, "Tags");
  if (auto* err = std::get_if<std::string>(&tags)) refuse(Api::kV1, *err);
  const auto& tv = std::get<0>(tags);
  for (size_t i = 0; i < tv.size(); ++i) {
    std::string field = "Tags.member." + std::to_string(i + 1);
    auto n = tv[i].find("Name");
    auto v = tv[i].find("Value");
    if (n == tv[i].end()) refuse(Api::kV1, field + ".Name: is required");
    if (v == tv[i].end()) refuse(Api::kV1, field + ".Value: is required");
    tag(Api::kV1, field, n->second, v->second);
    r.tags.emplace_back(n->second, v->second);
  }
  return r;
}

// ---- compose ------------------------------------------------------------

ApiError too_big(const SendRequest& r, uint64_t size, uint64_t max) {
  return ApiError{400, "MessageRejected",
                  r.content_field + ": the message is " + std::to_string(size) +
                      " bytes, over the limit of " + std::to_string(max) + " (max_message_bytes)"};
}

std::optional<ApiError> recipient_count(const SendRequest& r, size_t n, const Limits& limits) {
  if (n == 0)
    return bad_request(r.api, r.recipients_field + ": at least one recipient is required");
  if (n > limits.max_recipients)
    return bad_request(r.api, r.recipients_field + ": " + std::to_string(n) +
                                  " recipients, more than the limit of " +
                                  std::to_string(limits.max_recipients) + " (max_recipients)");
  return std::nullopt;
}

std::variant<Composed, ApiError> compose_simple(const SendRequest& r, const Limits& limits,
                                                const std::string& message_id, int64_t now_s,
                                                const std::string& boundary) {
  Composed c;
  for (const auto* list : {&r.to, &r.cc, &r.bcc})
    for (const auto& m : *list) c.recipients.push_back(m.address);
  if (auto e = recipient_count(r, c.recipients.size(), limits)) return *e;
  protocol::SimpleMessage m;
  m.from = *r.from;
  m.to = r.to;
  m.cc = r.cc;
  m.reply_to = r.reply_to;
  m.subject = r.subject;
  m.subject_charset = r.subject_charset;
  m.text = r.text;
  m.html = r.html;
  m.headers = r.headers;
  m.date = now_s;
  m.message_id = message_id;
  m.boundary = boundary;
  auto built = protocol::build_simple(m);
  if (auto* err = std::get_if<protocol::MimeError>(&built)) {
    std::string field = r.content_field + "." + err->field;
    if (err->field == "Subject" || err->field == "Body.Text" || err->field == "Body.Html")
      field += ".Charset";  // the text is valid UTF-8: only the charset can fail
    return bad_request(r.api, field + ": " + err->message);
  }
  c.message = std::move(std::get<std::string>(built));
  if (c.message.size() > limits.max_message_bytes)
    return too_big(r, c.message.size(), limits.max_message_bytes);
  c.mail_from = r.return_path.empty() ? r.from->address : r.return_path;
  return c;
}

std::variant<Composed, ApiError> compose_raw(const SendRequest& r, const Limits& limits) {
  if (r.raw_message.size() > limits.max_message_bytes)
    return too_big(r, r.raw_message.size(), limits.max_message_bytes);
  auto rejected = [&](std::string why) {
    return ApiError{400, "MessageRejected", r.content_field + ": " + std::move(why)};
  };
  Composed c;
  c.message = protocol::to_crlf(r.raw_message);
  size_t line_start = 0, line_no = 1;
  for (size_t i = 0; i < c.message.size(); ++i) {
    auto ch = static_cast<unsigned char>(c.message[i]);
    if (ch == 0) return rejected("the message contains a NUL character");
    if (ch >= 0x80) c.eight_bit = true;
    if (ch == '\n') {
      if (i - line_start - 1 > 998)
        return rejected("line " + std::to_string(line_no) + " is longer than 998 octets");
      line_start = i + 1;
      ++line_no;
    }
  }
  if (c.message.size() - line_start > 998)
    return rejected("line " + std::to_string(line_no) + " is longer than 998 octets");
  if (c.message.size() < 2 || c.message.compare(c.message.size() - 2, 2, "\r\n") != 0)
    c.message += "\r\n";
  std::string_view head(c.message.data(), protocol::header_block_size(c.message));
  if (protocol::header_fields(head).empty()) return rejected("the message has no header");
  auto from_header = protocol::header_value(head, "From");
  if (!from_header) return rejected("the message has no From header");
  if (r.from) {
    c.mail_from = r.from->address;
  } else {
    auto l = protocol::parse_address_list(*from_header);
    if (!l || l->empty()) return rejected("the From header is not a valid address");
    c.mail_from = (*l)[0].address;
  }
  if (!r.return_path.empty()) c.mail_from = r.return_path;
  for (const auto* list : {&r.to, &r.cc, &r.bcc})
    for (const auto& m : *list) c.recipients.push_back(m.address);
  if (c.recipients.empty()) {
    for (const char* h : {"To", "Cc", "Bcc"}) {
      for (const auto& f : protocol::header_fields(head)) {
        if (f.name.size() != std::string_view(h).size()) continue;
        bool same = true;
        for (size_t i = 0; i < f.name.size(); ++i)
          if ((f.name[i] | 0x20) != (h[i] | 0x20)) same = false;
        if (!same) continue;
        auto l = protocol::parse_address_list(f.value());
        if (!l) return rejected(std::string("the ") + h + " header is not a valid address list");
        for (auto& m : *l) c.recipients.push_back(std::move(m.address));
      }
    }
  }
  if (auto e = recipient_count(r, c.recipients.size(), limits)) return *e;
  // Bcc recipients must not see each other (nor anyone else them).
  protocol::remove_headers(c.message, {"Bcc"});
  return c;
}

}  // namespace

ApiError bad_request(Api api, std::string message) {
  return ApiError{400, api == Api::kV2 ? "BadRequestException" : "InvalidParameterValue",
                  std::move(message)};
}

std::variant<SendRequest, ApiError> parse_v2_send(std::string_view json_body) {
  try {
    return v2_send(json_body);
  } catch (const Refusal& r) {
    return r.error;
  }
}

std::variant<SendRequest, ApiError> parse_v1_send(const Params& form) {
  try {
    return v1_send(form);
  } catch (const Refusal& r) {
    return r.error;
  }
}

std::variant<Composed, ApiError> compose(const SendRequest& req, const Limits& limits,
                                         const std::string& message_id, int64_t now_s,
                                         const std::string& boundary) {
  if (req.raw) return compose_raw(req, limits);
  return compose_simple(req, limits, message_id, now_s, boundary);
}

std::string v1_send_result(std::string_view action, std::string_view message_id,
                           std::string_view request_id) {
  std::string a(action);
  return "<" + a + "Response xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\">\n  <" + a +
         "Result>\n    <MessageId>" + core::escape_markup(message_id) + "</MessageId>\n  </" + a +
         "Result>\n  <ResponseMetadata>\n    <RequestId>" + core::escape_markup(request_id) +
         "</RequestId>\n  </ResponseMetadata>\n</" + a + "Response>\n";
}

std::string v1_error(const ApiError& e, std::string_view request_id) {
  return std::string("<ErrorResponse xmlns=\"http://ses.amazonaws.com/doc/2010-12-01/\">\n") +
         "  <Error>\n    <Type>" + (e.status >= 500 ? "Receiver" : "Sender") +
         "</Type>\n    <Code>" + core::escape_markup(e.code) + "</Code>\n    <Message>" +
         core::escape_markup(e.message) + "</Message>\n  </Error>\n  <RequestId>" +
         core::escape_markup(request_id) + "</RequestId>\n</ErrorResponse>\n";
}

std::string v2_error(const ApiError& e) {
  json j{{"__type", e.code}, {"message", e.message}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace mta::api
