#include "mta/webhook/fanout.hpp"

#include <nlohmann/json.hpp>

#include "mta/core/id.hpp"

namespace mta::webhook {

Routing::Routing(const config::Config& c) {
  for (const auto& set : c.configuration_sets) {
    std::vector<Target> targets;
    for (const auto& name : set.event_destinations)
      if (const auto* d = c.find_destination(name)) targets.push_back({d->name, d->events});
    if (!targets.empty()) by_set_.emplace(set.name, std::move(targets));
  }
}

std::vector<std::string> Routing::route(std::string_view set, config::EventType type) const {
  std::vector<std::string> out;
  auto it = by_set_.find(std::string(set));
  if (it == by_set_.end()) return out;
  for (const auto& t : it->second)
    if ((t.events >> static_cast<int>(type)) & 1u) out.push_back(t.destination);
  return out;
}

std::optional<RoutedEvent> route_event(const Routing& routing, std::string_view event_key,
                                       std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto t = j.find("eventType");
  if (t == j.end() || !t->is_string()) return std::nullopt;
  auto type = config::event_type_from_ses(t->get_ref<const std::string&>());
  if (!type) return std::nullopt;
  RoutedEvent r;
  r.type = *type;
  std::string set;
  if (auto mail = j.find("mail"); mail != j.end() && mail->is_object()) {
    if (auto id = mail->find("messageId"); id != mail->end() && id->is_string())
      r.message_id = id->get<std::string>();
    if (auto tags = mail->find("tags"); tags != mail->end() && tags->is_object())
      if (auto cs = tags->find("ses:configuration-set");
          cs != tags->end() && cs->is_array() && !cs->empty() && (*cs)[0].is_string())
        set = (*cs)[0].get<std::string>();
  }
  r.destinations = routing.route(set, r.type);
  if (r.destinations.empty()) return r;
  auto id = core::MessageId::from_key(event_key);
  if (!id) return std::nullopt;
  auto& ours = j["mta"];
  if (!ours.is_object()) ours = nlohmann::json::object();
  ours["eventId"] = id->hex();
  r.body = j.dump();
  return r;
}

}  // namespace mta::webhook
