#include "mta/delivery/engine.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>

#include <cctype>
#include <cmath>
#include <deque>
#include <list>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "mta/bounce/classifier.hpp"
#include "mta/config/config.hpp"
#include "mta/delivery/client.hpp"
#include "mta/delivery/render.hpp"
#include "mta/dkim/signer.hpp"
#include "mta/dns/resolver.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/protocol/message.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"
#include "mta/warmup/limiter.hpp"
#include "mta/warmup/router.hpp"

namespace mta::delivery {

using asio::awaitable;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto kQueueFullDelay = std::chrono::seconds(5);
constexpr auto kShutdownDelay = std::chrono::seconds(1);
// Paused mail is looked at again this often (resumed mail leaves within it).
constexpr auto kPausedDelay = std::chrono::seconds(60);
constexpr std::string_view kPausePrefix = "pause/";  // meta CF: pause/<p|i|d>/<name>

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Source {
  asio::ip::address address;  // unspecified: the host's default
  std::string ip;             // its text; "-" when unspecified
  std::string ehlo;
  std::string pool;
};

Source source_of(const config::Config& cfg, const config::IpPool* pool, const std::string& ip) {
  Source s;
  s.ip = "-";
  s.ehlo = cfg.hostname;
  if (!pool) return s;
  s.pool = pool->name;
  for (const auto& p : pool->ips)
    if (p.address.to_string() == ip) {
      asio::error_code ec;
      s.address = asio::ip::make_address(ip, ec);
      s.ip = ip;
      s.ehlo = p.ehlo;
    }
  return s;
}

int priority_index(config::Priority p) {
  switch (p) {
    case config::Priority::kHigh:
      return 0;
    case config::Priority::kNormal:
      return 1;
    case config::Priority::kBulk:
      return 2;
  }
  return 1;
}

bounce::Stage bounce_stage(Stage s) {
  switch (s) {
    case Stage::kConnect:
    case Stage::kBanner:
      return bounce::Stage::kConnect;
    case Stage::kEhlo:
    case Stage::kStarttls:
      return bounce::Stage::kEhlo;
    case Stage::kMail:
      return bounce::Stage::kMail;
    case Stage::kRcpt:
      return bounce::Stage::kRcpt;
    case Stage::kData:
    case Stage::kDataEnd:
      return bounce::Stage::kData;
    case Stage::kQuit:
      return bounce::Stage::kAny;
  }
  return bounce::Stage::kAny;
}

// A connection waiting for work: its timer is cancelled (on its own
// strand) when a job arrives.
struct Waiter {
  asio::any_io_executor ex;
  std::shared_ptr<asio::steady_timer> timer;
};

}  // namespace

// A job with the unit of allowance it holds.
struct Work {
  std::shared_ptr<queue::Job> job;
  core::SysTime taken_at;  // when the unit was taken (Limiter::give_back)
  bool unit = false;       // holds a unit
};

struct Destination {
  std::string key;       // "ip|site"
  std::string site;      // the provider, or the domain
  std::string provider;  // "other" for none
  Source source;
  // The provider's (or shaping.default's), refreshed by every enqueue so a
  // reload applies.
  std::atomic<uint32_t> max_per_connection{100};

  std::mutex mu;
  std::deque<Work> jobs[3];  // by priority: high, normal, bulk
  std::list<Waiter> waiters;
  uint32_t connections = 0;
  int64_t dead_until_ms = 0;
  protocol::Reply dead_reply;
  bounce::Stage dead_stage = bounce::Stage::kConnect;

  size_t queued() const { return jobs[0].size() + jobs[1].size() + jobs[2].size(); }
  bool pop(Work& w) {
    for (auto& q : jobs)
      if (!q.empty()) {
        w = std::move(q.front());
        q.pop_front();
        return true;
      }
    return false;
  }
};

