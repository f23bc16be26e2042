#include "mta/events/outbox.hpp"

#include <nlohmann/json.hpp>

#include <ctime>

#include "mta/core/id.hpp"
#include "mta/protocol/command.hpp"
#include "mta/store/store.hpp"

namespace mta::events {
namespace {

using nlohmann::json;

std::string iso8601(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::string header(const queue::Message& m, std::string_view name) {
  for (auto& [k, v] : m.headers)
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  return {};
}

// "a@x, B <b@y>" -> ["a@x", "B <b@y>"], the SES way (commonHeaders lists).
json address_list(const std::string& v) {
  json out = json::array();
  if (v.empty()) return out;
  std::string cur;
  bool quoted = false;
  int angle = 0;
  for (char c : v) {
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '<') ++angle;
    if (!quoted && c == '>') --angle;
    if (c == ',' && !quoted && angle <= 0) {
      auto s = cur.find_first_not_of(' ');
      if (s != std::string::npos) out.push_back(cur.substr(s));
      cur.clear();
      continue;
    }
    cur += c;
  }
  auto s = cur.find_first_not_of(' ');
  if (s != std::string::npos) out.push_back(cur.substr(s));
  return out;
}

// "Name <a@Example.COM>" -> "example.com"; "" when there is no address.
std::string header_domain(const std::string& from) {
  auto list = address_list(from);
  if (list.empty()) return {};
  std::string a = list[0].get<std::string>();
  auto lt = a.rfind('<');
  if (lt != std::string::npos) {
    auto gt = a.find('>', lt);
    a = a.substr(lt + 1, gt == std::string::npos ? std::string::npos : gt - lt - 1);
  }
  auto at = a.rfind('@');
  if (at == std::string::npos) return {};
  std::string d = a.substr(at + 1);
  while (!d.empty() && (d.back() == ' ' || d.back() == '>')) d.pop_back();
  for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (d.find_first_of(" \t<>\"(),;:") != std::string::npos) return {};
  return d;
}

json mail_object(const queue::Message& m, std::string_view outgoing_ip) {
  json mail;
  mail["timestamp"] = iso8601(m.received_ms);
  mail["messageId"] = m.id.hex();
  mail["source"] = m.mail_from;
  mail["destination"] = m.recipients;
  mail["headersTruncated"] = m.headers_truncated;
  json headers = json::array();
  for (auto& [k, v] : m.headers) headers.push_back({{"name", k}, {"value", v}});
  mail["headers"] = std::move(headers);
  json common;
  if (auto from = header(m, "From"); !from.empty()) common["from"] = address_list(from);
  if (auto to = header(m, "To"); !to.empty()) common["to"] = address_list(to);
  if (auto cc = header(m, "Cc"); !cc.empty()) common["cc"] = address_list(cc);
  if (auto id = header(m, "Message-ID"); !id.empty()) common["messageId"] = id;
  if (auto subject = header(m, "Subject"); !subject.empty()) common["subject"] = subject;
  if (auto date = header(m, "Date"); !date.empty()) common["date"] = date;
  mail["commonHeaders"] = std::move(common);
  json tags = json::object();
  tags["ses:configuration-set"] = {m.configuration_set};
  tags["ses:source-ip"] = {m.client_ip};
  if (!outgoing_ip.empty()) tags["ses:outgoing-ip"] = {std::string(outgoing_ip)};
  // SES: the domain of the From header's address (the envelope sender's
  // when there is no readable From).
  std::string from_domain = header_domain(header(m, "From"));
  if (from_domain.empty()) from_domain = protocol::domain_of(m.mail_from);
  if (!from_domain.empty()) tags["ses:from-domain"] = {from_domain};
  if (!m.auth_user.empty()) tags["ses:caller-identity"] = {m.auth_user};
  for (auto& [k, v] : m.tags) tags[k].push_back(v);
  mail["tags"] = std::move(tags);
  return mail;
}

// "550 5.1.1 text" -> "5.1.1"; the SES bounce status field.
std::string status_of(const std::string& reply, bool permanent) {
  auto sp = reply.find(' ');
  if (sp != std::string::npos) {
    auto rest = reply.substr(sp + 1);
    auto end = rest.find(' ');
    auto code = rest.substr(0, end);
    if (code.size() >= 5 && (code[0] == '2' || code[0] == '4' || code[0] == '5') && code[1] == '.')
      return code;
  }
  return permanent ? "5.0.0" : "4.0.0";
}

// The key (the event id) is assigned when the batch is written, so outbox
// keys increase in commit order and the webhook publisher can keep a cursor.
void put_event(store::Batch& b, std::string json_text) {
  b.put_sequenced(store::Cf::kEvents, std::move(json_text));
}

}  // namespace

void add_send(store::Batch& b, const queue::Message& m) {
  json e;
  e["eventType"] = "Send";
  e["mail"] = mail_object(m, {});
  e["send"] = json::object();
  put_event(b, e.dump());
}

std::string decision_json(const queue::Decision& d, std::string_view reporting_mta) {
  const auto& m = *d.job.message;
  const auto& o = d.outcome;
  json e;
  json ours;
  ours["attempts"] = d.attempts;
  ours["domain"] = d.job.domain;
  if (!o.source_ip.empty()) ours["ip"] = o.source_ip;
  if (!o.pool.empty()) ours["pool"] = o.pool;
  if (!o.provider.empty()) ours["provider"] = o.provider;
  if (!o.category.empty()) ours["bounceCategory"] = o.category;
  if (!o.rule_id.empty()) ours["rule"] = o.rule_id;
  if (!o.remote_host.empty()) ours["remoteHost"] = o.remote_host;
  std::string ts = iso8601(d.now_ms);
  switch (d.state) {
    case queue::EnvelopeState::kDelivered: {
      e["eventType"] = "Delivery";
      e["delivery"] = {{"timestamp", ts},
                       {"processingTimeMillis", d.now_ms - m.received_ms},
                       {"recipients", {d.rcpt.address}},
                       {"smtpResponse", o.reply},
                       {"remoteMtaIp", o.remote_ip},
                       {"reportingMTA", std::string(reporting_mta)}};
      break;
    }
    case queue::EnvelopeState::kBounced:
    case queue::EnvelopeState::kExpired: {
      bool expired = d.state == queue::EnvelopeState::kExpired;
      std::string type =
          expired ? "Permanent" : (o.bounce_type.empty() ? "Permanent" : o.bounce_type);
      std::string subtype = d.rcpt.suppressed          ? "Suppressed"
                            : o.bounce_subtype.empty() ? "General"
                                                       : o.bounce_subtype;
      std::string diagnostic = expired ? "smtp; expired after " + std::to_string(d.attempts) +
                                             " attempts, last reply: " + o.reply
                                       : "smtp; " + o.reply;
      if (d.rcpt.suppressed)
        diagnostic = "Amazon SES-compatible suppression: address is on the suppression list (" +
                     d.rcpt.suppression_reason + ")";
      if (expired) ours["bounceCategory"] = "message-expired";
      e["eventType"] = "Bounce";
      e["bounce"] = {{"bounceType", type},
                     {"bounceSubType", subtype},
                     {"bouncedRecipients",
                      {{{"emailAddress", d.rcpt.address},
                        {"action", "failed"},
                        {"status", status_of(o.reply, true)},
                        {"diagnosticCode", diagnostic}}}},
                     {"timestamp", ts},
                     {"feedbackId", core::next_message_id().hex()},
                     {"reportingMTA", "dsn; " + std::string(reporting_mta)}};
      if (!o.remote_ip.empty()) e["bounce"]["remoteMtaIp"] = o.remote_ip;
      break;
    }
    case queue::EnvelopeState::kQueued: {
      if (o.fate == queue::Fate::kPostponed) return {};  // not an attempt: no event
      e["eventType"] = "DeliveryDelay";
      e["deliveryDelay"] = {
          {"timestamp", ts},
          {"delayType", o.delay_type.empty() ? "TransientCommunicationFailure" : o.delay_type},
          {"expirationTime", iso8601(m.received_ms + d.rcpt.waited_ms + d.max_age_ms)},
          {"delayedRecipients",
           {{{"emailAddress", d.rcpt.address},
             {"status", status_of(o.reply, false)},
             {"diagnosticCode", "smtp; " + o.reply}}}},
          {"reportingMTA", std::string(reporting_mta)}};
      if (!o.remote_ip.empty()) e["deliveryDelay"]["remoteMtaIp"] = o.remote_ip;
      ours["nextAttempt"] = iso8601(d.next_attempt_ms);
      break;
    }
  }
  e["mail"] = mail_object(m, o.source_ip);
  e["mta"] = std::move(ours);
  return e.dump();
}

void add_decision(store::Batch& b, const queue::Decision& d, std::string_view reporting_mta) {
  auto j = decision_json(d, reporting_mta);
  if (!j.empty()) put_event(b, std::move(j));
}

std::string complaint_json(const queue::Message& m, const Complaint& c) {
  json e;
  e["eventType"] = "Complaint";
  e["mail"] = mail_object(m, c.outgoing_ip);
  json recipients = json::array();
  for (const auto& r : c.recipients) recipients.push_back({{"emailAddress", r}});
  json complaint = {{"complainedRecipients", std::move(recipients)},
                    {"timestamp", iso8601(c.now_ms)},
                    {"feedbackId", c.feedback_id},
                    {"complaintSubType", nullptr}};
  if (!c.feedback_type.empty()) complaint["complaintFeedbackType"] = c.feedback_type;
  if (!c.user_agent.empty()) complaint["userAgent"] = c.user_agent;
  if (c.arrival_ms) complaint["arrivalDate"] = iso8601(*c.arrival_ms);
  e["complaint"] = std::move(complaint);
  json feedback = {{"format", c.format}, {"matchedBy", c.matched_by}, {"suppressed", c.suppressed}};
  if (!c.reported_domain.empty()) feedback["reportedDomain"] = c.reported_domain;
  if (!c.reporting_client.empty()) feedback["reportingClient"] = c.reporting_client;
  e["mta"] = {{"feedback", std::move(feedback)}};
  return e.dump();
}

void add_complaint(store::Batch& b, const queue::Message& m, const Complaint& c) {
  put_event(b, complaint_json(m, c));
}

namespace {

// The mail object of a tracking event: the message as one recipient got it.
json tracked_mail(const queue::Message& m, const std::string& recipient) {
  json mail = mail_object(m, {});
  mail["destination"] = json::array({recipient});
  // Without the message's record (trimmed after feedback.retention) only
  // the token's fields are known: no headers, no source address.
  if (mail["commonHeaders"].is_null()) mail["commonHeaders"] = json::object();
  if (m.client_ip.empty()) mail["tags"].erase("ses:source-ip");
  return mail;
}

// SES ses:tags "k:v;k2:v2" -> {"k": ["v"], "k2": ["v2"]}; a pair without
// ':' is a key with an empty value.
json link_tags_json(std::string_view tags) {
  json out = json::object();
  while (!tags.empty()) {
    size_t semi = tags.find(';');
    std::string_view pair = tags.substr(0, semi);
    tags = semi == std::string_view::npos ? std::string_view{} : tags.substr(semi + 1);
    auto trim = [](std::string_view s) {
      while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
      while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
      return s;
    };
    size_t colon = pair.find(':');
    std::string key(trim(pair.substr(0, colon)));
    std::string value(colon == std::string_view::npos ? "" : trim(pair.substr(colon + 1)));
    if (key.empty()) continue;
    out[key].push_back(value);
  }
  return out;
}

json machine_json(bool machine, const std::string& reason, const std::string& recipient) {
  json ours = {{"machine", machine}, {"recipient", recipient}};
  if (!reason.empty()) ours["machineReason"] = reason;
  return ours;
}

}  // namespace

std::string open_json(const queue::Message& m, const Open& o) {
  json e;
  e["eventType"] = "Open";
  e["mail"] = tracked_mail(m, o.recipient);
  e["open"] = {
      {"ipAddress", o.ip_address}, {"timestamp", iso8601(o.now_ms)}, {"userAgent", o.user_agent}};
  e["mta"] = machine_json(o.machine, o.machine_reason, o.recipient);
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

void add_open(store::Batch& b, const queue::Message& m, const Open& o) {
  put_event(b, open_json(m, o));
}

std::string click_json(const queue::Message& m, const Click& c) {
  json e;
  e["eventType"] = "Click";
  e["mail"] = tracked_mail(m, c.recipient);
  e["click"] = {{"ipAddress", c.ip_address},
                {"link", c.link},
                {"linkTags", link_tags_json(c.link_tags)},
                {"timestamp", iso8601(c.now_ms)},
                {"userAgent", c.user_agent}};
  json ours = machine_json(c.machine, c.machine_reason, c.recipient);
  ours["linkIndex"] = c.link_index;
  e["mta"] = std::move(ours);
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

void add_click(store::Batch& b, const queue::Message& m, const Click& c) {
  put_event(b, click_json(m, c));
}

std::string subscription_json(const queue::Message& m, const Subscription& s) {
  // Before: subscribed (we keep no per-contact preferences, and a link is
  // only offered to recipients who were sent to). After: opted out of the
  // topic, or of everything in the list (or set) when there is no topic.
  json topics_new = json::array(), topics_old = json::array();
  if (!s.topic.empty()) {
    topics_new.push_back({{"topicName", s.topic}, {"subscriptionStatus", "OptOut"}});
    topics_old.push_back({{"topicName", s.topic}, {"subscriptionStatus", "OptIn"}});
  }
  json e;
  e["eventType"] = "Subscription";
  e["mail"] = tracked_mail(m, s.recipient);
  e["subscription"] = {
      {"contactList", s.contact_list},
      {"timestamp", iso8601(s.now_ms)},
      {"source", "UnsubscribeHeader"},
      {"newTopicPreferences",
       {{"unsubscribeAll", s.topic.empty()}, {"topicSubscriptionStatus", std::move(topics_new)}}},
      {"oldTopicPreferences",
       {{"unsubscribeAll", false}, {"topicSubscriptionStatus", std::move(topics_old)}}}};
  json ours = {{"recipient", s.recipient},
               {"scope", s.configuration_set_scope ? "configuration_set" : "contact_list"}};
  if (!s.ip_address.empty()) ours["ipAddress"] = s.ip_address;
  if (!s.user_agent.empty()) ours["userAgent"] = s.user_agent;
  e["mta"] = std::move(ours);
  return e.dump(-1, ' ', false, json::error_handler_t::replace);
}

void add_subscription(store::Batch& b, const queue::Message& m, const Subscription& s) {
  put_event(b, subscription_json(m, s));
}

core::Status tail(const store::Store& s, std::string_view after,
                  const std::function<bool(std::string_view, std::string_view)>& fn) {
  std::string from;
  if (!after.empty()) {
    auto id = core::MessageId::from_hex(after);
    if (!id) return core::make_error("not an event id: " + std::string(after));
    from = std::string(id->key());
    from.push_back('\0');  // exclusive
  }
  return s.scan(store::Cf::kEvents, from, {}, [&](std::string_view k, std::string_view v) {
    auto id = core::MessageId::from_key(k);
    if (!id) return true;
    return fn(id->hex(), v);
  });
}

core::Result<uint64_t> trim(store::Store& s, int64_t cutoff_ms, std::string_view before_key) {
  std::string to;
  store::put_u64(to, static_cast<uint64_t>(cutoff_ms) * 1000);  // ids start with µs
  if (!before_key.empty() && std::string_view(to) > before_key) to = std::string(before_key);
  store::Batch b;
  uint64_t n = 0;
  auto st = s.scan(store::Cf::kEvents, {}, to, [&](std::string_view k, std::string_view) {
    b.del(store::Cf::kEvents, std::string(k));
    return ++n < 100000;  // bounded per call
  });
  if (!st.ok()) return st.error();
  if (n == 0) return n;
  auto c = s.commit_sync(std::move(b));
  if (!c.ok()) return c.error();
  return n;
}

}  // namespace mta::events
