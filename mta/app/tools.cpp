// Offline verbs: check-config and queue inspection.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>

#include "mta/app/commands.hpp"
#include "mta/app/wiring.hpp"
#include "mta/config/config.hpp"
#include "mta/events/outbox.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/reply.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"
#include "mta/tls/tls.hpp"
#include "mta/webhook/queue.hpp"

namespace mta::app {
namespace {

std::string rfc3339(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

std::optional<config::Config> load_or_report(const std::string& path) {
  auto r = config::load_file(path);
  if (r.error) {
    std::cerr << r.error->to_string() << "\n";
    return std::nullopt;
  }
  return std::move(*r.config);
}

// The spool of the config at `path`, opened read-only (works while the
// daemon runs). On failure prints why and sets `rc` (2 bad config, 1 spool).
std::unique_ptr<store::Store> open_spool(const std::string& path, int& rc) {
  auto cfg = load_or_report(path);
  if (!cfg) {
    rc = 2;
    return nullptr;
  }
  auto store = store::Store::open(cfg->spool_dir, store::Mode::kReadOnly);
  if (!store) {
    std::cerr << "mta: " << store.error().message << "\n";
    rc = 1;
    return nullptr;
  }
  return std::move(*store);
}

}  // namespace

int check_config(const std::string& path) {
  auto cfg = load_or_report(path);
  if (!cfg) return 2;
  // Parse the TLS material too: a readable file can still hold no key.
  for (size_t i = 0; i < cfg->smtp.listeners.size(); ++i) {
    const auto& l = cfg->smtp.listeners[i];
    if (!l.starttls) continue;
    auto ctx = tls::make_server_context(l.starttls->cert, l.starttls->key);
    if (!ctx) {
      std::cerr << path << ": smtp.listeners[" << i << "].starttls: " << ctx.error().message
                << "\n";
      return 2;
    }
  }
  auto classifier = load_classifier(*cfg);
  if (!classifier) {
    std::cerr << classifier.error().message << "\n";
    return 2;
  }
  if (cfg->tracking.listen) {
    auto rules = load_machine_rules(*cfg);
    if (!rules) {
      std::cerr << rules.error().message << "\n";
      return 2;
    }
  }
  std::cout << path << ": ok\n";
  return 0;
}

int classify(const std::string& path, const std::string& stage_name,
             const std::vector<std::string>& replies, const std::string& mx) {
  std::shared_ptr<const bounce::Classifier> classifier;
  config::Config defaults;  // no --config: the shipped rules only
  std::optional<config::Config> cfg;
  if (!path.empty()) {
    cfg = load_or_report(path);
    if (!cfg) return 2;
  }
  auto c = load_classifier(cfg ? *cfg : defaults);
  if (!c) {
    std::cerr << c.error().message << "\n";
    return 2;
  }
  classifier = *c;
  auto stage = bounce::parse_stage(stage_name);
  if (!stage) {
    std::cerr << "mta: --stage must be one of connect, ehlo, mail, rcpt, data, any\n";
    return 2;
  }
  std::string provider(bounce::provider_from_mx(mx));
  auto one = [&](const std::string& line) {
    // "550 5.1.1 text" or "550-5.1.1 first\n550 5.1.1 second": parse as a
    // server reply; anything else is a connection-level failure text.
    protocol::ReplyParser parser;
    protocol::Reply reply;
    bool parsed = false;
    size_t start = 0;
    for (;;) {
      size_t nl = line.find("\\n", start);
      std::string part = line.substr(start, nl == std::string::npos ? nl : nl - start);
      auto st = parser.feed_line(part);
      if (st == protocol::ReplyParser::Status::kDone) {
        reply = parser.take();
        parsed = true;
        break;
      }
      if (st == protocol::ReplyParser::Status::kError || nl == std::string::npos) break;
      start = nl + 2;
    }
    if (!parsed && line.size() > 3 && line[3] == '-') {
      // A multi-line reply given without its last line: read "550-..." as
      // "550 ...".
      protocol::ReplyParser last;
      std::string fixed = line;
      fixed[3] = ' ';
      if (last.feed_line(fixed) == protocol::ReplyParser::Status::kDone) {
        reply = last.take();
        parsed = true;
      }
    }
    if (!parsed) reply = protocol::Reply{0, "", line};
    auto r = classifier->classify(reply, *stage, provider);
    nlohmann::json j{{"reply", line},
                     {"stage", bounce::to_string(*stage)},
                     {"bounceType", bounce::to_string(r.type)},
                     {"bounceSubType", bounce::to_string(r.subtype)},
                     {"category", bounce::to_string(r.category)},
                     {"suppress", r.suppress},
                     {"throttle", r.throttle},
                     {"rule", r.rule_id}};
    if (!provider.empty()) j["provider"] = provider;
    std::cout << j.dump() << "\n";
  };
  if (!replies.empty()) {
    for (auto& r : replies) one(r);
  } else {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) one(line);
    }
  }
  return 0;
}

