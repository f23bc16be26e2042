// Events: SES-shaped event records and the durable outbox.
//
// Every state change of a message writes its event into the outbox column
// family in the same batch as the change itself, so neither exists without
// the other. Keys are time-ordered 16-byte ids assigned when the batch is
// written (store::Batch::put_sequenced: they increase in commit order),
// values the event's JSON (SES's event format: eventType, mail, and
// delivery / bounce / deliveryDelay ..., plus our own fields under "mta").
// The webhook publisher (mta/webhook) moves each event to the queues of its
// destinations; events nobody wants stay here for a day. `mta events tail`
// shows what is here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"

namespace mta::store {
class Batch;
class Store;
}  // namespace mta::store

namespace mta::events {

// Adds the "Send" event of a freshly accepted message.
void add_send(store::Batch& b, const queue::Message& m);
// Adds the event of one recipient's decision: Delivery, Bounce (including
// expiry and suppression) or DeliveryDelay. `reporting_mta` is our name.
void add_decision(store::Batch& b, const queue::Decision& d, std::string_view reporting_mta);

// The JSON of the event for a decision, without storing it (accounting log,
// tests).
std::string decision_json(const queue::Decision& d, std::string_view reporting_mta);

// A complaint (feedback loop report) about a message we sent; the feedback
// module fills it from the report.
struct Complaint {
  std::vector<std::string> recipients;  // complainedRecipients
  int64_t now_ms = 0;                   // timestamp
  std::string feedback_id;
  std::string feedback_type;          // complaintFeedbackType; "" omits it
  std::string user_agent;             // "" omits it
  std::optional<int64_t> arrival_ms;  // arrivalDate; unknown omits it
  std::string outgoing_ip;            // the report's Source-IP: mail.tags ses:outgoing-ip
  // Ours, under "mta": how the report was matched and what it changed.
  std::string format;      // "arf" | "jmrp-legacy"
  std::string matched_by;  // "X-MTA-Message-ID" | "Message-ID"
  bool suppressed = false;
  std::string reported_domain, reporting_client;
};
// Adds a "Complaint" event.
void add_complaint(store::Batch& b, const queue::Message& m, const Complaint& c);
std::string complaint_json(const queue::Message& m, const Complaint& c);

// Open and click tracking (the tracking listener, mta/http). `m` is the
// message as its feedback record keeps it, or as much as the token tells
// when the record is gone; mail.destination is the one recipient below.
struct Open {
  std::string recipient;  // whose copy was opened
  int64_t now_ms = 0;     // timestamp
  std::string ip_address, user_agent;
  // Ours, under "mta": machine traffic (mta/tracking/machine.hpp).
  bool machine = false;
  std::string machine_reason;  // the rule id; "" omits it
};
// Adds an "Open" event: "open": {ipAddress, timestamp, userAgent}.
void add_open(store::Batch& b, const queue::Message& m, const Open& o);
std::string open_json(const queue::Message& m, const Open& o);

struct Click {
  std::string recipient;
  int64_t now_ms = 0;
  std::string ip_address, user_agent;
  std::string link;       // the original URL
  std::string link_tags;  // SES ses:tags "k:v;k2:v2" -> linkTags {"k": ["v"], ...}
  uint32_t link_index = 0;
  bool machine = false;
  std::string machine_reason;
};
// Adds a "Click" event: "click": {ipAddress, link, linkTags, timestamp,
// userAgent}.
void add_click(store::Batch& b, const queue::Message& m, const Click& c);
std::string click_json(const queue::Message& m, const Click& c);

// A one-click unsubscribe (RFC 8058 POST to the List-Unsubscribe URL).
struct Subscription {
  std::string recipient;
  int64_t now_ms = 0;
  // The scope (queue::ListScope): a contact list, optionally one topic of
  // it, or, for mail sent without list options, the configuration set.
  // SES always names a contact list, so a set-scoped unsubscribe puts the
  // set's name in subscription.contactList and says so in mta.scope.
  std::string contact_list, topic;
  bool configuration_set_scope = false;
  std::string ip_address, user_agent;  // who posted (ours, under "mta")
};
// Adds a "Subscription" event: "subscription": {contactList, timestamp,
// source: "UnsubscribeHeader", newTopicPreferences, oldTopicPreferences}.
void add_subscription(store::Batch& b, const queue::Message& m, const Subscription& s);
std::string subscription_json(const queue::Message& m, const Subscription& s);

// Visits stored events oldest first, from `after` (an event id in hex,
// exclusive; empty for the start).
core::Status tail(const store::Store& s, std::string_view after,
                  const std::function<bool(std::string_view id_hex, std::string_view json)>& fn);

// Drops events older than `cutoff_ms` and, when `before_key` is given,
// below that key (the webhook publisher's cursor: events not fanned out yet
// stay); returns how many. The publisher calls it for the events no
// destination wants.
core::Result<uint64_t> trim(store::Store& s, int64_t cutoff_ms, std::string_view before_key = {});

}  // namespace mta::events
