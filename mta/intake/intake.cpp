#include "mta/intake/intake.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "mta/core/text.hpp"
#include "mta/protocol/message.hpp"

namespace mta::intake {
namespace {

constexpr std::string_view kSetHeader = "X-SES-CONFIGURATION-SET";
constexpr std::string_view kSetAlias = "X-Configuration-Set";
constexpr std::string_view kTagsHeader = "X-SES-MESSAGE-TAGS";
constexpr std::string_view kListHeader = "X-SES-LIST-MANAGEMENT-OPTIONS";

Rejected reject(int code, std::string enhanced, std::string text, std::string reason) {
  return Rejected{protocol::Reply{code, std::move(enhanced), std::move(text)}, std::move(reason)};
}

}  // namespace

bool valid_list_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '-') return false;
  return true;
}

ListOptions parse_list_options(std::string_view value) {
  ListOptions o;
  size_t semi = value.find(';');
  std::string_view list = core::trim_wsp(value.substr(0, semi));
  if (!valid_list_name(list)) {
    o.error = "the contact list name must be 1 to 128 letters, digits, '_' or '-'";
    return o;
  }
  o.list = std::string(list);
  if (semi != std::string_view::npos) {
    std::string_view rest = core::trim_wsp(value.substr(semi + 1));
    if (rest.size() < 6 ||
        !std::equal(rest.begin(), rest.begin() + 6, "topic=", [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == b;
        })) {
      o.error = "expected \"topic=NAME\" after ';'";
      return o;
    }
    std::string_view topic = core::trim_wsp(rest.substr(6));
    if (!valid_list_name(topic)) {
      o.error = "the topic name must be 1 to 128 letters, digits, '_' or '-'";
      return o;
    }
    o.topic = std::string(topic);
  }
  return o;
}

std::variant<Prepared, Rejected> prepare(const config::Config& cfg, Submission sub,
                                         const core::MessageId& id, int64_t now_ms) {
  std::string_view whole(sub.body);
  std::string_view head = whole.substr(0, protocol::header_block_size(whole));

  std::optional<std::string> set_name = sub.configuration_set;
  if (!set_name) set_name = protocol::header_value(head, kSetHeader);
  if (!set_name) set_name = protocol::header_value(head, kSetAlias);

  std::vector<std::pair<std::string, std::string>> tags = std::move(sub.tags);
  if (auto raw = protocol::header_value(head, kTagsHeader)) {
    auto parsed = protocol::parse_tags(*raw);
    if (parsed.error)
      return reject(554, "5.6.0", "Invalid X-SES-MESSAGE-TAGS: " + *parsed.error, "bad_tags");
    for (auto& t : parsed.tags) tags.push_back(std::move(t));
  }

  std::string list_name, list_topic;
  if (sub.list_management) {
    list_name = std::move(sub.list_management->first);
    list_topic = std::move(sub.list_management->second);
  } else if (auto raw = protocol::header_value(head, kListHeader)) {
    auto parsed = parse_list_options(*raw);
    if (parsed.error)
      return reject(554, "5.6.0", "Invalid X-SES-LIST-MANAGEMENT-OPTIONS: " + *parsed.error,
                    "bad_list_options");
    list_name = std::move(parsed.list);
    list_topic = std::move(parsed.topic);
  }

  const config::ConfigurationSet* set = nullptr;
  if (set_name) {
    set = cfg.find_set(*set_name);
    if (!set)
      return reject(554, "5.3.0", fmt::format("Configuration set {} does not exist", *set_name),
                    "unknown_configuration_set");
  } else if (!sub.auth_user.empty()) {
    if (auto* user = cfg.find_user(sub.auth_user); user && !user->configuration_set.empty())
      set = cfg.find_set(user->configuration_set);
  }
  if (!set) set = cfg.find_set(cfg.default_configuration_set);
  if (!set) MTA_PANIC("default configuration set missing from a validated config");

  bool has_message_id = protocol::header_value(head, "Message-ID").has_value();
  bool has_date = protocol::header_value(head, "Date").has_value();

  std::string body = std::move(sub.body);
  protocol::remove_headers(body, {kSetHeader, kSetAlias, kTagsHeader, kListHeader});

  std::string hex = id.hex();
  std::string with = sub.tls ? (sub.auth_user.empty() ? "ESMTPS" : "ESMTPSA")
                             : (sub.auth_user.empty() ? "ESMTP" : "ESMTPA");
  if (sub.protocol == "http") with = "HTTP";
  std::string date = protocol::rfc5322_date(now_ms / 1000);
  std::string from = sub.helo.empty() ? fmt::format("[{}]", sub.client_ip)
                                      : fmt::format("{} ([{}])", sub.helo, sub.client_ip);
  std::string trace;
  trace += protocol::format_header("Received", fmt::format("from {} by {} (mta) with {} id {}; {}",
                                                           from, cfg.hostname, with, hex, date));
  trace += protocol::format_header("X-MTA-Message-ID", hex);
  if (!has_message_id)
    trace += protocol::format_header("Message-ID", fmt::format("<{}@{}>", hex, cfg.hostname));
  if (!has_date) trace += protocol::format_header("Date", date);
  body.insert(0, trace);

  Prepared p;
  p.message.id = id;
  p.message.received_ms = now_ms;
  p.message.mail_from = std::move(sub.mail_from);
  p.message.recipients = std::move(sub.recipients);
  p.message.configuration_set = set->name;
  p.message.tags = std::move(tags);
  p.message.list_name = std::move(list_name);
  p.message.list_topic = std::move(list_topic);
  p.message.client_ip = std::move(sub.client_ip);
  p.message.auth_user = std::move(sub.auth_user);
  p.message.protocol = std::move(sub.protocol);
  p.message.size = body.size();
  p.message.eight_bit = sub.eight_bit;
  size_t header_bytes = 0;
  for (auto& f : protocol::header_fields(body)) {
    std::string value = f.value();
    header_bytes += f.name.size() + value.size();
    if (header_bytes > queue::kMaxHeaderBytes) {
      p.message.headers_truncated = true;
      break;
    }
    p.message.headers.emplace_back(std::string(f.name), std::move(value));
  }
  p.body = std::move(body);
  return p;
}

}  // namespace mta::intake
