// Fan-out: which destinations get an outbox event, and the body they get.
//
// An event goes to every destination of its message's configuration set
// (mail.tags["ses:configuration-set"]) that wants its type. The body is
// the outbox JSON with our event id added as mta.eventId (also sent as
// X-MTA-Event-Id), so receivers of batched POSTs can de-duplicate each
// element.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mta/config/config.hpp"

namespace mta::webhook {

class Routing final {
 public:
  Routing() = default;
  explicit Routing(const config::Config& c);
  // Names of the destinations of `set` that want `type`, in config order.
  std::vector<std::string> route(std::string_view set, config::EventType type) const;
  bool empty() const { return by_set_.empty(); }

 private:
  struct Target {
    std::string destination;
    uint32_t events;
  };
  std::unordered_map<std::string, std::vector<Target>> by_set_;
};

struct RoutedEvent {
  config::EventType type = config::EventType::kSend;
  std::string message_id;                 // hex
  std::vector<std::string> destinations;  // empty: nobody wants it
  std::string body;                       // set when destinations is not empty
};

// Reads an outbox event (its key is the 16-byte event id). nullopt when it
// is not an event we can read (bad JSON, unknown eventType).
std::optional<RoutedEvent> route_event(const Routing& routing, std::string_view event_key,
                                       std::string_view json);

}  // namespace mta::webhook
