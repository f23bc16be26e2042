#include "mta/core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>

namespace mta::core {

void init_logging(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("mta");
  // Under systemd, journald stamps each line itself.
  if (std::getenv("JOURNAL_STREAM") != nullptr)
    logger->set_pattern("%l %v");
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  spdlog::flush_on(spdlog::level::warn);
}

}  // namespace mta::core
