#include "mta/api/server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <nlohmann/json.hpp>
#include <restinio/all.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "mta/api/auth.hpp"
#include "mta/api/form.hpp"
#include "mta/api/idempotency.hpp"
#include "mta/api/queue_summary.hpp"
#include "mta/api/ses.hpp"
#include "mta/config/config.hpp"
#include "mta/core/id.hpp"
#include "mta/intake/intake.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/protocol/command.hpp"
#include "mta/protocol/message.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"

namespace mta::api {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using Traits = restinio::traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t>;
using HttpServer = restinio::http_server_t<Traits>;

constexpr std::string_view kSuppressionPath = "/v2/email/suppression/addresses";
constexpr std::string_view kDedicatedIpsPath = "/v2/email/dedicated-ips";

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A request id in UUID form, as SES gives one with every answer.
std::string request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xfff,
                     0x8000 | ((b >> 48) & 0x3fff), b & 0xffffffffffffULL);
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string iso8601(int64_t ms) {
  auto t = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "2026-11-27T10:00:00Z", "2026-11-27T10:00:00.123+00:00", "2026-11-27",
// or Unix seconds (as botocore may send); → Unix ms.
std::optional<int64_t> parse_time(const std::string& s) {
  if (s.empty()) return std::nullopt;
  if (s.find_first_not_of("0123456789.") == std::string::npos) {
    try {
      return static_cast<int64_t>(std::stod(s) * 1000);
    } catch (...) {
      return std::nullopt;
    }
  }
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) {
    end = strptime(s.c_str(), "%Y-%m-%d", &tm);
    if (!end || *end) return std::nullopt;
  } else {
    if (*end == '.')
      while (*++end >= '0' && *end <= '9') {
      }
    std::string_view rest(end);
    if (!(rest.empty() || rest == "Z" || rest == "+00:00" || rest == "+0000")) return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// 1..max, digits only.
std::optional<size_t> parse_count(std::string_view s, size_t max) {
  size_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || n == 0 || n > max)
    return std::nullopt;
  return n;
}

metrics::Counter requests_metric(const std::string& operation, int status) {
  return metrics::counter("mta_http_requests_total", "HTTP API requests by operation and status",
                          {{"operation", operation}, {"status", std::to_string(status)}});
}

void reject_metric(const std::string& reason) {
  metrics::counter("mta_http_rejections_total",
                   "HTTP API requests refused, by reason (auth_failed, bad_request, "
                   "message_too_big, too_many_recipients, unknown_configuration_set, "
                   "forbidden_configuration_set, not_admin, idempotency_busy, storage_error)",
                   {{"reason", reason}})
      .inc();
}

const metrics::Histogram& send_latency() {
  static metrics::Histogram h =
      metrics::histogram("mta_http_send_seconds", "From request to reply of accepted HTTP sends",
                         metrics::latency_buckets());
  return h;
}

// Which reason counter an ApiError from validation goes to.
std::string reason_of(const ApiError& e) {
  if (e.message.find("(max_message_bytes)") != std::string::npos) return "message_too_big";
  if (e.message.find("(max_recipients)") != std::string::npos) return "too_many_recipients";
  return "bad_request";
}

struct Call {
  restinio::request_handle_t req;
  std::shared_ptr<const config::Config> cfg;
  const config::ApiKey* key = nullptr;  // into *cfg
  std::string request_id = api::request_id();
  Clock::time_point start = Clock::now();
  std::string client_ip;
  Api api = Api::kV2;
  std::string operation = "unknown";
  std::shared_ptr<void> in_flight;  // released with the call, after its reply
};
using CallPtr = std::shared_ptr<Call>;

void respond(const Call& c, int status, const char* content_type, std::string body,
             const std::string& error_type = {}) {
  auto r = c.req->create_response(restinio::http_status_line_t{
      restinio::http_status_code_t{static_cast<uint16_t>(status)}, reason_phrase(status)});
  r.append_header(restinio::http_field::content_type, content_type);
  r.append_header("x-amzn-RequestId", c.request_id);
  if (!error_type.empty()) r.append_header("x-amzn-ErrorType", error_type);
  r.set_body(std::move(body));
  r.done();
  requests_metric(c.operation, status).inc();
}

void reply_json(const Call& c, int status, const json& j) {
  respond(c, status, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void reply_error(const Call& c, const ApiError& e) {
  if (c.api == Api::kV1)
    respond(c, e.status, "text/xml", v1_error(e, c.request_id));
  else
    respond(c, e.status, "application/json", v2_error(e), e.code);
  spdlog::debug("http request={} client={} operation={} status={} code={} error=\"{}\"",
                c.request_id, c.client_ip, c.operation, e.status, e.code, e.message);
}

void reply_error(const Call& c, const AdminError& e) {
  reply_error(c, ApiError{e.status, e.code, e.message});
}

ApiError not_found(std::string message) {
  return ApiError{404, "NotFoundException", std::move(message)};
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, store::Store& store, queue::Spool& spool,
       std::shared_ptr<const config::Config> cfg, AdminHooks hooks)
      : io(io),
        store(store),
        spool(spool),
        cfg(std::move(cfg)),
        hooks(std::move(hooks)),
        idem(store) {}

  asio::io_context& io;
  store::Store& store;
  queue::Spool& spool;
  std::mutex cfg_mu;
  std::shared_ptr<const config::Config> cfg;
  AdminHooks hooks;
  Idempotency idem;
  asio::thread_pool blocking{2};
  std::atomic<bool> ready{false};
  // Shutdown: new requests get 503 while sends already taken finish.
  std::atomic<bool> draining{false};
  std::atomic<int> sends_in_flight{0};
  std::unique_ptr<HttpServer> server;
  bool open = false;

  std::shared_ptr<const config::Config> config() {
    std::lock_guard lock(cfg_mu);
    return cfg;
  }

  template <class F>
  void run_blocking(F&& f) {
    asio::post(blocking, std::forward<F>(f));
  }

  // ---- dispatch ------------------------------------------------------------

  restinio::request_handling_status_t handle(restinio::request_handle_t req) {
    auto c = std::make_shared<Call>();
    c->req = req;
    c->cfg = config();
    c->client_ip = req->remote_endpoint().address().to_string();
    const auto& h = req->header();
    const std::string path(h.path());
    const auto method = h.method();

    if (path == "/healthz" || path == "/readyz") {
      c->operation = path.substr(1);
      bool ok = path == "/healthz" || ready.load();
      reply_json(*c, ok ? 200 : 503, json{{"Status", ok ? "ok" : "not ready"}});
      return restinio::request_accepted();
    }
    c->api = path == "/" ? Api::kV1 : Api::kV2;
    if (draining) {
      reply_error(*c, ApiError{503, "ServiceUnavailable", "The server is shutting down"});
      return restinio::request_accepted();
    }

    sigv4::Request sr;
    sr.method = method.c_str();
    sr.path = h.path();
    sr.query = h.query();
    h.for_each_field([&](const restinio::http_header_field_t& f) {
      sr.headers.emplace_back(f.name(), f.value());
    });
    sr.body = req->body();
    auto who = authenticate(c->cfg->http, sr, now_ms() / 1000);
    if (auto* err = std::get_if<ApiError>(&who)) {
      reject_metric("auth_failed");
      spdlog::info("http request={} event=auth_failed client={} code={}", c->request_id,
                   c->client_ip, err->code);
      reply_error(*c, *err);
      return restinio::request_accepted();
    }
    c->key = std::get<const config::ApiKey*>(who);

    auto wrong_method = [&] {
      reply_error(*c, ApiError{405, "MethodNotAllowed",
                               std::string(method.c_str()) + " is not allowed on " + path});
      return restinio::request_accepted();
    };

    if (path == "/") {
      if (method != restinio::http_method_post()) return wrong_method();
      auto form = parse_form(req->body());
      if (!form) {
        c->operation = "v1";
        reject_metric("bad_request");
        reply_error(*c, bad_request(Api::kV1, "the form body has a bad %-escape"));
        return restinio::request_accepted();
      }
      const std::string* action = find_param(*form, "Action");
      c->operation =
          action && (*action == "SendEmail" || *action == "SendRawEmail") ? "v1_" + *action : "v1";
      auto parsed = parse_v1_send(*form);
      send(c, std::move(parsed));
      return restinio::request_accepted();
    }
    if (path == "/v2/email/outbound-emails") {
      c->operation = "v2_SendEmail";
      if (method != restinio::http_method_post()) return wrong_method();
      send(c, parse_v2_send(req->body()));
      return restinio::request_accepted();
    }
    bool admin_path = path.rfind(kSuppressionPath, 0) == 0 ||
                      path.rfind(kDedicatedIpsPath, 0) == 0 || path.rfind("/admin/", 0) == 0;
    if (!admin_path) {
      reply_error(*c, not_found("No such operation: " + std::string(method.c_str()) + " " + path));
      return restinio::request_accepted();
    }
    if (!c->key->admin) {
      c->operation = "admin";
      reject_metric("not_admin");
      reply_error(*c, ApiError{403, "AccessDeniedException",
                               "API key " + c->key->id + " is not an admin key (admin: true)"});
      return restinio::request_accepted();
    }
    admin(c, path, method);
    return restinio::request_accepted();
  }

  // ---- sending -------------------------------------------------------------

  // Counts a send from its start to its reply (Server::stop waits for them).
  struct InFlight {
    std::atomic<int>& n;
    explicit InFlight(std::atomic<int>& n) : n(n) { ++n; }
    ~InFlight() { --n; }
  };

  void send(const CallPtr& c, std::variant<SendRequest, ApiError> parsed) {
    c->in_flight = std::make_shared<InFlight>(sends_in_flight);
    if (auto* err = std::get_if<ApiError>(&parsed)) {
      reject_metric(reason_of(*err));
      reply_error(*c, *err);
      return;
    }
    auto& r = std::get<SendRequest>(parsed);
    const config::Config& cfg = *c->cfg;

    std::string idem_key;
    auto idem_header = c->req->header().opt_value_of("Idempotency-Key");
    if (idem_header && r.idempotency_key && *r.idempotency_key != *idem_header) {
      reject_metric("bad_request");
      reply_error(*c,
                  bad_request(r.api, "IdempotencyKey: differs from the Idempotency-Key header"));
      return;
    }
    if (idem_header || r.idempotency_key) {
      std::string v(idem_header ? std::string(*idem_header) : *r.idempotency_key);
      bool ok = !v.empty() && v.size() <= 256;
      for (char ch : v)
        if (ch < 0x21 || ch > 0x7e) ok = false;
      if (!ok) {
        reject_metric("bad_request");
        reply_error(*c, bad_request(r.api,
                                    "Idempotency-Key: 1 to 256 printable ASCII "
                                    "characters without spaces required"));
        return;
      }
      idem_key = c->key->id + '\n' + v;
    }

    auto id = core::next_message_id();
    const int64_t now = now_ms();
    std::string message_id_header = "<" + id.hex() + "@" + cfg.hostname + ">";
    auto composed = compose(r, Limits{cfg.smtp.max_recipients, cfg.smtp.max_message_bytes},
                            message_id_header, now / 1000, "=_mta_" + id.hex());
    if (auto* err = std::get_if<ApiError>(&composed)) {
      reject_metric(reason_of(*err));
      reply_error(*c, *err);
      return;
    }
    auto& m = std::get<Composed>(composed);

    // A key restricted to some sets that names none sends with its first,
    // unless the raw message names one in its headers (checked below).
    std::optional<std::string> set = r.configuration_set;
    if (!set && !c->key->configuration_sets.empty()) {
      std::string_view head(m.message.data(), protocol::header_block_size(m.message));
      if (!protocol::header_value(head, "X-SES-CONFIGURATION-SET") &&
          !protocol::header_value(head, "X-Configuration-Set"))
        set = c->key->configuration_sets.front();
    }

    intake::Submission sub;
    sub.mail_from = std::move(m.mail_from);
    sub.recipients = std::move(m.recipients);
    sub.body = std::move(m.message);
    sub.client_ip = c->client_ip;
    sub.protocol = "http";
    sub.eight_bit = m.eight_bit;
    sub.configuration_set = set;
    sub.tags = std::move(r.tags);
    sub.list_management = std::move(r.list_management);
    auto prepared = intake::prepare(cfg, std::move(sub), id, now);
    if (auto* rej = std::get_if<intake::Rejected>(&prepared)) {
      reject_metric(rej->reason);
      if (rej->reason == "unknown_configuration_set") {
        std::string name = set.value_or("?");
        if (c->api == Api::kV2)
          reply_error(
              *c, not_found("ConfigurationSetName: configuration set " + name + " does not exist"));
        else
          reply_error(
              *c, ApiError{400, "ConfigurationSetDoesNotExist",
                           "ConfigurationSetName: configuration set " + name + " does not exist"});
      } else {
        reply_error(*c, bad_request(c->api, r.content_field + ": " + rej->reply.text));
      }
      return;
    }
    auto& p = std::get<intake::Prepared>(prepared);
    if (!may_use_set(*c->key, p.message.configuration_set)) {
      reject_metric("forbidden_configuration_set");
      reply_error(
          *c, ApiError{403, c->api == Api::kV2 ? "AccessDeniedException" : "AccessDenied",
                       "ConfigurationSetName: API key " + c->key->id +
                           " may not send with configuration set " + p.message.configuration_set});
      return;
    }
    p.message.auth_user = c->key->id;

    if (idem_key.empty()) {
      accept(c, std::move(p), {}, now, r.action);
      return;
    }
    run_blocking([self = shared_from_this(), c, p = std::move(p), idem_key, now,
                  action = r.action]() mutable {
      auto claim = self->idem.claim(idem_key, now);
      if (!claim) {
        reject_metric("storage_error");
        reply_error(
            *c, ApiError{503, "ServiceUnavailable", "Temporary storage failure, try again later"});
        return;
      }
      switch (claim->state) {
        case Idempotency::State::kDone:
          spdlog::info("http request={} id={} event=idempotent_repeat client={} key={}",
                       c->request_id, claim->message_id, c->client_ip, c->key->id);
          reply_sent(*c, action, claim->message_id);
          return;
        case Idempotency::State::kBusy:
          reject_metric("idempotency_busy");
          reply_error(*c, ApiError{409, "ConflictException",
                                   "Idempotency-Key: a request with this key is still in "
                                   "progress; retry it"});
          return;
        case Idempotency::State::kNew:
          self->accept(c, std::move(p), idem_key, now, action);
          return;
      }
    });
  }

  static void reply_sent(const Call& c, const std::string& action, const std::string& id) {
    if (c.api == Api::kV1)
      respond(c, 200, "text/xml", v1_send_result(action, id, c.request_id));
    else
      reply_json(c, 200, json{{"MessageId", id}});
  }

  void accept(const CallPtr& c, intake::Prepared p, std::string idem_key, int64_t now,
              std::string action) {
    std::string set = p.message.configuration_set;
    std::string hex = p.message.id.hex();
    size_t nrcpt = p.message.recipients.size();
    size_t size = p.body.size();
    queue::Spool::BatchHook extra;
    if (!idem_key.empty())
      extra = [idem_key, now](const queue::Message& m, store::Batch& b) {
        Idempotency::record(b, idem_key, m.id.hex(), now);
      };
    spool.accept(
        std::move(p.message), std::move(p.body),
        [self = shared_from_this(), c, set, hex, nrcpt, size, idem_key,
         action = std::move(action)](core::Status s) {
          if (!idem_key.empty()) self->idem.release(idem_key);
          if (!s) {
            reject_metric("storage_error");
            spdlog::error("http request={} event=spool_failed client={} error=\"{}\"",
                          c->request_id, c->client_ip, s.error().message);
            reply_error(*c, ApiError{503, "ServiceUnavailable",
                                     "Temporary storage failure, try again later"});
            return;
          }
          metrics::counter("mta_messages_received_total", "Messages accepted into the spool",
                           {{"configuration_set", set}, {"protocol", "http"}})
              .inc();
          send_latency().observe(std::chrono::duration<double>(Clock::now() - c->start).count());
          spdlog::info(
              "http request={} id={} event=accepted key={} nrcpt={} size={} set={} "
              "client={}",
              c->request_id, hex, c->key->id, nrcpt, size, set, c->client_ip);
          reply_sent(*c, action, hex);
        },
        extra);
  }

  // ---- admin ---------------------------------------------------------------

  void admin(const CallPtr& c, const std::string& path, restinio::http_method_id_t method) {
    auto query = parse_form(c->req->header().query());
    if (!query) {
      reply_error(*c, bad_request(Api::kV2, "the query string has a bad %-escape"));
      return;
    }
    const bool get = method == restinio::http_method_get();
    const bool put = method == restinio::http_method_put();
    const bool post = method == restinio::http_method_post();
    const bool del = method == restinio::http_method_delete();
    auto wrong = [&] {
      reply_error(*c, ApiError{405, "MethodNotAllowed",
                               std::string(method.c_str()) + " is not allowed on " + path});
    };

    // /v2/email/suppression/addresses[/{email}]
    if (path.rfind(kSuppressionPath, 0) == 0) {
      std::string_view rest = std::string_view(path).substr(kSuppressionPath.size());
      if (rest.empty() || rest == "/") {
        if (get) return suppression_list(c, *query);
        if (put) return suppression_put(c);
        return wrong();
      }
      if (rest.front() != '/' || rest.find('/', 1) != std::string_view::npos)
        return reply_error(*c, not_found("No such resource: " + path));
      auto email = percent_decode(rest.substr(1), false);
      if (!email || !protocol::is_valid_mailbox(*email))
        return reply_error(*c, bad_request(Api::kV2, "EmailAddress: not a valid email address"));
      if (get) return suppression_get(c, *email);
      if (del) return suppression_delete(c, *email);
      return wrong();
    }
    if (path == kDedicatedIpsPath || path.rfind(std::string(kDedicatedIpsPath) + "/", 0) == 0) {
      if (!get) return wrong();
      std::string ip;
      if (path.size() > kDedicatedIpsPath.size() + 1) {
        auto d = percent_decode(std::string_view(path).substr(kDedicatedIpsPath.size() + 1), false);
        if (!d) return reply_error(*c, bad_request(Api::kV2, "Ip: bad %-escape"));
        ip = *d;
      }
      const std::string* pool = find_param(*query, "PoolName");
      return dedicated_ips(c, pool ? *pool : std::string(), ip);
    }
    if (path == "/admin/queue") {
      c->operation = "admin_queue";
      if (!get) return wrong();
      // Without a hook, the summary the spool alone can give.
      std::function<AdminResult<QueueSummary>()> fn = hooks.queue_summary;
      if (!fn)
        fn = [self = shared_from_this(), cfg = c->cfg] { return spool_summary(self->store, *cfg); };
      return hook_call(c, "queue summary", fn, [](const QueueSummary& s) {
        auto groups = [](const std::vector<QueueGroup>& v) {
          json a = json::array();
          for (const auto& g : v)
            a.push_back({{"Name", g.name},
                         {"Messages", g.messages},
                         {"Recipients", g.recipients},
                         {"OldestAgeSeconds", g.oldest_ms ? (now_ms() - g.oldest_ms) / 1000 : 0}});
          return a;
        };
        return json{{"Messages", s.messages},
                    {"Recipients", s.recipients},
                    {"OldestAgeSeconds", s.oldest_ms ? (now_ms() - s.oldest_ms) / 1000 : 0},
                    {"ByConfigurationSet", groups(s.by_configuration_set)},
                    {"ByPool", groups(s.by_pool)},
                    {"ByDestination", groups(s.by_destination)},
                    {"ByProvider", groups(s.by_provider)}};
      });
    }
    if (path == "/admin/events/dead") {
      c->operation = "admin_dead_letters";
      if (!get) return wrong();
      size_t limit = 100;
      if (const std::string* l = find_param(*query, "Limit")) {
        auto n = parse_count(*l, 10000);
        if (!n) return reply_error(*c, bad_request(Api::kV2, "Limit: a number from 1 to 10000"));
        limit = *n;
      }
      auto fn = [h = hooks.dead_letters, limit] { return h(limit); };
      return hook_call(c, "dead-letter list", hooks.dead_letters ? std::function(fn) : nullptr,
                       [](const std::vector<DeadLetter>& v) {
                         json a = json::array();
                         for (const auto& d : v)
                           a.push_back({{"Id", d.id},
                                        {"Destination", d.destination},
                                        {"EventType", d.event_type},
                                        {"MessageId", d.message_id},
                                        {"FailedAt", iso8601(d.failed_ms)},
                                        {"Attempts", d.attempts},
                                        {"LastError", d.last_error}});
                         return json{{"DeadLetters", a}};
                       });
    }
    if (path == "/admin/events/dead/replay") {
      c->operation = "admin_replay";
      if (!post) return wrong();
      std::vector<std::string> ids;
      const std::string& body = c->req->body();
      if (!body.empty()) {
        json j = json::parse(body, nullptr, false);
        const json* list = j.is_object() && j.contains("Ids") ? &j["Ids"] : nullptr;
        if (j.is_discarded() || !j.is_object() || (list && !list->is_array()))
          return reply_error(*c, bad_request(Api::kV2, "Ids: the body must be {\"Ids\": [...]}"));
        if (list)
          for (const auto& id : *list) {
            if (!id.is_string())
              return reply_error(*c, bad_request(Api::kV2, "Ids: strings required"));
            ids.push_back(id.get<std::string>());
          }
      }
      auto fn = [h = hooks.replay_dead_letters, ids] { return h(ids); };
      return hook_call(c, "dead-letter replay",
                       hooks.replay_dead_letters ? std::function(fn) : nullptr, [](uint64_t n) {
                         return json{{"Replayed", n}};
                       });
    }
    // /admin/{pools|ips|destinations}/{name}/{suspend|resume|bounce-all}
    if (path.rfind("/admin/", 0) == 0) {
      std::string_view rest = std::string_view(path).substr(7);
      size_t a = rest.find('/');
      size_t b = a == std::string_view::npos ? a : rest.find('/', a + 1);
      if (b != std::string_view::npos && rest.find('/', b + 1) == std::string_view::npos) {
        std::string_view kind = rest.substr(0, a);
        auto name = percent_decode(rest.substr(a + 1, b - a - 1), false);
        std::string verb(rest.substr(b + 1));
        std::optional<SuspendKind> k;
        if (kind == "pools") k = SuspendKind::kPool;
        if (kind == "ips") k = SuspendKind::kIp;
        if (kind == "destinations") k = SuspendKind::kDestination;
        if (k && name && !name->empty()) {
          if (!post) return wrong();
          if (verb == "suspend" || verb == "resume") {
            c->operation = "admin_" + verb;
            bool on = verb == "suspend";
            auto fn = [h = hooks.suspend, kk = *k, n = *name, on] { return h(kk, n, on); };
            std::string kind_s(kind);
            return hook_call(c, "suspend/resume", hooks.suspend ? std::function(fn) : nullptr,
                             [kind_s, n = *name](bool suspended) {
                               return json{{"Type", kind_s}, {"Name", n}, {"Suspended", suspended}};
                             });
          }
          if (verb == "bounce-all" && *k == SuspendKind::kDestination) {
            c->operation = "admin_bounce_all";
            auto fn = [h = hooks.bounce_all, n = *name] { return h(n); };
            return hook_call(c, "bounce-all", hooks.bounce_all ? std::function(fn) : nullptr,
                             [](uint64_t n) {
                               return json{{"Bounced", n}};
                             });
          }
        }
      }
    }
    reply_error(*c, not_found("No such resource: " + path));
  }

  // Runs a hook on the worker pool and answers with render(value), the
  // hook's error, or 501 when the daemon has not connected it.
  template <class T, class Render>
  void hook_call(const CallPtr& c, const char* what, std::function<AdminResult<T>()> fn,
                 Render render) {
    if (!fn) {
      reply_error(*c, ApiError{501, "NotImplemented",
                               std::string(what) + " is not available: this daemon has no "
                                                   "provider for it yet"});
      return;
    }
    run_blocking([c, fn = std::move(fn), render = std::move(render)] {
      auto r = fn();
      if (auto* e = std::get_if<AdminError>(&r)) return reply_error(*c, *e);
      reply_json(*c, 200, render(std::get<T>(r)));
    });
  }

  void dedicated_ips(const CallPtr& c, const std::string& pool, const std::string& ip) {
    c->operation = ip.empty() ? "admin_dedicated_ips" : "admin_dedicated_ip";
    auto to_json = [](const DedicatedIp& d) {
      return json{{"Ip", d.ip},
                  {"WarmupStatus", d.warmup_status},
                  {"WarmupPercentage", d.warmup_percentage},
                  {"PoolName", d.pool},
                  {"WarmupDay", d.warmup_day},
                  {"SentToday", d.sent_today},
                  {"DailyLimit", d.limit_today}};
    };
    std::function<AdminResult<std::vector<DedicatedIp>>()> fn;
    if (hooks.dedicated_ips) fn = [h = hooks.dedicated_ips, pool] { return h(pool); };
    if (ip.empty())
      return hook_call(c, "dedicated IPs", fn, [to_json](const std::vector<DedicatedIp>& v) {
        json a = json::array();
        for (const auto& d : v) a.push_back(to_json(d));
        return json{{"DedicatedIps", a}};
      });
    if (!fn)
      return hook_call(c, "dedicated IPs", fn,
                       [](const std::vector<DedicatedIp>&) { return json{}; });
    run_blocking([c, fn, ip, to_json] {
      auto r = fn();
      if (auto* e = std::get_if<AdminError>(&r)) return reply_error(*c, *e);
      for (const auto& d : std::get<std::vector<DedicatedIp>>(r))
        if (d.ip == ip) return reply_json(*c, 200, json{{"DedicatedIp", to_json(d)}});
      reply_error(*c, not_found("No dedicated IP " + ip));
    });
  }

  static json suppression_json(const queue::SuppressionEntry& e, bool full) {
    json j{{"EmailAddress", e.address},
           {"Reason", e.reason},
           {"LastUpdateTime", static_cast<double>(e.created_ms) / 1000.0}};
    if (full) {
      json attrs{{"MessageId", e.message_id}, {"FeedbackId", ""}};
      j["Attributes"] = attrs;
      if (!e.detail.empty()) j["Detail"] = e.detail;
    }
    return j;
  }

  void suppression_get(const CallPtr& c, const std::string& email) {
    c->operation = "suppression_get";
    run_blocking([self = shared_from_this(), c, email] {
      auto f = queue::find_suppression(self->store, email);
      if (!f) return reply_error(*c, ApiError{500, "InternalFailure", f.error().message});
      if (!f->has_value())
        return reply_error(
            *c, not_found("Email address " + email + " does not exist on your suppression list."));
      reply_json(*c, 200, json{{"SuppressedDestination", suppression_json(**f, true)}});
    });
  }

  void suppression_delete(const CallPtr& c, const std::string& email) {
    c->operation = "suppression_delete";
    run_blocking([self = shared_from_this(), c, email] {
      auto f = queue::find_suppression(self->store, email);
      if (!f) return reply_error(*c, ApiError{500, "InternalFailure", f.error().message});
      if (!f->has_value())
        return reply_error(
            *c, not_found("Email address " + email + " does not exist on your suppression list."));
      store::Batch b;
      queue::delete_suppression(b, email);
      self->store.commit(std::move(b), [c, email](core::Status s) {
        if (!s) return reply_error(*c, ApiError{503, "ServiceUnavailable", s.error().message});
        spdlog::info("http request={} event=unsuppressed address={} key={}", c->request_id, email,
                     c->key->id);
        reply_json(*c, 200, json::object());
      });
    });
  }

  void suppression_put(const CallPtr& c) {
    c->operation = "suppression_put";
    json j = json::parse(c->req->body(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return reply_error(*c, bad_request(Api::kV2, "the body is not a JSON object"));
    auto email_it = j.find("EmailAddress");
    if (email_it == j.end() || !email_it->is_string())
      return reply_error(*c, bad_request(Api::kV2, "EmailAddress: is required"));
    std::string email = *email_it;
    if (!protocol::is_valid_mailbox(email))
      return reply_error(
          *c, bad_request(Api::kV2, "EmailAddress: not a valid email address: \"" + email + "\""));
    auto reason_it = j.find("Reason");
    if (reason_it == j.end() || !reason_it->is_string())
      return reply_error(*c, bad_request(Api::kV2, "Reason: is required (BOUNCE or COMPLAINT)"));
    std::string reason = *reason_it;
    if (reason != "BOUNCE" && reason != "COMPLAINT" && reason != "MANUAL")
      return reply_error(*c, bad_request(Api::kV2, "Reason: BOUNCE or COMPLAINT (or MANUAL)"));
    store::Batch b;
    queue::put_suppression(
        b, {email, reason, now_ms(), "", "added through the admin API by key " + c->key->id});
    store.commit(std::move(b), [c, email, reason](core::Status s) {
      if (!s) return reply_error(*c, ApiError{503, "ServiceUnavailable", s.error().message});
      spdlog::info("http request={} event=suppressed address={} reason={} key={}", c->request_id,
                   email, reason, c->key->id);
      reply_json(*c, 200, json::object());
    });
  }

  void suppression_list(const CallPtr& c, const Params& query) {
    c->operation = "suppression_list";
    std::vector<std::string> reasons;
    std::optional<int64_t> start, end;
    size_t page = 100;
    std::string after;
    for (const auto& [k, v] : query) {
      if (k == "Reason" || k == "Reasons") {
        reasons.push_back(v);
      } else if (k == "StartDate" || k == "EndDate") {
        auto t = parse_time(v);
        if (!t) return reply_error(*c, bad_request(Api::kV2, k + ": not a date: \"" + v + "\""));
        (k == "StartDate" ? start : end) = t;
      } else if (k == "PageSize") {
        auto n = parse_count(v, 1000);
        if (!n) return reply_error(*c, bad_request(Api::kV2, "PageSize: a number from 1 to 1000"));
        page = *n;
      } else if (k == "NextToken") {
        after = v;
      }
    }
    run_blocking([self = shared_from_this(), c, reasons, start, end, page, after] {
      json list = json::array();
      std::string last;
      bool more = false;
      auto s = queue::list_suppressions(self->store, [&](const queue::SuppressionEntry& e) {
        if (!after.empty() && e.address <= after) return true;
        if (!reasons.empty() &&
            std::find(reasons.begin(), reasons.end(), e.reason) == reasons.end())
          return true;
        if (start && e.created_ms < *start) return true;
        if (end && e.created_ms > *end) return true;
        if (list.size() == page) {
          more = true;
          return false;
        }
        list.push_back(suppression_json(e, false));
        last = e.address;
        return true;
      });
      if (!s) return reply_error(*c, ApiError{500, "InternalFailure", s.error().message});
      json j{{"SuppressedDestinationSummaries", list}};
      if (more) j["NextToken"] = last;
      reply_json(*c, 200, j);
    });
  }
};

Server::Server(asio::io_context& io, store::Store& store, queue::Spool& spool,
               std::shared_ptr<const config::Config> cfg, AdminHooks hooks)
    : impl_(std::make_shared<Impl>(io, store, spool, std::move(cfg), std::move(hooks))) {}

Server::~Server() {
  stop();
  impl_->blocking.join();
}

core::Status Server::start() {
  auto cfg = impl_->config();
  if (!cfg->http.listen) return core::make_error("http.listen is not set");
  const auto listen = *cfg->http.listen;
  // Raw messages arrive base64-encoded (4/3), and form-encoded on top in
  // the v1 API; beyond this the connection is closed without an answer,
  // below it an oversized message gets a 400 naming max_message_bytes.
  const uint64_t max_body = cfg->smtp.max_message_bytes / 2 * 3 + (1u << 20);
  try {
    std::weak_ptr<Impl> weak = impl_;
    impl_->server =
        std::make_unique<HttpServer>(restinio::external_io_context(impl_->io), [&](auto& settings) {
          settings.address(listen.host)
              .port(listen.port)
              .max_pipelined_requests(16)
              .read_next_http_message_timelimit(std::chrono::minutes(1))
              .write_http_response_timelimit(std::chrono::minutes(1))
              .handle_request_timeout(std::chrono::minutes(2))
              .incoming_http_msg_limits(
                  restinio::incoming_http_msg_limits_t{}.max_body_size(max_body))
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
                            " for the HTTP API: " + e.what());
  }
  spdlog::info("http=listening address={} keys={}", listen.to_string(), cfg->http.api_keys.size());
  return core::Ok{};
}

void Server::stop() {
  if (!impl_->open) return;
  impl_->ready = false;
  impl_->draining = true;
  // Sends already taken are answered (their commit is under way) before
  // the connections close.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool waited = false;
  while (impl_->sends_in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    waited = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Let the last replies reach their sockets.
  if (waited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  impl_->open = false;
  std::promise<void> done;
  impl_->server->close_async([&done] { done.set_value(); },
                             [&done](std::exception_ptr) { done.set_value(); });
  done.get_future().wait();
}

void Server::reload(std::shared_ptr<const config::Config> cfg) {
  std::lock_guard lock(impl_->cfg_mu);
  impl_->cfg = std::move(cfg);
}

void Server::set_ready(bool ready) {
  impl_->ready = ready;
}

void Server::trim_idempotency() {
  auto n = impl_->idem.trim(now_ms() - kIdempotencyTtlMs);
  if (!n)
    spdlog::error("http=idempotency_trim_failed error=\"{}\"", n.error().message);
  else if (*n > 0)
    spdlog::info("http=idempotency_trimmed count={}", *n);
}

}  // namespace mta::api
