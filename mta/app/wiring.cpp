#include "mta/app/wiring.hpp"

#include <cstdlib>
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

core::Result<std::shared_ptr<const dkim::Signer>> load_signer(const config::Config& cfg) {
  if (cfg.dkim.empty()) return std::shared_ptr<const dkim::Signer>();
  std::vector<dkim::KeySpec> specs;
  for (const auto& k : cfg.dkim) {
    dkim::KeySpec s;
    s.domain = k.domain;
    s.selector = k.selector;
    s.private_key = k.private_key;
    auto alg = dkim::algorithm_from_string(k.algorithm);
    if (!alg)
      return core::make_error("dkim key " + k.domain + "/" + k.selector + ": unknown algorithm " +
                              k.algorithm);
    s.algorithm = *alg;
    s.headers = k.headers;
    specs.push_back(std::move(s));
  }
  return dkim::Signer::load(specs, cfg.dkim_engine == config::DkimEngine::kOpenDkim
                                       ? dkim::Engine::kOpenDkim
                                       : dkim::Engine::kNative);
}

core::Result<std::shared_ptr<const tracking::MachineRules>> load_machine_rules(
    const config::Config& cfg) {
  std::string shipped_path = cfg.tracking.machine_rules_file;
  if (shipped_path.empty()) {
    shipped_path = MTA_DATA_DIR "/tracking-rules.yaml";
    for (const char* p : {MTA_DATA_DIR "/tracking-rules.yaml", "/usr/share/mta/tracking-rules.yaml",
                          MTA_SOURCE_DIR "/config/tracking-rules.yaml"})
      if (std::filesystem::exists(p)) {
        shipped_path = p;
        break;
      }
  }
  auto shipped = tracking::load_machine_rules_file(shipped_path);
  if (!shipped) return shipped.error();
  std::vector<tracking::MachineRule> local;
  if (!cfg.tracking.local_machine_rules_file.empty()) {
    auto l = tracking::load_machine_rules_file(cfg.tracking.local_machine_rules_file);
    if (!l) return l.error();
    local = std::move(*l);
  }
  auto r = tracking::MachineRules::build(std::move(*shipped), std::move(local));
  if (!r) return r.error();
  return std::make_shared<const tracking::MachineRules>(std::move(*r));
}

http::TrackingOptions tracking_options(const config::Config& cfg,
                                       std::shared_ptr<const tracking::MachineRules> rules) {
  http::TrackingOptions o;
  if (cfg.tracking.listen) o.listen = *cfg.tracking.listen;
  o.base_url = cfg.tracking.base_url;
  if (!cfg.tracking.secret.empty()) o.secrets.push_back(cfg.tracking.secret);
  for (const auto& s : cfg.tracking.previous_secrets)
    if (!s.empty()) o.secrets.push_back(s);
  o.rules = std::move(rules);
  for (const auto& set : cfg.configuration_sets) o.configuration_sets.push_back(set.name);
  return o;
}

std::vector<warmup::IpWarmup> limiter_ips(const config::Config& cfg) {
  std::vector<warmup::IpWarmup> out;
  for (const auto& pool : cfg.ip_pools)
    for (const auto& ip : pool.ips) {
      warmup::IpWarmup w;
      w.ip = ip.address.to_string();
      if (ip.warmup) {
        if (const warmup::Schedule* s = cfg.find_schedule(ip.warmup->schedule)) w.schedule = *s;
        w.started = ip.warmup->started;
      }
      w.max_messages_per_hour = cfg.shaping.max_messages_per_hour;
      for (const auto& p : cfg.shaping.providers)
        w.provider_hourly[p.name] = p.max_messages_per_hour;
      out.push_back(std::move(w));
    }
  return out;
}

warmup::LimiterOptions limiter_options(const config::Config& cfg) {
  warmup::LimiterOptions o;
  o.time_zone = cfg.time_zone;
  const auto& b = cfg.shaping.backoff;
  o.aimd.floor = b.floor;
  o.aimd.decrease = b.decrease;
  o.aimd.increase = b.increase;
  o.aimd.window = std::chrono::duration_cast<std::chrono::seconds>(b.window);
  o.aimd.min_clean_results = b.min_clean_results;
  return o;
}

std::chrono::milliseconds clock_offset() {
  const char* v = std::getenv("MTA_CLOCK_OFFSET");
  if (!v || !*v) return {};
  char* end = nullptr;
  long long s = std::strtoll(v, &end, 10);
  if (*end != '\0') return {};
  return std::chrono::seconds(s);
}

}  // namespace mta::app