struct Engine::Impl : std::enable_shared_from_this<Engine::Impl> {
  Impl(asio::io_context& io, store::Store& store, queue::Scheduler& sched, dns::Resolver& resolver,
       warmup::Limiter& limiter, const core::Clock& clock,
       std::shared_ptr<const config::Config> cfg,
       std::shared_ptr<const bounce::Classifier> classifier,
       std::shared_ptr<const dkim::Signer> signer)
      : io(io),
        store(store),
        sched(sched),
        resolver(resolver),
        limiter(limiter),
        router(limiter),
        clock(clock),
        tls(std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)),
        cfg(std::move(cfg)),
        classifier(std::move(classifier)),
        signer(std::move(signer)) {
    // Opportunistic TLS between MTAs does not verify certificates (RFC 7435);
    // MTA-STS and DANE are the ways to demand more.
    tls->set_verify_mode(asio::ssl::verify_none);
    std::string to(kPausePrefix);
    to.back() = static_cast<char>('/' + 1);
    auto s = store.scan(store::Cf::kMeta, kPausePrefix, to, [&](std::string_view k, auto) {
      k.remove_prefix(kPausePrefix.size());
      if (k.size() > 2 && k[1] == '/') {
        int i = k[0] == 'p' ? 0 : k[0] == 'i' ? 1 : k[0] == 'd' ? 2 : -1;
        if (i >= 0) paused[i].insert(std::string(k.substr(2)));
      }
      return true;
    });
    if (!s.ok()) spdlog::error("delivery=pauses_unreadable error=\"{}\"", s.error().message);
    for (int i = 0; i < 3; ++i)
      for (const auto& n : paused[i])
        spdlog::warn("delivery=paused {}={} (resume with mta ctl resume)",
                     i == 0   ? "pool"
                     : i == 1 ? "ip"
                              : "domain",
                     n);
  }

  asio::io_context& io;
  store::Store& store;
  queue::Scheduler& sched;
  dns::Resolver& resolver;
  warmup::Limiter& limiter;
  warmup::Router router;
  const core::Clock& clock;
  std::shared_ptr<asio::ssl::context> tls;

  mutable std::mutex mu;
  std::shared_ptr<const config::Config> cfg;
  std::shared_ptr<const bounce::Classifier> classifier;
  std::shared_ptr<const dkim::Signer> signer;
  std::unordered_map<std::string, std::shared_ptr<Destination>> dests;
  std::unordered_set<std::string> warned_sets;  // removed sets already logged
  std::set<std::string> paused[3];              // by Engine::Pause: pools, IPs, domains
  // Domain -> provider as last routed (for the admin queue summary);
  // bounded: cleared when it grows past kMaxKnownDomains.
  std::unordered_map<std::string, std::string> domain_provider;
  static constexpr size_t kMaxKnownDomains = 200000;
  bool stopping = false;
  std::atomic<size_t> connections{0};

  metrics::Counter dkim_failures = metrics::counter(
      "mta_dkim_failures_total", "Messages whose DKIM signing failed (deferred, or sent unsigned)");
  // One per signature, by d= domain (configured key domains only: bounded)
  // and algorithm.
  void count_signed(const dkim::Signer& sg, const std::string& domain) {
    for (auto a : sg.algorithms(domain))
      metrics::counter("mta_dkim_signatures_total",
                       "DKIM signatures made, by d= domain and algorithm",
                       {{"domain", domain}, {"algorithm", dkim::to_string(a)}})
          .inc();
  }

  metrics::Gauge conn_gauge =
      metrics::gauge("mta_delivery_connections", "Open outbound SMTP connections");
  metrics::Histogram latency = metrics::histogram(
      "mta_delivery_seconds", "From acceptance to delivery of a recipient",
      {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400});

  // What a reload replaces, taken together so a delivery never pairs one
  // config with another config's rules or keys.
  struct Current {
    std::shared_ptr<const config::Config> cfg;
    std::shared_ptr<const bounce::Classifier> classifier;
    std::shared_ptr<const dkim::Signer> signer;  // null: no DKIM keys
  };
  Current snapshot() const {
    std::lock_guard lock(mu);
    return {cfg, classifier, signer};
  }

  // ---- outcomes ----------------------------------------------------------

  queue::Outcome from_reply(const bounce::Classifier& c, const protocol::Reply& r,
                            bounce::Stage stage, std::string_view provider) {
    queue::Outcome o;
    o.reply = r.code ? r.to_string() : r.text;
    if (r.positive() && stage == bounce::Stage::kData) {
      o.fate = queue::Fate::kDelivered;
      return o;
    }
    auto cl = c.classify(r, stage, provider == "other" ? std::string_view() : provider);
    o.bounce_type = bounce::to_string(cl.type);
    o.bounce_subtype = bounce::to_string(cl.subtype);
    o.category = bounce::to_string(cl.category);
    o.rule_id = cl.rule_id;
    o.throttle = cl.throttle;
    if (cl.type == bounce::BounceType::kPermanent) {
      o.fate = queue::Fate::kBounced;
      o.suppress = cl.suppress;
    } else {
      o.fate = queue::Fate::kDeferred;
    }
    return o;
  }

  // Reports a job's outcomes to the queue. `w.unit` is given back unless
  // `sent` (an SMTP transaction was started for it); `reached` says that
  // the outcomes carry the server's replies (they feed adaptive backoff).
  void finish(Work& w, std::vector<queue::Outcome> outcomes, const Source& src,
              const std::string& provider, bool sent = false, bool reached = false) {
    auto& job = w.job;
    const auto& pool = src.pool.empty() ? std::string("-") : src.pool;
    const std::string& ip = src.ip.empty() ? std::string("-") : src.ip;
    std::string prov = provider.empty() ? "other" : provider;
    int64_t now = wall_ms();
    if (w.unit && !sent) limiter.give_back(src.ip, prov, w.taken_at);
    w.unit = false;
    bool throttled = false, any_result = false;
    for (size_t i = 0; i < outcomes.size(); ++i) {
      auto& o = outcomes[i];
      if (o.source_ip.empty() && ip != "-") o.source_ip = ip;
      if (o.pool.empty()) o.pool = src.pool;
      if (o.provider.empty()) o.provider = prov;
      if (o.fate == queue::Fate::kPostponed) continue;
      throttled = throttled || o.throttle;
      any_result = any_result || (reached && !job->rcpts[i].suppressed);
      metrics::counter(
          "mta_deliveries_total", "Delivery attempts by sending pool and IP, provider and result",
          {{"pool", pool}, {"ip", ip}, {"provider", prov}, {"result", queue::to_string(o.fate)}})
          .inc();
      if (o.fate == queue::Fate::kDelivered)
        latency.observe(static_cast<double>(now - job->message->received_ms) / 1000.0);
      else
        metrics::counter("mta_delivery_failures_total",
                         "Deferrals and bounces by bounce category (config/bounce-rules.yaml)",
                         {{"category", o.category.empty() ? "other" : o.category},
                          {"result", queue::to_string(o.fate)}})
            .inc();
      spdlog::info("id={} event={} rcpt=<{}> domain={} ip={} provider={} reply=\"{}\"{}",
                   job->message->id.hex(), queue::to_string(o.fate), job->rcpts[i].address,
                   job->domain, ip, prov, o.reply,
                   o.category.empty() ? "" : fmt::format(" category={}", o.category));
    }
    // One verdict per transaction: a burst of 421s to one message's
    // recipients is one signal.
    if ((throttled || any_result) && ip != "-") limiter.on_result(ip, prov, throttled, clock.now());
    sched.complete(std::move(*job), std::move(outcomes));
  }

  // Every recipient gets the same fate (connection-level results).
  void finish_all(Work& w, const queue::Outcome& o, const Source& src, const std::string& provider,
                  bool reached = false) {
    std::vector<queue::Outcome> outcomes;
    for (auto& r : w.job->rcpts) {
      if (r.suppressed)
        outcomes.push_back(suppressed_outcome(r));
      else
        outcomes.push_back(o);
    }
    finish(w, std::move(outcomes), src, provider, false, reached);
  }

  static queue::Outcome suppressed_outcome(const queue::Job::Rcpt& r) {
    queue::Outcome o;
    o.fate = queue::Fate::kBounced;
    o.reply = "550 5.1.1 address on the suppression list (" + r.suppression_reason + ")";
    o.bounce_type = "Permanent";
    o.bounce_subtype = "Suppressed";
    o.category = "bad-mailbox";
    o.rule_id = "suppression-list";
    return o;
  }

  static queue::Outcome postponed(std::chrono::milliseconds delay, std::string why) {
    queue::Outcome o;
    o.fate = queue::Fate::kPostponed;
    o.delay = delay;
    o.reply = std::move(why);
    return o;
  }

  // ---- dispatch and routing ----------------------------------------------

  void dispatch(queue::Job job) {
    Work w{std::make_shared<queue::Job>(std::move(job)), {}, false};
    bool stop_now;
    {
      std::lock_guard lock(mu);
      stop_now = stopping;
    }
    if (stop_now) {
      finish_all(w, postponed(kShutdownDelay, "shutting down"), Source{}, {});
      return;
    }
    bool all_suppressed = true;
    for (auto& r : w.job->rcpts) all_suppressed = all_suppressed && r.suppressed;
    if (all_suppressed) {
      finish_all(w, queue::Outcome{}, Source{}, {});
      return;
    }
    asio::co_spawn(io, route(shared_from_this(), std::move(w)), asio::detached);
  }

  // The configuration set of a message, falling back to the default set
  // when a reload removed its own.
  const config::ConfigurationSet* set_of(const config::Config& c, const queue::Message& m) {
    const config::ConfigurationSet* set = c.find_set(m.configuration_set);
    if (set) return set;
    {
      std::lock_guard lock(mu);
      if (warned_sets.insert(m.configuration_set).second)
        spdlog::warn(
            "delivery=set_missing set=\"{}\" fallback=\"{}\" reason=\"configuration set no "
            "longer configured; its queued mail is sent with the default set\"",
            m.configuration_set, c.default_configuration_set);
    }
    return c.find_set(c.default_configuration_set);
  }

  // ---- operator pauses ----------------------------------------------------

  bool is_paused(Engine::Pause k, const std::string& name) const {
    std::lock_guard lock(mu);
    return paused[static_cast<int>(k)].count(name) > 0;
  }

  // Why mail for `domain` from `pool` may not go now, if it may not.
  std::optional<std::string> pause_reason(const std::string& domain, const config::IpPool* pool) {
    if (is_paused(Engine::Pause::kDomain, domain))
      return "destination " + domain + " is suspended by the operator";
    if (pool && is_paused(Engine::Pause::kPool, pool->name))
      return "pool " + pool->name + " is suspended by the operator";
    return std::nullopt;
  }

  // The pool's IPs that are not suspended.
  std::vector<warmup::Candidate> candidates(const config::IpPool& pool) const {
    std::vector<warmup::Candidate> out;
    out.reserve(pool.ips.size());
    std::lock_guard lock(mu);
    for (const auto& p : pool.ips) {
      std::string ip = p.address.to_string();
      if (!paused[1].count(ip)) out.push_back({std::move(ip), std::nullopt});
    }
    return out;
  }

  // Removes the queued jobs `match` selects from every destination.
  std::vector<std::pair<Work, std::shared_ptr<Destination>>> take_queued(
      const std::function<bool(const Destination&, const queue::Job&)>& match) {
    std::vector<std::shared_ptr<Destination>> all;
    {
      std::lock_guard lock(mu);
      for (auto& [_, d] : dests) all.push_back(d);
    }
    std::vector<std::pair<Work, std::shared_ptr<Destination>>> out;
    for (auto& d : all) {
      std::lock_guard dl(d->mu);
      for (auto& q : d->jobs)
        for (auto it = q.begin(); it != q.end();) {
          if (match(*d, *it->job)) {
            out.emplace_back(std::move(*it), d);
            it = q.erase(it);
          } else {
            ++it;
          }
        }
    }
    return out;
  }

  // An operator's domain name, lowercased; empty when it is not one.
  static std::string operator_domain(std::string name) {
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (name.find_first_of(" /@") != std::string::npos) return {};
    return name;
  }

  core::Status set_paused(Engine::Pause kind, std::string name, bool on) {
    auto c = snapshot().cfg;
    if (kind == Engine::Pause::kDomain) {
      std::string domain = operator_domain(name);
      if (domain.empty()) return core::make_error("not a domain: \"" + name + "\"");
      name = std::move(domain);
    } else if (kind == Engine::Pause::kPool) {
      if (!c->find_pool(name)) return core::make_error("no pool named " + name);
    } else {
      auto ip = core::IpAddress::parse(name);
      bool known = false;
      if (ip)
        for (const auto& p : c->ip_pools)
          for (const auto& i : p.ips)
            if (i.address.unmapped() == ip->unmapped()) {
              known = true;
              name = i.address.to_string();
            }
      if (!known) return core::make_error("no pool has the IP " + name);
    }
    const char tag = kind == Engine::Pause::kPool ? 'p' : kind == Engine::Pause::kIp ? 'i' : 'd';
    std::string key = std::string(kPausePrefix) + tag + "/" + name;
    store::Batch b;
    if (on)
      b.put(store::Cf::kMeta, key, "1");
    else
      b.del(store::Cf::kMeta, key);
    if (auto s = store.commit_sync(std::move(b)); !s.ok()) return s;
    {
      std::lock_guard lock(mu);
      if (on)
        paused[static_cast<int>(kind)].insert(name);
      else
        paused[static_cast<int>(kind)].erase(name);
    }
    spdlog::warn("delivery={} {}={}", on ? "paused" : "resumed",
                 kind == Engine::Pause::kPool ? "pool"
                 : kind == Engine::Pause::kIp ? "ip"
                                              : "domain",
                 name);
    if (!on) {
      // What waited for this resume is due again now, not in a minute.
      sched.expedite(kPausedDelay + std::chrono::seconds(5));
      return core::Ok{};
    }
    // Jobs already queued for what is now paused wait too.
    auto taken = take_queued([&](const Destination& d, const queue::Job& j) {
      switch (kind) {
        case Engine::Pause::kDomain:
          return j.domain == name;
        case Engine::Pause::kIp:
          return d.source.ip == name;
        case Engine::Pause::kPool:
          return d.source.pool == name;
      }
      return false;
    });
    for (auto& [w, d] : taken)
      finish_all(w, postponed(kPausedDelay, "suspended by the operator"), d->source, d->provider);
    return core::Ok{};
  }

  core::Result<size_t> bounce_all(const std::string& name) {
    std::string domain = operator_domain(name);
    if (domain.empty()) return core::make_error("not a domain: \"" + name + "\"");
    queue::Outcome o;
    o.fate = queue::Fate::kBounced;
    o.reply = "550 5.0.0 bounced by the operator (bounce-all for " + domain + ")";
    o.bounce_type = "Permanent";
    o.bounce_subtype = "General";
    o.category = "other";
    o.rule_id = "operator-bounce-all";
    // What waits in the destination queues here, then the rest of the
    // queue through the scheduler.
    auto taken =
        take_queued([&](const Destination&, const queue::Job& j) { return j.domain == domain; });
    size_t n = 0;
    for (auto& [w, d] : taken) {
      n += w.job->rcpts.size();
      finish_all(w, o, d->source, d->provider);
    }
    n += sched.finish_domain(domain, o);
    spdlog::warn("delivery=bounce_all domain={} recipients={}", domain, n);
    return n;
  }

  // Finds the site and provider, picks the source IP and queues the job.
  static awaitable<void> route(std::shared_ptr<Impl> self, Work w) {
    Current cur = self->snapshot();
    const config::Config& cfg = *cur.cfg;
    const auto& cls = cur.classifier;
    std::optional<queue::Outcome> failure;
    config::TlsPolicy policy;
    auto hops = co_await self->resolve(cfg, w.job->domain, failure, *cls, policy);
    if (!failure && hops.empty()) {
      protocol::Reply r{451, "4.4.3", "no address for the next hops of " + w.job->domain};
      failure = self->from_reply(*cls, r, bounce::Stage::kConnect, {});
    }
    if (failure) {
      self->finish_all(w, *failure, Source{}, {});
      co_return;
    }
    const config::ProviderShaping* ps = cfg.shaping.provider_for(hops.front().host);
    std::string provider = ps ? ps->name : "other";
    {
      std::lock_guard lock(self->mu);
      if (self->domain_provider.size() >= kMaxKnownDomains) self->domain_provider.clear();
      self->domain_provider[w.job->domain] = provider;
    }
    const config::ConfigurationSet* set = self->set_of(cfg, *w.job->message);
    const config::IpPool* pool = set ? cfg.find_pool(set->ip_pool) : nullptr;
    int prio = set ? priority_index(set->priority) : 1;
    if (auto why = self->pause_reason(w.job->domain, pool)) {
      self->finish_all(w, postponed(kPausedDelay, *why), Source{}, provider);
      co_return;
    }
    if (!pool || pool->ips.empty()) {
      // Cannot happen with a validated config; send from the host's default.
      self->enqueue(cfg, std::move(w), Source{}, provider, ps, prio, 1.0);
      co_return;
    }
    auto now = self->clock.now();
    const auto usable = self->candidates(*pool);  // not suspended
    auto pick = self->router.pick(usable, provider, now);
    const config::IpPool* from = pool;
    std::string overflow = cfg.overflow_of(*pool);
    if (!pick && overflow.rfind("pool:", 0) == 0) {
      if (const config::IpPool* other = cfg.find_pool(overflow.substr(5))) {
        auto second = self->router.pick(self->candidates(*other), provider, now);
        if (second) {
          pick = std::move(second);
          from = other;
        } else {
          pick.next_room = std::min(pick.next_room, second.next_room);
        }
      }
    }
    if (!pick && usable.empty()) {
      self->finish_all(w,
                       postponed(kPausedDelay, "every IP of pool " + pool->name + " is suspended"),
                       Source{}, provider);
      co_return;
    }
    if (!pick) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(pick.next_room - now);
      wait = std::clamp<std::chrono::milliseconds>(wait, std::chrono::seconds(1),
                                                   std::chrono::hours(24));
      auto o = postponed(wait, fmt::format("no room: every IP of pool {} has reached its warm-up "
                                           "or hourly limit for {}; next room in {} s",
                                           pool->name, provider, wait.count() / 1000));
      o.warmup_wait = true;
      o.pool = pool->name;
      self->finish_all(w, o, Source{}, provider);
      co_return;
    }
    w.unit = true;
    w.taken_at = now;
    Source src = source_of(cfg, from, *pick.ip);
    self->enqueue(cfg, std::move(w), std::move(src), provider, ps, prio, pick.allowance.multiplier);
  }

  void enqueue(const config::Config& c, Work w, Source src, const std::string& provider,
               const config::ProviderShaping* ps, int prio, double multiplier) {
    std::string site = ps ? ps->name : w.job->domain;
    std::string key = src.ip + "|" + site;
    std::shared_ptr<Destination> d;
    {
      std::unique_lock lock(mu);
      if (stopping) {  // routed while stop() drained the queues
        lock.unlock();
        finish_all(w, postponed(kShutdownDelay, "shutting down"), src, provider);
        return;
      }
      auto& slot = dests[key];
      if (!slot) {
        slot = std::make_shared<Destination>();
        slot->key = key;
        slot->site = site;
        slot->provider = provider;
        slot->source = src;
      }
      d = slot;
    }
    d->max_per_connection =
        ps ? ps->max_messages_per_connection : c.shaping.max_messages_per_connection;
    // The provider's connection limit, lowered while it throttles this IP.
    uint32_t max_conn = ps ? ps->max_connections : c.shaping.max_connections;
    max_conn = std::max<uint32_t>(
        1, static_cast<uint32_t>(std::ceil(static_cast<double>(max_conn) * multiplier)));
    std::unique_lock dl(d->mu);
    if (d->dead_until_ms > wall_ms()) {
      auto reply = d->dead_reply;
      auto stage = d->dead_stage;
      dl.unlock();
      auto cls = snapshot().classifier;
      finish_all(w, from_reply(*cls, reply, stage, provider), d->source, provider);
      return;
    }
    if (d->queued() >= c.delivery.max_queued_per_destination) {
      dl.unlock();
      finish_all(w, postponed(kQueueFullDelay, "destination queue full"), d->source, provider);
      return;
    }
    d->jobs[prio].push_back(std::move(w));
    if (!d->waiters.empty()) {
      Waiter wt = std::move(d->waiters.front());
      d->waiters.pop_front();
      dl.unlock();
      asio::post(wt.ex, [t = wt.timer] { t->cancel(); });
      return;
    }
    if (d->connections < max_conn) {
      ++d->connections;
      dl.unlock();
      auto ex = asio::make_strand(io);
      asio::co_spawn(ex, run_connection(shared_from_this(), d), asio::detached);
    }
  }

  // Pops the next job, or waits for one until the connection has been idle
  // for `idle`. false: none came; the connection retires.
  awaitable<bool> next_job(Destination& d, std::chrono::milliseconds idle, Work& out) {
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex);
    const auto deadline = Clock::now() + idle;
    for (;;) {
      {
        std::lock_guard lock(d.mu);
        if (d.pop(out)) co_return true;
        bool stop_now;
        {
          std::lock_guard l2(mu);
          stop_now = stopping;
        }
        if (stop_now || Clock::now() >= deadline) {
          // Decided under the lock, so that enqueue() sees the connection
          // gone and starts a new one if work arrives now.
          --d.connections;
          co_return false;
        }
        // Woken early (a job was handed to us but another connection took
        // it first), we keep waiting until the same deadline.
        timer->expires_at(deadline);
        d.waiters.push_back(Waiter{ex, timer});
      }
      co_await timer->async_wait(kNoThrow);
      std::lock_guard lock(d.mu);
      for (auto it = d.waiters.begin(); it != d.waiters.end(); ++it)
        if (it->timer == timer) {
          d.waiters.erase(it);
          break;
        }
    }
  }

  static awaitable<void> run_connection(std::shared_ptr<Impl> self,
                                        std::shared_ptr<Destination> d) {
    self->conn_gauge.inc();
    ++self->connections;
    {
      auto timeouts = self->snapshot().cfg->delivery.timeouts;
      Client client(co_await asio::this_coro::executor, timeouts, self->tls);
      for (;;) {
        auto idle = self->snapshot().cfg->shaping.idle_timeout;
        Work w;
        bool got = co_await self->next_job(*d, idle, w);
        if (!got) break;
        // Taken after the wait: a job that arrives after a reload goes out
        // with the new config, rules and keys.
        Current cur = self->snapshot();
        // By reference: no non-trivial temporary inside the co_await
        // (GCC 12, research/build-spike.md).
        co_await self->deliver(w, client, *d, cur);
      }
      co_await client.quit();
    }
    --self->connections;
    self->conn_gauge.dec();
  }

  // ---- one job on one connection -----------------------------------------

  awaitable<std::vector<Hop>> resolve(const config::Config& cfg, const std::string& domain,
                                      std::optional<queue::Outcome>& failure,
                                      const bounce::Classifier& cls, config::TlsPolicy& policy) {
    std::vector<Hop> hops;
    policy = cfg.delivery.tls;
    if (const config::Route* route = cfg.find_route(domain)) {
      policy = route->tls;
      for (const auto& h : route->hosts) {
        std::string host = h.host;
        auto addrs = co_await resolver.addresses(host);
        for (auto& a : addrs.addresses) hops.push_back(Hop{h.host, a, h.port});
      }
      if (hops.empty()) {
        protocol::Reply r{451, "4.4.3", "route for " + domain + ": no address for its hosts"};
        failure = from_reply(cls, r, bounce::Stage::kConnect, {});
      }
      co_return hops;
    }
    std::string name = domain;
    auto nh = co_await resolver.next_hops(name);
    if (nh.status == dns::Status::kOk && nh.null_mx) {
      protocol::Reply r{556, "5.1.10",
                        "Recipient address rejected: " + domain + " accepts no mail (null MX)"};
      failure = from_reply(cls, r, bounce::Stage::kConnect, {});
      co_return hops;
    }
    if (nh.status == dns::Status::kNxDomain) {
      protocol::Reply r{550, "5.1.2",
                        "Host or domain name not found: " + domain + " (" + nh.error + ")"};
      failure = from_reply(cls, r, bounce::Stage::kConnect, {});
      co_return hops;
    }
    if (nh.status != dns::Status::kOk || nh.hops.empty()) {
      protocol::Reply r{451, "4.4.3", "DNS lookup for " + domain + " failed: " + nh.error};
      failure = from_reply(cls, r, bounce::Stage::kConnect, {});
      co_return hops;
    }
    for (auto& h : nh.hops)
      for (auto& a : h.addresses) hops.push_back(Hop{h.host, a, 25});
    co_return hops;
  }

  // Opens `client` to the first next hop that answers. On failure the job
  // is finished (deferred, or bounced for null MX / NXDOMAIN) and, when no
  // hop could be reached, the destination is marked dead for a while.
  awaitable<bool> connect(Work& w, Client& client, Destination& d, const config::Config& cfg,
                          const bounce::Classifier& cls) {
    const Source& src = d.source;
    const std::string& provider = d.provider;
    auto& job = w.job;
    std::optional<queue::Outcome> failure;
    config::TlsPolicy policy;
    auto hops = co_await resolve(cfg, job->domain, failure, cls, policy);
    if (failure) {
      finish_all(w, *failure, src, provider);
      co_return false;
    }
    OpenResult last;
    for (auto& hop : hops) {
      last = co_await client.open(src.address, src.ehlo, hop, policy);
      if (!last.ok && last.stage == Stage::kStarttls && last.reply.code == 0 &&
          policy == config::TlsPolicy::kOpportunistic) {
        // A broken TLS handshake under opportunistic TLS: like Postfix at
        // security level "may", deliver in clear text rather than never.
        spdlog::info("delivery=tls_fallback domain={} host={} reason=\"{}\"", job->domain, hop.host,
                     last.reply.text);
        last = co_await client.open(src.address, src.ehlo, hop, config::TlsPolicy::kNone);
      }
      if (last.ok) break;
      spdlog::info("delivery=connect_failed domain={} host={} address={} stage={} reply=\"{}\"",
                   job->domain, hop.host, hop.address.to_string(), to_string(last.stage),
                   last.reply.code ? last.reply.to_string() : last.reply.text);
    }
    if (!last.ok) {
      // Every next hop failed: the destination is dead for a while and the
      // jobs queued for it are deferred without connecting.
      auto window = std::min<std::chrono::milliseconds>(
          cfg.retry.intervals.empty() ? std::chrono::minutes(1) : cfg.retry.intervals.front(),
          std::chrono::minutes(1));
      {
        std::lock_guard dl(d.mu);
        d.dead_until_ms = wall_ms() + window.count();
        d.dead_reply = last.reply;
        d.dead_stage = bounce_stage(last.stage);
      }
      // A reply (421 at the banner) is the server speaking: it counts for
      // backoff; a refused or timed-out connection does not.
      finish_all(w, from_reply(cls, last.reply, bounce_stage(last.stage), provider), src, provider,
                 last.reply.code != 0);
      co_return false;
    }
    co_return true;
  }

  awaitable<void> deliver(Work& w, Client& client, Destination& d, const Current& cur) {
    const config::Config& cfg = *cur.cfg;
    const bounce::Classifier& cls = *cur.classifier;
    const Source& src = d.source;
    const std::string& provider = d.provider;
    auto& job = w.job;
    if (is_paused(Engine::Pause::kDomain, job->domain) || is_paused(Engine::Pause::kIp, src.ip) ||
        is_paused(Engine::Pause::kPool, src.pool)) {
      finish_all(w, postponed(kPausedDelay, "suspended by the operator"), src, provider);
      co_return;
    }
    {
      std::unique_lock dl(d.mu);
      if (d.dead_until_ms > wall_ms()) {
        auto reply = d.dead_reply;
        auto stage = d.dead_stage;
        dl.unlock();
        finish_all(w, from_reply(cls, reply, stage, provider), src, provider);
        co_return;
      }
    }
    // The envelope: suppressed recipients are not sent to.
    std::vector<size_t> idx;
    std::vector<std::string> rcpts;
    for (size_t i = 0; i < job->rcpts.size(); ++i)
      if (!job->rcpts[i].suppressed) {
        idx.push_back(i);
        rcpts.push_back(job->rcpts[i].address);
      }
    const queue::Message& m = *job->message;
    auto body = queue::Spool::body(store, m.id);
    if (!body || !body->has_value()) {
      protocol::Reply r{
          451, "4.3.0",
          "message body unreadable: " + (body ? std::string("missing") : body.error().message)};
      finish_all(w, from_reply(cls, r, bounce::Stage::kAny, provider), src, provider);
      co_return;
    }
    std::string payload;
    uint64_t size = m.size;
    {
      const dkim::Signer* sg = cur.signer.get();
      const config::ConfigurationSet* set = set_of(cfg, m);
      std::string_view one =
          job->rcpts.size() == 1 ? std::string_view(job->rcpts[0].address) : std::string_view();
      auto rendered = render(cfg, *set, sg, m, one, std::move(**body), wall_ms());
      if (!rendered) {
        dkim_failures.inc();
        spdlog::error("id={} event=render_failed error=\"{}\"", m.id.hex(),
                      rendered.error().message);
        // A local problem: retried like a temporary failure, never sent
        // unsigned unless the operator said so (dkim_failure).
        queue::Outcome o;
        o.fate = queue::Fate::kDeferred;
        o.reply = "451 4.3.0 " + rendered.error().message;
        o.bounce_type = "Transient";
        o.bounce_subtype = "General";
        o.category = "local";
        finish_all(w, o, src, provider);
        co_return;
      }
      if (!rendered->dkim_domain.empty()) count_signed(*sg, rendered->dkim_domain);
      if (rendered->dkim_failed) {
        dkim_failures.inc();
        spdlog::warn("id={} event=sent_unsigned error=\"{}\" (dkim_failure: send_unsigned)",
                     m.id.hex(), rendered->dkim_error);
      }
      size = rendered->message.size();
      payload = protocol::dot_stuff(rendered->message);
    }

    TxResult tx;
    for (int round = 0;; ++round) {
      // A reused connection may have been closed by the server while idle;
      // that shows only when we use it. Then one fresh connection is tried
      // before anything counts as a failure.
      bool reused = client.is_open();
      if (!client.is_open() || client.transactions() >= d.max_per_connection) {
        if (client.is_open()) co_await client.quit();
        reused = false;
        bool connected = co_await connect(w, client, d, cfg, cls);
        if (!connected) co_return;
      }
      if (m.eight_bit && !client.supports_8bitmime()) {
        protocol::Reply r{554, "5.6.3",
                          "message has 8-bit content and " + client.hop().host +
                              " does not announce 8BITMIME; conversion to 7 bit is not supported"};
        finish_all(w, from_reply(cls, r, bounce::Stage::kData, provider), src, provider);
        co_return;
      }
      if (client.max_size() > 0 && size > client.max_size()) {
        protocol::Reply r{552, "5.3.4",
                          fmt::format("message size {} exceeds the {} bytes {} accepts", size,
                                      client.max_size(), client.hop().host)};
        finish_all(w, from_reply(cls, r, bounce::Stage::kMail, provider), src, provider);
        co_return;
      }
      tx = co_await client.send(m.mail_from, rcpts, payload, m.eight_bit, size);
      bool nothing_heard = tx.broken && tx.mail.code == 0;
      if (reused && nothing_heard && round == 0) {
        spdlog::debug("delivery=stale_connection domain={} host={}", job->domain,
                      client.hop().host);
        client.close();
        continue;
      }
      break;
    }

    std::vector<queue::Outcome> outcomes(job->rcpts.size());
    std::string remote_ip = client.hop().address.to_string();
    for (size_t i = 0; i < job->rcpts.size(); ++i)
      if (job->rcpts[i].suppressed) outcomes[i] = suppressed_outcome(job->rcpts[i]);
    for (size_t k = 0; k < idx.size(); ++k) {
      auto& o = outcomes[idx[k]];
      const auto& rr = tx.rcpt[k];
      if (tx.mail.code == 0 || !tx.mail.positive()) {
        o = from_reply(cls, tx.mail, bounce::Stage::kMail, provider);
      } else if (!rr) {
        protocol::Reply lost = tx.data.code == 0 && !tx.data.text.empty() ? tx.data : tx.mail;
        if (lost.positive()) lost = protocol::Reply{0, "", "connection lost before RCPT reply"};
        o = from_reply(cls, lost, bounce::Stage::kRcpt, provider);
      } else if (!rr->positive()) {
        o = from_reply(cls, *rr, bounce::Stage::kRcpt, provider);
      } else if (tx.data.code != 354) {
        auto r = tx.data.code || !tx.data.text.empty()
                     ? tx.data
                     : protocol::Reply{0, "", "connection lost before DATA reply"};
        o = from_reply(cls, r, bounce::Stage::kData, provider);
      } else {
        auto r = tx.final.code || !tx.final.text.empty()
                     ? tx.final
                     : protocol::Reply{0, "", "connection lost after DATA"};
        o = from_reply(cls, r, bounce::Stage::kData, provider);
      }
      o.remote_ip = remote_ip;
      o.remote_host = client.hop().host;
    }
    if (tx.broken) client.close();
    // The server heard MAIL FROM: the unit is spent, and its replies count
    // for backoff.
    bool heard = tx.mail.code != 0;
    finish(w, std::move(outcomes), src, provider, heard, heard);
  }

  void stop() {
    std::vector<std::shared_ptr<Destination>> all;
    {
      std::lock_guard lock(mu);
      stopping = true;
      for (auto& [_, d] : dests) all.push_back(d);
    }
    for (auto& d : all) {
      std::vector<Work> jobs;
      std::list<Waiter> waiters;
      {
        std::lock_guard lock(d->mu);
        Work w;
        while (d->pop(w)) jobs.push_back(std::move(w));
        waiters.swap(d->waiters);
      }
      for (auto& wt : waiters) asio::post(wt.ex, [t = wt.timer] { t->cancel(); });
      for (auto& w : jobs)
        finish_all(w, postponed(kShutdownDelay, "shutting down"), d->source, d->provider);
    }
  }
};

