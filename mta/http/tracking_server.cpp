#include "mta/http/tracking_server.hpp"

#include <spdlog/spdlog.h>
#include <restinio/all.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "mta/core/text.hpp"
#include "mta/events/outbox.hpp"
#include "mta/feedback/record.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/store/store.hpp"
#include "mta/tracking/machine.hpp"
#include "mta/tracking/token.hpp"

namespace mta::http {
namespace {

using Traits = restinio::traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t>;
using HttpServer = restinio::http_server_t<Traits>;
using Steady = std::chrono::steady_clock;

// GIF89a, 1x1, one transparent pixel: 43 bytes.
constexpr unsigned char kPixel[] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b};
static_assert(sizeof kPixel == 43);
const std::string_view kPixelView(reinterpret_cast<const char*>(kPixel), sizeof kPixel);

// How long a HEAD counts as "shortly before" a GET of the same token, and
// how many are remembered at most (oldest forgotten first).
constexpr auto kHeadWindow = std::chrono::seconds(30);
constexpr size_t kHeadMemory = 65536;
// User agents are stored in events; a longer one is cut.
constexpr size_t kMaxUserAgent = 1024;

enum class Endpoint { kClick, kOpen, kUnsubscribe, kHealth, kOther };

const char* endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::kClick:
      return "click";
    case Endpoint::kOpen:
      return "open";
    case Endpoint::kUnsubscribe:
      return "unsubscribe";
    case Endpoint::kHealth:
      return "healthz";
    case Endpoint::kOther:
      return "other";
  }
  return "other";
}

int64_t wall_ms(const core::Clock& clock) {
  return clock.now_ms();
}

// The Location header for a signed URL, or nullopt when it is not an
// http(s) URL. Defence in depth (the delivery side only signs http and https
// links): tab, CR and LF are dropped, as browsers drop them from URLs (WHATWG
// URL parsing), so no header can be injected; other control bytes are
// percent-encoded.
std::optional<std::string> safe_location(std::string_view url) {
  auto starts = [&](std::string_view scheme) {
    if (url.size() < scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      if (c != scheme[i]) return false;
    }
    return true;
  };
  if (!starts("http://") && !starts("https://")) return std::nullopt;
  std::string out;
  out.reserve(url.size());
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\t' || c == '\r' || c == '\n') continue;
    if (u < 0x20 || u == 0x7f) {
      static const char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
      continue;
    }
    out += c;
  }
  return out;
}

// RFC 8058: the POST carries List-Unsubscribe=One-Click, form-urlencoded
// (what mailbox providers send and our page's form posts) or as a
// multipart/form-data field.
bool is_one_click_body(std::string_view body) {
  if (body.find("List-Unsubscribe=One-Click") != std::string_view::npos) return true;
  return body.find("name=\"List-Unsubscribe\"") != std::string_view::npos &&
         body.find("One-Click") != std::string_view::npos;
}

// The metric series of one configuration set (or "other").
struct SetSeries {
  metrics::Counter opens[2], clicks[2];  // [machine]
  metrics::Counter unsubscribes;
};

SetSeries series_for(const std::string& set) {
  SetSeries s;
  for (int m = 0; m < 2; ++m) {
    metrics::Labels l{{"configuration_set", set}, {"machine", m ? "true" : "false"}};
    s.opens[m] = metrics::counter("mta_tracking_opens_total",
                                  "Opens (pixel loads) recorded, by set and machine verdict", l);
    s.clicks[m] = metrics::counter("mta_tracking_clicks_total",
                                   "Clicks (redirects) recorded, by set and machine verdict", l);
  }
  s.unsubscribes = metrics::counter("mta_unsubscribes_total",
                                    "One-click unsubscribes recorded, by configuration set",
                                    {{"configuration_set", set}});
  return s;
}

// Everything a request reads of the configuration, swapped as a whole by
// reconfigure().
struct State {
  TrackingOptions o;
  std::map<std::string, SetSeries, std::less<>> sets;
  SetSeries other;

  const SetSeries& series(std::string_view set) const {
    auto it = sets.find(set);
    return it == sets.end() ? other : it->second;
  }
};