int queue_list(const std::string& path, bool json) {
  int rc = 0;
  auto store = open_spool(path, rc);
  if (!store) return rc;
  size_t n = 0;
  auto s = queue::Spool::list(*store, [&](const queue::Message& m) {
    ++n;
    if (json) {
      nlohmann::json j;
      j["id"] = m.id.hex();
      j["received"] = rfc3339(m.received_ms);
      j["configuration_set"] = m.configuration_set;
      j["mail_from"] = m.mail_from;
      j["recipients"] = m.recipients;
      j["tags"] = nlohmann::json::object();
      for (auto& [k, v] : m.tags) j["tags"][k] = v;
      j["size"] = m.size;
      j["client_ip"] = m.client_ip;
      j["auth_user"] = m.auth_user;
      j["protocol"] = m.protocol;
      // Each recipient's state: attempts, the next attempt, the last reply
      // (or why it waits, e.g. for warm-up room) and the time it has waited
      // for warm-up room (not counted toward retry.max_age).
      j["envelopes"] = nlohmann::json::array();
      (void)queue::Spool::envelopes(*store, m.id, [&](uint32_t, const queue::Envelope& e) {
        j["envelopes"].push_back(
            {{"recipient", e.recipient},
             {"state", queue::to_string(e.state)},
             {"attempts", e.attempts},
             {"next_attempt", e.next_attempt_ms ? rfc3339(e.next_attempt_ms) : std::string()},
             {"last_reply", e.last_reply},
             {"warmup_waited_ms", e.waited_ms}});
      });
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%s  %s  %-16s %8llu  <%s> -> %zu rcpt\n", m.id.hex().c_str(),
                  rfc3339(m.received_ms).c_str(), m.configuration_set.c_str(),
                  static_cast<unsigned long long>(m.size), m.mail_from.c_str(),
                  m.recipients.size());
    }
    return true;
  });
  if (!s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  if (!json) std::printf("%zu message(s)\n", n);
  return 0;
}

int queue_show(const std::string& path, const std::string& id_text) {
  auto id = core::MessageId::from_hex(id_text);
  if (!id) {
    std::cerr << "mta: not a message id: " << id_text << "\n";
    return 2;
  }
  int rc = 0;
  auto store = open_spool(path, rc);
  if (!store) return rc;
  auto body = queue::Spool::body(*store, *id);
  if (!body) {
    std::cerr << "mta: " << body.error().message << "\n";
    return 1;
  }
  if (!body->has_value()) {
    std::cerr << "mta: no message " << id_text << " in the spool\n";
    return 1;
  }
  std::fwrite(body->value().data(), 1, body->value().size(), stdout);
  return 0;
}

int events_tail(const std::string& path, const std::string& after) {
  int rc = 0;
  auto store = open_spool(path, rc);
  if (!store) return rc;
  auto s = events::tail(*store, after, [](std::string_view id, std::string_view json) {
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded()) return true;
    j["eventId"] = std::string(id);
    std::cout << j.dump() << "\n";
    return true;
  });
  if (!s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  return 0;
}

int events_dead(const std::string& path, const std::string& destination, bool json) {
  auto cfg = load_or_report(path);
  if (!cfg) return 2;
  if (!destination.empty() && !cfg->find_destination(destination)) {
    std::cerr << "mta: no event destination named " << destination << " in " << path << "\n";
    return 2;
  }
  int rc = 0;
  auto store = open_spool(path, rc);
  if (!store) return rc;
  size_t n = 0;
  auto s = webhook::list_dead(*store, destination, [&](const webhook::DeadLetter& d) {
    ++n;
    if (json) {
      nlohmann::json j{{"id", d.event_id},
                       {"destination", d.destination},
                       {"event_type", d.event_type},
                       {"message_id", d.message_id},
                       {"last_error", d.last_error},
                       {"attempts", d.attempts},
                       {"queued", rfc3339(d.queued_ms)},
                       {"dead", rfc3339(d.dead_ms)}};
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%s  %-16s %-14s %s  %s  %s\n", d.event_id.c_str(), d.destination.c_str(),
                  d.event_type.c_str(), d.message_id.c_str(), rfc3339(d.dead_ms).c_str(),
                  d.last_error.c_str());
    }
    return true;
  });
  if (!s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  if (!json) std::printf("%zu dead letter(s)\n", n);
  return 0;
}