Engine::Engine(asio::io_context& io, store::Store& store, queue::Scheduler& scheduler,
               dns::Resolver& resolver, warmup::Limiter& limiter, const core::Clock& clock,
               std::shared_ptr<const config::Config> cfg,
               std::shared_ptr<const bounce::Classifier> classifier,
               std::shared_ptr<const dkim::Signer> signer)
    : impl_(std::make_shared<Impl>(io, store, scheduler, resolver, limiter, clock, std::move(cfg),
                                   std::move(classifier), std::move(signer))) {}

Engine::~Engine() = default;

void Engine::dispatch(queue::Job job) {
  impl_->dispatch(std::move(job));
}

void Engine::reload(std::shared_ptr<const config::Config> cfg,
                    std::shared_ptr<const bounce::Classifier> classifier,
                    std::shared_ptr<const dkim::Signer> signer) {
  std::lock_guard lock(impl_->mu);
  impl_->cfg = std::move(cfg);
  impl_->classifier = std::move(classifier);
  impl_->signer = std::move(signer);
}

core::Status Engine::set_paused(Pause kind, const std::string& name, bool paused) {
  return impl_->set_paused(kind, name, paused);
}

std::string Engine::provider_of(const std::string& domain) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->domain_provider.find(domain);
  return it == impl_->domain_provider.end() ? std::string() : it->second;
}

core::Result<size_t> Engine::bounce_all(const std::string& domain) {
  return impl_->bounce_all(domain);
}

void Engine::stop() {
  impl_->stop();
}

size_t Engine::connections() const {
  return impl_->connections.load();
}

}  // namespace mta::delivery
