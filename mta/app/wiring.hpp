// Pieces of start-up shared by `serve` and the tools.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "mta/bounce/classifier.hpp"
#include "mta/config/config.hpp"
#include "mta/core/result.hpp"
#include "mta/dkim/signer.hpp"
#include "mta/http/tracking_server.hpp"
#include "mta/tracking/machine.hpp"
#include "mta/warmup/limiter.hpp"

namespace mta::app {

// The shipped bounce rules plus the operator's, compiled. Errors carry
// FILE:LINE:COL.
core::Result<std::shared_ptr<const bounce::Classifier>> load_classifier(const config::Config& cfg);

// The DKIM keys of the config, loaded (null when there are none).
core::Result<std::shared_ptr<const dkim::Signer>> load_signer(const config::Config& cfg);

// The machine-traffic rules of the tracking listener: the shipped
// tracking-rules.yaml (or tracking.machine_rules_file) plus
// tracking.local_machine_rules_file, compiled. Errors carry FILE:LINE:COL.
core::Result<std::shared_ptr<const tracking::MachineRules>> load_machine_rules(
    const config::Config& cfg);
// The tracking listener's view of the config (secret first, then
// previous_secrets; the set names for metric labels).
http::TrackingOptions tracking_options(const config::Config& cfg,
                                       std::shared_ptr<const tracking::MachineRules> rules);

// The warm-up limiter's view of the config: every pool IP with its schedule
// and hourly ceilings (shaping.providers[].max_messages_per_hour per
// provider, shaping.default's for the rest), the time zone and backoff.
std::vector<warmup::IpWarmup> limiter_ips(const config::Config& cfg);
warmup::LimiterOptions limiter_options(const config::Config& cfg);

// MTA_CLOCK_OFFSET: whole seconds added to the daemon's clock (and to what
// `mta warmup` tools take as now), for tests that move time; 0 when unset
// or malformed.
std::chrono::milliseconds clock_offset();

}  // namespace mta::app
