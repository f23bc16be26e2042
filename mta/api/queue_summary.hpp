// The queue summary the admin API shows (GET /admin/queue), computed from
// the spool alone: messages by configuration set and by pool (through the
// configuration), recipients still to deliver by destination domain, and
// the age of the oldest of each. Two scans (messages, schedule) of the
// database: blocking, for the API's worker threads only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "mta/api/admin.hpp"

namespace mta::config {
struct Config;
}
namespace mta::store {
class Store;
}

namespace mta::api {

// `provider_of` (optional) names a domain's provider, "" when unknown; it
// fills by_provider.
AdminResult<QueueSummary> spool_summary(
    const store::Store& store, const config::Config& cfg, size_t max_destinations = 50,
    const std::function<std::string(const std::string& domain)>& provider_of = {});

}  // namespace mta::api