std::shared_ptr<const State> make_state(TrackingOptions o) {
  auto s = std::make_shared<State>();
  for (const auto& name : o.configuration_sets)
    if (name != "other") s->sets.emplace(name, series_for(name));
  s->other = series_for("other");
  s->o = std::move(o);
  return s;
}

// Tokens seen with HEAD lately, by hash: bounded in time and count.
class HeadMemory {
 public:
  void remember(std::string_view token, Steady::time_point now) {
    uint64_t h = std::hash<std::string_view>{}(token);
    std::lock_guard lock(mu_);
    expire(now);
    if (order_.size() >= kHeadMemory) pop_oldest();
    seen_[h] = now;
    order_.emplace_back(h, now);
  }
  bool seen(std::string_view token, Steady::time_point now) {
    uint64_t h = std::hash<std::string_view>{}(token);
    std::lock_guard lock(mu_);
    expire(now);
    return seen_.count(h) != 0;
  }

 private:
  void pop_oldest() {
    auto [h, t] = order_.front();
    order_.pop_front();
    auto it = seen_.find(h);
    if (it != seen_.end() && it->second == t) seen_.erase(it);
  }
  void expire(Steady::time_point now) {
    while (!order_.empty() && now - order_.front().second > kHeadWindow) pop_oldest();
  }
  std::mutex mu_;
  std::unordered_map<uint64_t, Steady::time_point> seen_;
  std::deque<std::pair<uint64_t, Steady::time_point>> order_;
};

// The message an event describes: the feedback record when it is still
// there, else what the token carries.
queue::Message message_for(const store::Store& st, const tracking::Claims& c) {
  auto rec = feedback::find_record(st, c.message_id);
  if (rec && rec->has_value()) return std::move(**rec);
  if (!rec)
    spdlog::warn("tracking=record_lookup_failed id={} error=\"{}\"", c.message_id.hex(),
                 rec.error().message);
  queue::Message m;
  m.id = c.message_id;
  m.received_ms = static_cast<int64_t>(c.message_id.micros() / 1000);
  m.recipients = {c.recipient};
  m.configuration_set = c.configuration_set;
  m.list_name = c.list_name;
  m.list_topic = c.list_topic;
  return m;
}

}  // namespace

