// Logging: spdlog to stderr (journald adds its own timestamps when run under
// systemd). Lines are key=value with the session or message id first; never
// log secrets.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace mta::core {

// Sets the level ("trace", "debug", "info", "warn", "error") and a format
// without timestamps when stderr is the journal.
void init_logging(std::string_view level);

}  // namespace mta::core
