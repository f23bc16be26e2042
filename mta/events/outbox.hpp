// Events: SES-shaped event records and the durable outbox.
//
// Every state change of a message writes its event into the outbox column
// family in the same batch as the change itself, so neither exists without
// the other. Keys are time-ordered 16-byte ids, values the event's JSON
// (SES's event format: eventType, mail, and delivery / bounce /
// deliveryDelay ..., plus our own fields under "mta"). The webhook
// publisher (a later issue) reads from here; `mta events tail` shows it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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

// Visits stored events oldest first, from `after` (an event id in hex,
// exclusive; empty for the start).
core::Status tail(const store::Store& s, std::string_view after,
                  const std::function<bool(std::string_view id_hex, std::string_view json)>& fn);

// Drops events older than `cutoff_ms` (retention while nothing publishes
// them); returns how many.
core::Result<uint64_t> trim(store::Store& s, int64_t cutoff_ms);

}  // namespace mta::events