struct TrackingServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, store::Store& store, const core::Clock& clock, TrackingOptions o)
      : io(io), store(store), clock(clock), listen(o.listen), state(make_state(std::move(o))) {}

  asio::io_context& io;
  store::Store& store;
  const core::Clock& clock;
  core::HostPort listen;
  std::mutex state_mu;
  std::shared_ptr<const State> state;
  HeadMemory heads;
  std::unique_ptr<HttpServer> server;
  bool open = false;

  // Unsubscribes being committed, by scope and address, with the requests
  // that asked for the same one meanwhile (answered with it).
  std::mutex unsub_mu;
  std::unordered_map<std::string, std::vector<restinio::request_handle_t>> unsub_in_flight;

  metrics::Counter invalid = metrics::counter(
      "mta_tracking_invalid_tokens_total",
      "Tracking requests whose token did not verify (bad signature, wrong kind, malformed)");

  std::shared_ptr<const State> current() {
    std::lock_guard lock(state_mu);
    return state;
  }

  // ---- answers -------------------------------------------------------------

  using Response = restinio::response_builder_t<restinio::user_controlled_output_t>;

  static Response response(const restinio::request_handle_t& req,
                           restinio::http_status_line_t status) {
    return req->create_response<restinio::user_controlled_output_t>(std::move(status));
  }

  // Sends `r` with `body`, or with only its Content-Length when the
  // request is a HEAD (a body there would corrupt a kept-alive connection).
  static void finish(const restinio::request_handle_t& req, Response& r, std::string body) {
    r.set_content_length(body.size());
    if (req->header().method() != restinio::http_method_head()) r.set_body(std::move(body));
    r.done();
  }

  static void text(const restinio::request_handle_t& req, restinio::http_status_line_t status,
                   std::string body) {
    auto r = response(req, std::move(status));
    r.append_header(restinio::http_field::content_type, "text/plain; charset=utf-8")
        .append_header(restinio::http_field::cache_control, "no-store");
    finish(req, r, std::move(body));
  }

  static void not_found(const restinio::request_handle_t& req) {
    text(req, restinio::status_not_found(), "not found\n");
  }

  static void method_not_allowed(const restinio::request_handle_t& req, const char* allow) {
    auto r = response(req, restinio::status_method_not_allowed());
    r.append_header(restinio::http_field::content_type, "text/plain; charset=utf-8")
        .append_header(restinio::http_field::allow, allow);
    finish(req, r, "method not allowed\n");
  }

  static void html(const restinio::request_handle_t& req, restinio::http_status_line_t status,
                   std::string body) {
    auto r = response(req, std::move(status));
    r.append_header(restinio::http_field::content_type, "text/html; charset=utf-8")
        .append_header(restinio::http_field::cache_control, "no-store")
        .append_header("X-Robots-Tag", "noindex");
    finish(req, r, std::move(body));
  }

  static std::string page(std::string_view title, std::string_view body_html) {
    std::string p =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        "<meta name=\"robots\" content=\"noindex\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>";
    p += title;
    p +=
        "</title></head>\n<body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">\n";
    p += body_html;
    p += "\n</body></html>\n";
    return p;
  }

  // ---- dispatch ------------------------------------------------------------

  std::string client_ip(const restinio::request_handle_t& req) {
    auto peer = req->remote_endpoint().address();
    std::string ip = peer.to_string();
    if (!peer.is_loopback()) {
      // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
      if (auto a = core::IpAddress::parse(ip)) ip = a->unmapped().to_string();
      if (auto a = core::IpAddress::parse(ip); !a || !a->is_loopback()) return ip;
    }
    auto xff = req->header().opt_value_of("X-Forwarded-For");
    if (!xff) return ip;
    std::string_view first(xff->data(), xff->size());
    first = first.substr(0, first.find(','));
    while (!first.empty() && (first.front() == ' ' || first.front() == '\t'))
      first.remove_prefix(1);
    while (!first.empty() && (first.back() == ' ' || first.back() == '\t')) first.remove_suffix(1);
    if (auto a = core::IpAddress::parse(first)) return a->unmapped().to_string();
    return ip;
  }

  static std::string user_agent(const restinio::request_handle_t& req) {
    auto ua = req->header().opt_value_of(restinio::http_field::user_agent);
    if (!ua) return {};
    std::string s(ua->data(), std::min(ua->size(), kMaxUserAgent));
    return s;
  }

  restinio::request_handling_status_t handle(restinio::request_handle_t req) {
    const auto start = Steady::now();
    const auto& h = req->header();
    const auto method = h.method();
    const std::string_view path = h.path();
    const bool get = method == restinio::http_method_get();
    const bool head = method == restinio::http_method_head();
    const bool post = method == restinio::http_method_post();

    Endpoint ep = Endpoint::kOther;
    std::string_view token;
    if (path == "/healthz") {
      ep = Endpoint::kHealth;
    } else if (path.size() > 3 && path.substr(0, 3) == "/c/") {
      ep = Endpoint::kClick;
      token = path.substr(3);
    } else if (path.size() > 3 && path.substr(0, 3) == "/o/") {
      ep = Endpoint::kOpen;
      token = path.substr(3);
      if (token.size() < 5 || token.substr(token.size() - 4) != ".gif") {
        ep = Endpoint::kOther;
      } else {
        token.remove_suffix(4);
      }
    } else if (path.size() > 3 && path.substr(0, 3) == "/u/") {
      ep = Endpoint::kUnsubscribe;
      token = path.substr(3);
    }

    switch (ep) {
      case Endpoint::kOther:
        not_found(req);
        break;
      case Endpoint::kHealth:
        if (!get && !head) {
          method_not_allowed(req, "GET, HEAD");
          break;
        }
        text(req, restinio::status_ok(), "ok\n");
        break;
      case Endpoint::kClick:
      case Endpoint::kOpen:
        if (!get && !head) {
          method_not_allowed(req, "GET, HEAD");
          break;
        }
        track(req, ep, token, head);
        break;
      case Endpoint::kUnsubscribe:
        if (!get && !head && !post) {
          method_not_allowed(req, "GET, HEAD, POST");
          break;
        }
        unsubscribe(req, token, post);
        break;
    }
    latency(ep).observe(std::chrono::duration<double>(Steady::now() - start).count());
    return restinio::request_accepted();
  }

  static const metrics::Histogram& latency(Endpoint ep) {
    static const metrics::Histogram hs[] = {
        metrics::histogram("mta_tracking_request_seconds",
                           "Time to handle a tracking request (answer and event queued)",
                           metrics::latency_buckets(),
                           {{"endpoint", endpoint_name(Endpoint::kClick)}}),
        metrics::histogram("mta_tracking_request_seconds",
                           "Time to handle a tracking request (answer and event queued)",
                           metrics::latency_buckets(),
                           {{"endpoint", endpoint_name(Endpoint::kOpen)}}),
        metrics::histogram("mta_tracking_request_seconds",
                           "Time to handle a tracking request (answer and event queued)",
                           metrics::latency_buckets(),
                           {{"endpoint", endpoint_name(Endpoint::kUnsubscribe)}}),
        metrics::histogram("mta_tracking_request_seconds",
                           "Time to handle a tracking request (answer and event queued)",
                           metrics::latency_buckets(),
                           {{"endpoint", endpoint_name(Endpoint::kHealth)}}),
        metrics::histogram("mta_tracking_request_seconds",
                           "Time to handle a tracking request (answer and event queued)",
                           metrics::latency_buckets(),
                           {{"endpoint", endpoint_name(Endpoint::kOther)}}),
    };
    return hs[static_cast<int>(ep)];
  }

  // The claims of `token` when it verifies and is of `kind`; otherwise
  // counts it and answers 404.
  std::optional<tracking::Claims> claims_of(const restinio::request_handle_t& req, const State& st,
                                            std::string_view token, tracking::Kind kind) {
    auto c = tracking::verify(token, st.o.secrets);
    if (!c || c->kind != kind) {
      invalid.inc();
      not_found(req);
      return std::nullopt;
    }
    return c;
  }

  // ---- opens and clicks ----------------------------------------------------

  void track(const restinio::request_handle_t& req, Endpoint ep, std::string_view token,
             bool head) {
    auto st = current();
    const bool click = ep == Endpoint::kClick;
    auto c = claims_of(req, *st, token, click ? tracking::Kind::kClick : tracking::Kind::kOpen);
    if (!c) return;
    std::optional<std::string> location;
    if (click && !(location = safe_location(c->url))) {
      invalid.inc();
      spdlog::warn("tracking=bad_signed_url id={} (not http or https; no redirect)",
                   c->message_id.hex());
      not_found(req);
      return;
    }
    const auto now = Steady::now();

    if (click) {
      auto r = response(req, restinio::status_found());
      r.append_header(restinio::http_field::location, *location)
          .append_header(restinio::http_field::cache_control, "no-store");
      finish(req, r, {});
    } else {
      auto r = response(req, restinio::status_ok());
      r.append_header(restinio::http_field::content_type, "image/gif")
          .append_header(restinio::http_field::cache_control, "no-cache, no-store, must-revalidate")
          .append_header(restinio::http_field::pragma, "no-cache")
          .append_header(restinio::http_field::expires, "0");
      finish(req, r, std::string(kPixelView));
    }
    if (head) {
      heads.remember(token, now);
      return;
    }

    // Answered; now the event. The feedback record is one RocksDB point
    // get. The commit is unsynced: an open or click lost to a power cut
    // (not to a crash of the process: it is in the page cache) is not worth
    // an fsync per request; the unsubscribe below is.
    const int64_t now_ms = wall_ms(clock);
    tracking::Request mr;
    mr.kind = c->kind;
    const std::string ua = user_agent(req);
    const std::string ip = client_ip(req);
    mr.user_agent = ua;
    mr.ip = ip;
    mr.seconds_since_send = c->sent_ms > 0 ? (now_ms - c->sent_ms) / 1000 : INT64_MAX / 1000;
    if (now_ms < c->sent_ms) mr.seconds_since_send = -1;
    mr.head_seen = heads.seen(token, now);
    tracking::Verdict v = st->o.rules ? st->o.rules->classify(mr) : tracking::Verdict{};

    queue::Message m = message_for(store, *c);
    store::Batch b;
    if (click) {
      events::Click e;
      e.recipient = c->recipient;
      e.now_ms = now_ms;
      e.ip_address = ip;
      e.user_agent = ua;
      e.link = c->url;
      e.link_tags = c->link_tags;
      e.link_index = c->link_index;
      e.machine = v.machine;
      e.machine_reason = v.reason;
      events::add_click(b, m, e);
      st->series(c->configuration_set).clicks[v.machine].inc();
    } else {
      events::Open e;
      e.recipient = c->recipient;
      e.now_ms = now_ms;
      e.ip_address = ip;
      e.user_agent = ua;
      e.machine = v.machine;
      e.machine_reason = v.reason;
      events::add_open(b, m, e);
      st->series(c->configuration_set).opens[v.machine].inc();
    }
    spdlog::debug("tracking={} id={} rcpt={} ip={} machine={} reason={}",
                  tracking::to_string(c->kind), c->message_id.hex(), c->recipient, ip, v.machine,
                  v.reason);
    store.commit(std::move(b), nullptr, false);
  }

  // ---- unsubscribe ---------------------------------------------------------

  void unsubscribe(const restinio::request_handle_t& req, std::string_view token, bool post) {
    auto st = current();
    auto c = claims_of(req, *st, token, tracking::Kind::kUnsubscribe);
    if (!c) return;
    queue::Message scope_msg;
    scope_msg.configuration_set = c->configuration_set;
    scope_msg.list_name = c->list_name;
    scope_msg.list_topic = c->list_topic;
    const queue::ListScope scope = queue::list_scope_of(scope_msg);
    std::string what =
        scope.kind == queue::ListScope::Kind::kContactList
            ? (scope.topic.empty() ? "the list " + scope.name
                                   : "the topic " + scope.topic + " of " + scope.name)
            : "mail of this kind (" + scope.name + ")";

    if (!post) {
      // Never unsubscribe on GET: scanners and previews fetch links.
      html(req, restinio::status_ok(),
           page("Unsubscribe",
                "<h1>Unsubscribe</h1>\n<p>Stop sending " + core::escape_markup(what) + " to <b>" +
                    core::escape_markup(c->recipient) +
                    "</b>?</p>\n<form method=\"post\">"
                    "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                    "<button type=\"submit\">Unsubscribe</button></form>"));
      return;
    }
    if (!is_one_click_body(req->body())) {
      text(req, restinio::status_bad_request(),
           "expected the body List-Unsubscribe=One-Click (RFC 8058)\n");
      return;
    }

    const std::string key = std::string(1, static_cast<char>(scope.kind)) + scope.name + '\0' +
                            scope.topic + '\0' + core::ascii_lower(c->recipient);
    const std::string done_page =
        page("Unsubscribed", "<h1>Unsubscribed</h1>\n<p>" + core::escape_markup(c->recipient) +
                                 " will no longer receive " + core::escape_markup(what) + ".</p>");
    {
      std::lock_guard lock(unsub_mu);
      if (auto it = unsub_in_flight.find(key); it != unsub_in_flight.end()) {
        it->second.push_back(req);  // answered when the first one is stored
        return;
      }
      auto found = queue::find_unsubscribe(store, scope_msg, c->recipient);
      if (!found) {
        spdlog::error("tracking=unsubscribe_lookup_failed id={} error=\"{}\"", c->message_id.hex(),
                      found.error().message);
        html(req, restinio::status_service_unavailable(),
             page("Try again", "<p>Please try again in a minute.</p>"));
        return;
      }
      if (found->has_value()) {  // already unsubscribed: no second event
        html(req, restinio::status_ok(), done_page);
        return;
      }
      unsub_in_flight[key];
    }

    const int64_t now_ms = wall_ms(clock);
    const std::string ip = client_ip(req);
    const std::string ua = user_agent(req);
    queue::SuppressionEntry entry;
    entry.address = core::ascii_lower(c->recipient);
    entry.reason = "UNSUBSCRIBE";
    entry.created_ms = now_ms;
    entry.message_id = c->message_id.hex();
    entry.detail = "one-click unsubscribe from " + ip;
    events::Subscription ev;
    ev.recipient = c->recipient;
    ev.now_ms = now_ms;
    ev.contact_list = scope.name;
    ev.topic = scope.topic;
    ev.configuration_set_scope = scope.kind == queue::ListScope::Kind::kConfigurationSet;
    ev.ip_address = ip;
    ev.user_agent = ua;
    queue::Message m = message_for(store, *c);
    store::Batch b;
    queue::put_unsubscribe(b, scope, entry);
    events::add_subscription(b, m, ev);
    const metrics::Counter counter = st->series(c->configuration_set).unsubscribes;
    const std::string id = c->message_id.hex(), rcpt = c->recipient;
    // Synced: the answer promises the recipient will not get this mail again.
    store.commit(
        std::move(b),
        [self = shared_from_this(), req, key, done_page, counter, id, rcpt, ip](core::Status s) {
          std::vector<restinio::request_handle_t> waiting;
          {
            std::lock_guard lock(self->unsub_mu);
            auto it = self->unsub_in_flight.find(key);
            if (it != self->unsub_in_flight.end()) {
              waiting = std::move(it->second);
              self->unsub_in_flight.erase(it);
            }
          }
          waiting.push_back(req);
          if (!s.ok()) {
            spdlog::error("tracking=unsubscribe_failed id={} rcpt={} error=\"{}\"", id, rcpt,
                          s.error().message);
            for (auto& r : waiting)
              html(r, restinio::status_service_unavailable(),
                   page("Try again", "<p>Please try again in a minute.</p>"));
            return;
          }
          counter.inc();
          spdlog::info("tracking=unsubscribed id={} rcpt={} client={}", id, rcpt, ip);
          for (auto& r : waiting) html(r, restinio::status_ok(), done_page);
        },
        true);
  }
};

