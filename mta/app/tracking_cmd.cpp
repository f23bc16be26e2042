// `mta tracking token|decode`: mint and read tracking tokens with the
// config's secret, for debugging links and for the end-to-end tests (which
// cannot sign tokens without reimplementing mta::tracking::sign).

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

#include "mta/app/commands.hpp"
#include "mta/config/config.hpp"
#include "mta/core/id.hpp"
#include "mta/tracking/token.hpp"

namespace mta::app {
namespace {

std::optional<config::Config> load(const std::string& path) {
  auto r = config::load_file(path);
  if (r.error) {
    std::cerr << r.error->to_string() << "\n";
    return std::nullopt;
  }
  return std::move(*r.config);
}

}  // namespace

int tracking_token(const TrackingTokenOptions& o) {
  auto cfg = load(o.config_path);
  if (!cfg) return 2;
  if (!cfg->tracking.configured()) {
    std::cerr << o.config_path << ": tracking.base_url and tracking.secret are not set\n";
    return 2;
  }
  tracking::Claims c;
  if (o.kind == "open") {
    c.kind = tracking::Kind::kOpen;
  } else if (o.kind == "click") {
    c.kind = tracking::Kind::kClick;
    if (o.url.empty()) {
      std::cerr << "mta: --url is required with --kind click\n";
      return 2;
    }
  } else if (o.kind == "unsubscribe") {
    c.kind = tracking::Kind::kUnsubscribe;
  } else {
    std::cerr << "mta: --kind: open, click or unsubscribe\n";
    return 2;
  }
  if (o.message_id.empty()) {
    c.message_id = core::next_message_id();
  } else {
    auto id = core::MessageId::from_hex(o.message_id);
    if (!id) {
      std::cerr << "mta: --message-id: not a message id (32 hex digits): " << o.message_id << "\n";
      return 2;
    }
    c.message_id = *id;
  }
  c.recipient = o.recipient;
  c.configuration_set =
      o.configuration_set.empty() ? cfg->default_configuration_set : o.configuration_set;
  c.sent_ms = o.sent_ms >= 0 ? o.sent_ms
                             : std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count();
  c.link_index = o.link_index;
  c.url = o.url;
  c.link_tags = o.link_tags;
  c.list_name = o.list_name;
  c.list_topic = o.list_topic;
  std::string token = tracking::sign(c, cfg->tracking.secret);
  if (!o.print_url) {
    std::cout << token << "\n";
    return 0;
  }
  const char* path = c.kind == tracking::Kind::kClick  ? "/c/"
                     : c.kind == tracking::Kind::kOpen ? "/o/"
                                                       : "/u/";
  std::cout << cfg->tracking.base_url << path << token
            << (c.kind == tracking::Kind::kOpen ? ".gif" : "") << "\n";
  return 0;
}

int tracking_decode(const std::string& config_path, const std::string& token_or_url) {
  auto cfg = load(config_path);
  if (!cfg) return 2;
  std::string_view t = token_or_url;
  // A whole URL: the last path segment, without ".gif".
  if (auto slash = t.rfind('/'); slash != std::string_view::npos) t = t.substr(slash + 1);
  if (t.size() > 4 && t.substr(t.size() - 4) == ".gif") t.remove_suffix(4);
  std::vector<std::string> secrets{cfg->tracking.secret};
  for (const auto& s : cfg->tracking.previous_secrets) secrets.push_back(s);
  auto c = tracking::verify(t, secrets);
  if (!c) {
    std::cerr << "mta: the token does not verify with tracking.secret or previous_secrets\n";
    return 1;
  }
  nlohmann::json j = {{"kind", tracking::to_string(c->kind)},
                      {"messageId", c->message_id.hex()},
                      {"recipient", c->recipient},
                      {"configurationSet", c->configuration_set},
                      {"sentMs", c->sent_ms}};
  if (c->kind == tracking::Kind::kClick) {
    j["linkIndex"] = c->link_index;
    j["url"] = c->url;
    j["linkTags"] = c->link_tags;
  }
  if (c->kind == tracking::Kind::kUnsubscribe) {
    j["listName"] = c->list_name;
    j["listTopic"] = c->list_topic;
  }
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace mta::app
