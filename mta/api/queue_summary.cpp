#include "mta/api/queue_summary.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "mta/config/config.hpp"
#include "mta/protocol/command.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"

namespace mta::api {
namespace {

void add(QueueGroup& g, uint64_t messages, uint64_t recipients, int64_t received_ms) {
  g.messages += messages;
  g.recipients += recipients;
  if (received_ms > 0 && (g.oldest_ms == 0 || received_ms < g.oldest_ms)) g.oldest_ms = received_ms;
}

std::vector<QueueGroup> sorted(std::map<std::string, QueueGroup>& m, size_t max) {
  std::vector<QueueGroup> out;
  for (auto& [name, g] : m) {
    g.name = name;
    out.push_back(std::move(g));
  }
  std::stable_sort(out.begin(), out.end(), [](const QueueGroup& a, const QueueGroup& b) {
    return a.recipients + a.messages > b.recipients + b.messages;
  });
  if (out.size() > max) out.resize(max);
  return out;
}

}  // namespace

AdminResult<QueueSummary> spool_summary(
    const store::Store& store, const config::Config& cfg, size_t max_destinations,
    const std::function<std::string(const std::string& domain)>& provider_of) {
  QueueSummary s;
  std::map<std::string, QueueGroup> sets, pools, domains, providers;
  // Which set each message is in, for the recipient counts of the second scan.
  std::unordered_map<std::string, std::pair<std::string, int64_t>> set_of;
  auto st = queue::Spool::list(store, [&](const queue::Message& m) {
    add(sets[m.configuration_set], 1, 0, m.received_ms);
    const auto* set = cfg.find_set(m.configuration_set);
    add(pools[set ? set->ip_pool : "(unknown set)"], 1, 0, m.received_ms);
    set_of.emplace(std::string(m.id.key()), std::make_pair(m.configuration_set, m.received_ms));
    return true;
  });
  if (!st) return AdminError{500, "InternalFailure", st.error().message};
  bool corrupt = false;
  st = store.scan(store::Cf::kSchedule, {}, {}, [&](std::string_view k, std::string_view v) {
    auto key = queue::parse_schedule_key(k);
    auto e = queue::decode_schedule_entry(v);
    if (!key || !e) {
      corrupt = true;
      return true;
    }
    int64_t received = static_cast<int64_t>(key->id.micros() / 1000);
    ++s.recipients;
    std::string domain = protocol::domain_of(e->recipient);
    if (provider_of) {
      std::string p = provider_of(domain);
      add(providers[p.empty() ? "(not yet routed)" : p], 0, 1, received);
    }
    add(domains[domain], 0, 1, received);
    auto it = set_of.find(std::string(key->id.key()));
    if (it != set_of.end()) {
      add(sets[it->second.first], 0, 1, 0);
      const auto* set = cfg.find_set(it->second.first);
      add(pools[set ? set->ip_pool : "(unknown set)"], 0, 1, 0);
    }
    return true;
  });
  if (!st) return AdminError{500, "InternalFailure", st.error().message};
  if (corrupt) return AdminError{500, "InternalFailure", "the schedule holds undecodable entries"};
  for (const auto& [name, g] : sets) {
    s.messages += g.messages;
    if (g.oldest_ms && (s.oldest_ms == 0 || g.oldest_ms < s.oldest_ms)) s.oldest_ms = g.oldest_ms;
  }
  s.by_configuration_set = sorted(sets, SIZE_MAX);
  s.by_pool = sorted(pools, SIZE_MAX);
  s.by_destination = sorted(domains, max_destinations);
  s.by_provider = sorted(providers, SIZE_MAX);
  return s;
}

}  // namespace mta::api