TrackingServer::TrackingServer(asio::io_context& io, store::Store& store, const core::Clock& clock,
                               TrackingOptions o)
    : impl_(std::make_shared<Impl>(io, store, clock, std::move(o))) {}

TrackingServer::~TrackingServer() {
  stop();
}

core::Status TrackingServer::start() {
  const auto listen = impl_->listen;
  try {
    std::weak_ptr<Impl> weak = impl_;
    impl_->server =
        std::make_unique<HttpServer>(restinio::external_io_context(impl_->io), [&](auto& settings) {
          settings.address(listen.host)
              .port(listen.port)
              .max_pipelined_requests(16)
              .read_next_http_message_timelimit(std::chrono::seconds(30))
              .write_http_response_timelimit(std::chrono::seconds(30))
              .handle_request_timeout(std::chrono::seconds(30))
              // A token is at most 8 KB; an unsubscribe form is a few bytes.
              .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                            .max_url_size(tracking::kMaxTokenChars + 64)
                                            .max_field_name_size(256)
                                            .max_field_value_size(16 * 1024)
                                            .max_field_count(100)
                                            .max_body_size(64 * 1024))
              .request_handler([weak](restinio::request_handle_t req) {
                auto self = weak.lock();
                if (!self) return restinio::request_rejected();
                return self->handle(std::move(req));
              });
        });
    impl_->server->open_sync();
    impl_->open = true;
  } catch (const std::exception& e) {
    return core::make_error("cannot listen on " + listen.to_string() +
                            " for tracking: " + e.what());
  }
  spdlog::info("tracking=listening address={} base_url={}", listen.to_string(),
               impl_->current()->o.base_url);
  return core::Ok{};
}

void TrackingServer::stop() {
  if (!impl_->open) return;
  impl_->open = false;
  std::promise<void> done;
  impl_->server->close_async([&done] { done.set_value(); },
                             [&done](std::exception_ptr) { done.set_value(); });
  done.get_future().wait();
}

void TrackingServer::reconfigure(TrackingOptions o) {
  o.listen = impl_->listen;
  auto next = make_state(std::move(o));
  std::lock_guard lock(impl_->state_mu);
  impl_->state = std::move(next);
}

}  // namespace mta::http
