// `mta ctl`: the admin API from the command line (libcurl, blocking). The
// URL comes from --url or from the config's http.listen; the credential
// from --secret, $MTA_API_SECRET, or the config's admin key (--key-id picks
// one; default: the first admin key). Sent as "Authorization: Bearer".
// Human tables by default, the API's JSON with --json.
#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <optional>

#include "mta/app/commands.hpp"
#include "mta/config/config.hpp"

namespace mta::app {
namespace {

using json = nlohmann::json;

struct Response {
  long status = 0;
  std::string body;
  std::string error;  // transport failure
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

struct Client {
  std::string base;    // http://host:port
  std::string secret;  // Bearer

  Response call(const std::string& method, const std::string& path,
                const std::string& body = {}) const {
    Response r;
    CURL* h = curl_easy_init();
    if (!h) {
      r.error = "curl_easy_init failed";
      return r;
    }
    std::string url = base + path;
    std::string auth = "Authorization: Bearer " + secret;
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (method == "POST" || method == "PUT") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
      r.error = std::string(curl_easy_strerror(rc)) + " (" + url + ")";
    else
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return r;
  }
};

// The JSON body of a 200, or nullopt after printing why not.
std::optional<json> ok_json(const Response& r) {
  if (!r.error.empty()) {
    std::cerr << "mta ctl: " << r.error << "\n";
    return std::nullopt;
  }
  json j = json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    std::string msg = r.body;
    if (!j.is_discarded() && j.is_object() && j.contains("message")) {
      msg = j["message"].get<std::string>();
      if (j.contains("__type")) msg = j["__type"].get<std::string>() + ": " + msg;
    }
    std::cerr << "mta ctl: HTTP " << r.status << ": " << msg << "\n";
    return std::nullopt;
  }
  if (j.is_discarded()) {
    std::cerr << "mta ctl: the answer is not JSON: " << r.body << "\n";
    return std::nullopt;
  }
  return j;
}

std::string age(int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + "s";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string iso(double unix_s) {
  auto t = static_cast<time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

template <class T>
T get(const json& j, const char* key, T def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return def;
  }
}

int print(const CtlOptions& o, const Response& r, const std::function<void(const json&)>& human) {
  auto j = ok_json(r);
  if (!j) return 1;
  if (o.json)
    std::cout << j->dump(2) << "\n";
  else
    human(*j);
  return 0;
}

std::optional<Client> client(const CtlOptions& o) {
  Client c;
  c.base = o.url;
  c.secret = o.secret;
  if (c.secret.empty())
    if (const char* env = std::getenv("MTA_API_SECRET")) c.secret = env;
  if (c.base.empty() || c.secret.empty()) {
    if (o.config_path.empty()) {
      std::cerr << "mta ctl: give --config (for http.listen and an admin key) or --url and "
                   "--secret\n";
      return std::nullopt;
    }
    auto loaded = config::load_file(o.config_path);
    if (loaded.error) {
      std::cerr << loaded.error->to_string() << "\n";
      return std::nullopt;
    }
    const auto& http = loaded.config->http;
    if (c.base.empty()) {
      if (!http.listen) {
        std::cerr << "mta ctl: " << o.config_path << " has no http.listen; give --url\n";
        return std::nullopt;
      }
      std::string host = http.listen->host;
      if (host == "0.0.0.0") host = "127.0.0.1";
      if (host == "::") host = "::1";
      if (host.find(':') != std::string::npos) host = "[" + host + "]";
      c.base = "http://" + host + ":" + std::to_string(http.listen->port);
    }
    if (c.secret.empty()) {
      for (const auto& k : http.api_keys)
        if (k.admin && (o.key_id.empty() || k.id == o.key_id)) {
          c.secret = k.secret;
          break;
        }
      if (c.secret.empty()) {
        std::cerr << "mta ctl: " << o.config_path << " has no admin API key"
                  << (o.key_id.empty() ? "" : " with id " + o.key_id)
                  << " (http.api_keys with admin: true); give --secret\n";
        return std::nullopt;
      }
    }
  }
  while (!c.base.empty() && c.base.back() == '/') c.base.pop_back();
  return c;
}

void groups(const char* title, const json& list) {
  if (!list.is_array() || list.empty()) return;
  std::printf("\n%-40s %10s %10s %10s\n", title, "messages", "recipients", "oldest");
  for (const auto& g : list)
    std::printf("%-40s %10llu %10llu %10s\n", get<std::string>(g, "Name", "").c_str(),
                static_cast<unsigned long long>(get<uint64_t>(g, "Messages", 0)),
                static_cast<unsigned long long>(get<uint64_t>(g, "Recipients", 0)),
                age(get<int64_t>(g, "OldestAgeSeconds", 0)).c_str());
}

}  // namespace

int ctl_queue(const CtlOptions& o) {
  auto c = client(o);
  if (!c) return 2;
  return print(o, c->call("GET", "/admin/queue"), [](const json& j) {
    std::printf("%llu message(s), %llu recipient(s) queued; oldest %s\n",
                static_cast<unsigned long long>(get<uint64_t>(j, "Messages", 0)),
                static_cast<unsigned long long>(get<uint64_t>(j, "Recipients", 0)),
                age(get<int64_t>(j, "OldestAgeSeconds", 0)).c_str());
    groups("configuration set", j.value("ByConfigurationSet", json::array()));
    groups("pool", j.value("ByPool", json::array()));
    groups("destination", j.value("ByDestination", json::array()));
    groups("provider", j.value("ByProvider", json::array()));
  });
}

int ctl_suppression(const CtlOptions& o, const std::string& action, const std::string& address,
                    const std::string& reason) {
  auto c = client(o);
  if (!c) return 2;
  const std::string base = "/v2/email/suppression/addresses";
  if (action == "add") {
    json body{{"EmailAddress", address}, {"Reason", reason}};
    return print(o, c->call("PUT", base, body.dump()),
                 [&](const json&) { std::cout << "suppressed " << address << "\n"; });
  }
  if (action == "remove") {
    return print(o, c->call("DELETE", base + "/" + escape(address)),
                 [&](const json&) { std::cout << "removed " << address << "\n"; });
  }
  if (action == "get") {
    return print(o, c->call("GET", base + "/" + escape(address)), [](const json& j) {
      const json& d = j.value("SuppressedDestination", json::object());
      std::printf("%s %s %s\n", get<std::string>(d, "EmailAddress", "").c_str(),
                  get<std::string>(d, "Reason", "").c_str(),
                  iso(get<double>(d, "LastUpdateTime", 0)).c_str());
    });
  }
  // list: every page
  json all = json::array();
  std::string token;
  for (;;) {
    std::string path = base + "?PageSize=1000";
    if (!token.empty()) path += "&NextToken=" + escape(token);
    auto j = ok_json(c->call("GET", path));
    if (!j) return 1;
    for (auto& e : j->value("SuppressedDestinationSummaries", json::array())) all.push_back(e);
    token = get<std::string>(*j, "NextToken", "");
    if (token.empty()) break;
  }
  if (o.json) {
    std::cout << json{{"SuppressedDestinationSummaries", all}}.dump(2) << "\n";
    return 0;
  }
  std::printf("%-40s %-10s %s\n", "address", "reason", "since");
  for (const auto& e : all)
    std::printf("%-40s %-10s %s\n", get<std::string>(e, "EmailAddress", "").c_str(),
                get<std::string>(e, "Reason", "").c_str(),
                iso(get<double>(e, "LastUpdateTime", 0)).c_str());
  std::printf("%zu address(es)\n", all.size());
  return 0;
}

int ctl_ips(const CtlOptions& o, const std::string& pool) {
  auto c = client(o);
  if (!c) return 2;
  std::string path = "/v2/email/dedicated-ips";
  if (!pool.empty()) path += "?PoolName=" + escape(pool);
  return print(o, c->call("GET", path), [](const json& j) {
    std::printf("%-40s %-16s %-12s %5s %5s %10s %10s\n", "ip", "pool", "warm-up", "%", "day",
                "sent", "limit");
    for (const auto& d : j.value("DedicatedIps", json::array()))
      std::printf("%-40s %-16s %-12s %5d %5u %10llu %10llu\n",
                  get<std::string>(d, "Ip", "").c_str(),
                  get<std::string>(d, "PoolName", "").c_str(),
                  get<std::string>(d, "WarmupStatus", "").c_str(),
                  get<int>(d, "WarmupPercentage", 0), get<unsigned>(d, "WarmupDay", 0),
                  static_cast<unsigned long long>(get<uint64_t>(d, "SentToday", 0)),
                  static_cast<unsigned long long>(get<uint64_t>(d, "DailyLimit", 0)));
  });
}

int ctl_suspend(const CtlOptions& o, bool suspend, const std::string& kind,
                const std::string& name) {
  auto c = client(o);
  if (!c) return 2;
  std::string plural = kind == "pool" ? "pools" : kind == "ip" ? "ips" : "destinations";
  std::string verb = suspend ? "suspend" : "resume";
  return print(
      o, c->call("POST", "/admin/" + plural + "/" + escape(name) + "/" + verb), [&](const json& j) {
        std::cout << kind << " " << name
                  << (get<bool>(j, "Suspended", suspend) ? " suspended" : " resumed") << "\n";
      });
}

int ctl_bounce_all(const CtlOptions& o, const std::string& destination) {
  auto c = client(o);
  if (!c) return 2;
  return print(o, c->call("POST", "/admin/destinations/" + escape(destination) + "/bounce-all"),
               [&](const json& j) {
                 std::cout << get<uint64_t>(j, "Bounced", 0) << " recipient(s) at " << destination
                           << " bounced\n";
               });
}

int ctl_events(const CtlOptions& o, const std::string& action, const std::vector<std::string>& ids,
               size_t limit) {
  auto c = client(o);
  if (!c) return 2;
  if (action == "replay") {
    json body{{"Ids", ids}};
    return print(o, c->call("POST", "/admin/events/dead/replay", body.dump()), [](const json& j) {
      std::cout << get<uint64_t>(j, "Replayed", 0) << " event(s) replayed\n";
    });
  }
  return print(
      o, c->call("GET", "/admin/events/dead?Limit=" + std::to_string(limit)), [](const json& j) {
        const json& list = j.value("DeadLetters", json::array());
        std::printf("%-34s %-12s %-14s %-34s %-20s %s\n", "id", "destination", "event", "message",
                    "failed", "last error");
        for (const auto& d : list)
          std::printf("%-34s %-12s %-14s %-34s %-20s %s\n", get<std::string>(d, "Id", "").c_str(),
                      get<std::string>(d, "Destination", "").c_str(),
                      get<std::string>(d, "EventType", "").c_str(),
                      get<std::string>(d, "MessageId", "").c_str(),
                      get<std::string>(d, "FailedAt", "").c_str(),
                      get<std::string>(d, "LastError", "").c_str());
        std::printf("%zu dead letter(s)\n", list.size());
      });
}

}  // namespace mta::app
