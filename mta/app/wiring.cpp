#include "mta/app/wiring.hpp"

#include <filesystem>

namespace mta::app {

namespace {
std::string shipped_rules_path(const config::Config& cfg) {
  if (!cfg.bounces.rules_file.empty()) return cfg.bounces.rules_file;
  for (const char* p : {MTA_DATA_DIR "/bounce-rules.yaml", "/usr/share/mta/bounce-rules.yaml",
                        MTA_SOURCE_DIR "/config/bounce-rules.yaml"})
    if (std::filesystem::exists(p)) return p;
  return MTA_DATA_DIR "/bounce-rules.yaml";
}
}  // namespace

core::Result<std::shared_ptr<const bounce::Classifier>> load_classifier(const config::Config& cfg) {
  auto shipped = bounce::load_rules_file(shipped_rules_path(cfg));
  if (!shipped) return shipped.error();
  std::vector<bounce::Rule> local;
  if (!cfg.bounces.local_rules_file.empty()) {
    auto l = bounce::load_rules_file(cfg.bounces.local_rules_file);
    if (!l) return l.error();
    local = std::move(*l);
  }
  auto c = bounce::Classifier::build(std::move(*shipped), std::move(local));
  if (!c) return c.error();
  return std::make_shared<const bounce::Classifier>(std::move(*c));
}

}  // namespace mta::app
