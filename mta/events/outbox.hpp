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
