#include "mta/delivery/render.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mta/config/config.hpp"
#include "mta/core/text.hpp"
#include "mta/dkim/signer.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/message.hpp"
#include "mta/protocol/mime.hpp"
#include "mta/rewrite/rewrite.hpp"
#include "mta/tracking/token.hpp"

namespace mta::delivery {
namespace {

bool tracks(const config::Config& cfg, const config::ConfigurationSet& set) {
  return set.tracking.any() && cfg.tracking.configured();
}

bool unsubscribes(const config::Config& cfg, const config::ConfigurationSet& set,
                  const queue::Message& m) {
  return (set.list_unsubscribe.enabled || !m.list_name.empty()) && cfg.tracking.configured();
}

// The domain of the From header's first mailbox, else of the envelope
// sender: what DMARC aligns the DKIM d= with.
std::string from_domain(std::string_view message, const queue::Message& m) {
  if (auto from = protocol::header_value(message, "From"))
    if (auto list = protocol::parse_address_list(*from); list && !list->empty())
      return core::ascii_lower(protocol::domain_of(list->front().address));
  return core::ascii_lower(protocol::domain_of(m.mail_from));
}

tracking::Claims claims(tracking::Kind kind, const queue::Message& m, std::string_view rcpt,
                        int64_t now_ms) {
  tracking::Claims c;
  c.kind = kind;
  c.message_id = m.id;
  c.recipient = std::string(rcpt);
  c.configuration_set = m.configuration_set;
  c.sent_ms = now_ms;
  return c;
}

void add_tracking(const config::Config& cfg, const config::ConfigurationSet& set,
                  const queue::Message& m, std::string_view rcpt, int64_t now_ms,
                  std::string& body) {
  auto t = rewrite::Template::parse_owned(std::move(body));
  if (!t.has_html()) {
    body = t.message();
    return;
  }
  const std::string& base = cfg.tracking.base_url;
  const std::string& secret = cfg.tracking.secret;
  std::string pixel;
  if (set.tracking.opens)
    pixel = base + "/o/" + tracking::sign(claims(tracking::Kind::kOpen, m, rcpt, now_ms), secret) +
            ".gif";
  auto click = [&](uint32_t index, std::string_view url) -> std::optional<std::string> {
    if (!set.tracking.clicks) return std::nullopt;
    auto c = claims(tracking::Kind::kClick, m, rcpt, now_ms);
    c.link_index = index;
    c.url = std::string(url);
    for (const auto& l : t.links())
      if (l.index == index) c.link_tags = l.tags;
    return base + "/c/" + tracking::sign(c, secret);
  };
  body = t.render(click, pixel);
}

void add_unsubscribe(const config::Config& cfg, const config::ConfigurationSet& set,
                     const queue::Message& m, std::string_view rcpt, int64_t now_ms,
                     std::string& body) {
  std::string_view head(body.data(), protocol::header_block_size(body));
  bool own = protocol::header_value(head, "List-Unsubscribe").has_value();
  if (own && m.list_name.empty()) return;  // the submitter runs its own unsubscribe
  if (own) protocol::remove_headers(body, {"List-Unsubscribe", "List-Unsubscribe-Post"});
  auto c = claims(tracking::Kind::kUnsubscribe, m, rcpt, now_ms);
  c.list_name = m.list_name;
  c.list_topic = m.list_topic;
  std::string value =
      "<" + cfg.tracking.base_url + "/u/" + tracking::sign(c, cfg.tracking.secret) + ">";
  if (!set.list_unsubscribe.mailto.empty())
    value += ", <mailto:" + set.list_unsubscribe.mailto + "?subject=unsubscribe>";
  std::string fields =
      protocol::format_header("List-Unsubscribe", value) +
      protocol::format_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
  body.insert(0, fields);
}

}  // namespace

bool per_recipient(const config::Config& cfg, const config::ConfigurationSet& set,
                   const queue::Message& m) {
  return tracks(cfg, set) || unsubscribes(cfg, set, m);
}

core::Result<Rendered> render(const config::Config& cfg, const config::ConfigurationSet& set,
                              const dkim::Signer* signer, const queue::Message& m,
                              std::string_view recipient, std::string body, int64_t now_ms) {
  Rendered r;
  if (!recipient.empty()) {
    if (tracks(cfg, set)) add_tracking(cfg, set, m, recipient, now_ms, body);
    if (unsubscribes(cfg, set, m)) add_unsubscribe(cfg, set, m, recipient, now_ms, body);
  }
  if (signer && signer->key_count() > 0) {
    std::string domain = signer->signing_domain(from_domain(body, m));
    if (domain.empty() && !set.dkim_domain.empty() && signer->has_domain(set.dkim_domain))
      domain = set.dkim_domain;
    if (!domain.empty()) {
      auto sig = signer->sign(body, domain);
      if (sig) {
        body.insert(0, *sig);
        r.dkim_domain = domain;
      } else if (cfg.dkim_failure == config::DkimFailure::kDefer) {
        return core::make_error("DKIM signing with " + domain + " failed: " + sig.error().message);
      } else {
        r.dkim_failed = true;
        r.dkim_error = sig.error().message;
      }
    }
  }
  r.message = std::move(body);
  return r;
}

}  // namespace mta::delivery