int events_replay(const std::string& path, const std::string& destination,
                  const std::vector<std::string>& ids) {
  auto cfg = load_or_report(path);
  if (!cfg) return 2;
  std::vector<std::string> names;
  if (!destination.empty()) {
    if (!cfg->find_destination(destination)) {
      std::cerr << "mta: no event destination named " << destination << " in " << path << "\n";
      return 2;
    }
    names.push_back(destination);
  } else {
    for (const auto& d : cfg->event_destinations) names.push_back(d.name);
  }
  for (const auto& id : ids)
    if (!core::MessageId::from_hex(id)) {
      std::cerr << "mta: not an event id: " << id << "\n";
      return 2;
    }
  // Replaying writes to the spool: RocksDB allows one writer, the daemon.
  auto store = store::Store::open(cfg->spool_dir, store::Mode::kReadWrite);
  if (!store) {
    std::cerr << "mta: " << store.error().message
              << "\n(is the daemon running? `mta events replay` needs it stopped; while it "
                 "runs, use the admin API: mta ctl events replay)\n";
    return 1;
  }
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::set<std::string> replayed;
  size_t n = 0;
  for (const auto& name : names) {
    auto r = webhook::replay_dead(**store, name, ids, now);
    if (!r) {
      std::cerr << "mta: " << r.error().message << "\n";
      return 1;
    }
    for (const auto& id : r->replayed) std::cout << "replayed " << id << " to " << name << "\n";
    n += r->replayed.size();
    replayed.insert(r->replayed.begin(), r->replayed.end());
  }
  int result = 0;
  for (const auto& id : ids) {
    auto hex = core::MessageId::from_hex(id)->hex();
    if (!replayed.count(hex)) {
      std::cerr << "mta: no dead letter " << id
                << (destination.empty() ? std::string() : " for " + destination) << "\n";
      result = 1;
    }
  }
  std::cout << n << " event(s) queued again\n";
  return result;
}

int suppression_list(const std::string& path, bool json) {
  int rc = 0;
  auto store = open_spool(path, rc);
  if (!store) return rc;
  size_t n = 0;
  auto s = queue::list_suppressions(*store, [&](const queue::SuppressionEntry& e) {
    ++n;
    if (json) {
      nlohmann::json j{{"address", e.address},
                       {"reason", e.reason},
                       {"created", rfc3339(e.created_ms)},
                       {"message_id", e.message_id},
                       {"detail", e.detail}};
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%-40s %-10s %s  %s\n", e.address.c_str(), e.reason.c_str(),
                  rfc3339(e.created_ms).c_str(), e.detail.c_str());
    }
    return true;
  });
  if (!s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  if (!json) std::printf("%zu address(es)\n", n);
  return 0;
}

int suppression_edit(const std::string& path, const std::string& address, const std::string& reason,
                     bool add) {
  auto cfg = load_or_report(path);
  if (!cfg) return 2;
  if (!protocol::is_valid_mailbox(address)) {
    std::cerr << "mta: not an email address: " << address << "\n";
    return 2;
  }
  if (reason != "BOUNCE" && reason != "COMPLAINT" && reason != "MANUAL") {
    std::cerr << "mta: --reason must be BOUNCE, COMPLAINT or MANUAL\n";
    return 2;
  }
  // Editing needs the spool itself: RocksDB allows one writer, the daemon.
  auto store = store::Store::open(cfg->spool_dir, store::Mode::kReadWrite);
  if (!store) {
    std::cerr << "mta: " << store.error().message
              << "\n(is the daemon running? stop it first; the HTTP admin API will edit the list "
                 "while it runs)\n";
    return 1;
  }
  store::Batch b;
  if (add) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    queue::put_suppression(b, {address, reason, now, "", "added with mta suppression add"});
  } else {
    queue::delete_suppression(b, address);
  }
  auto s = (*store)->commit_sync(std::move(b));
  if (!s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  std::cout << (add ? "suppressed " : "removed ") << address << "\n";
  return 0;
}

}  // namespace mta::app
