#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "mta/config/config.hpp"

using namespace mta::config;
using namespace std::chrono_literals;

namespace {

// The smallest valid file: everything else takes its default.
const std::string kMinimal = R"(spool_dir: /tmp/spool
smtp:
  listeners:
    - listen: "127.0.0.1:2525"
ip_pools:
  - name: main
    ips:
      - address: 192.0.2.1
configuration_sets:
  - name: main
    ip_pool: main
)";

struct ErrorCase {
  std::string yaml;
  int line;
  int col;
  std::string message;  // a substring of the message
};

void check_error(const ErrorCase& c) {
  INFO("yaml:\n", c.yaml);
  auto r = load_string(c.yaml, "test.yaml");
  REQUIRE_FALSE(r.config);
  REQUIRE(r.error);
  INFO("got: ", r.error->to_string());
  INFO("want: test.yaml:", c.line, ":", c.col, ": ...", c.message, "...");
  CHECK(r.error->file == "test.yaml");
  CHECK(r.error->line == c.line);
  CHECK(r.error->col == c.col);
  CHECK(r.error->message.find(c.message) != std::string::npos);
}

Config load_ok(const std::string& yaml) {
  auto r = load_string(yaml, "test.yaml");
  INFO("error: ", r.error ? r.error->to_string() : "");
  REQUIRE(r.config);
  return *r.config;
}

// A valid file around an smtp section: `body` starts at line 3, indented by 2.
std::string with_smtp_body(const std::string& body) {
  return "spool_dir: /tmp/spool\n"  // 1
         "smtp:\n"                  // 2
         + body +                   // 3...
         "ip_pools:\n"
         "  - name: main\n"
         "    ips: [{ address: 192.0.2.1 }]\n"
         "configuration_sets: [{ name: main, ip_pool: main }]\n";
}

// The same with one listener on lines 3-4; `extra` starts at line 5.
std::string with_smtp(const std::string& extra) {
  return with_smtp_body(
      "  listeners:\n"
      "    - listen: \"127.0.0.1:25\"\n" +
      extra);
}

// A file that exists for the duration of a test.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& name, const std::string& content = "x\n")
      : path(std::filesystem::temp_directory_path() /
             ("mta_config_test_" + std::to_string(getpid()) + "_" + name)) {
    std::ofstream(path) << content;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

}  // namespace

TEST_SUITE("config") {
  TEST_CASE("a minimal config loads with the documented defaults") {
    Config c = load_ok(kMinimal);
    char host[256] = {};
    REQUIRE(gethostname(host, sizeof host - 1) == 0);
    CHECK(c.path == "test.yaml");
    CHECK(c.hostname == host);
    CHECK(c.spool_dir == "/tmp/spool");
    CHECK(c.log_level == "info");

    REQUIRE(c.smtp.listeners.size() == 1);
    CHECK(c.smtp.listeners[0].listen.to_string() == "127.0.0.1:2525");
    CHECK_FALSE(c.smtp.listeners[0].starttls);
    CHECK_FALSE(c.smtp.listeners[0].require_auth);
    for (const auto* nets : {&c.smtp.relay_networks, &c.smtp.plaintext_auth_networks}) {
      REQUIRE(nets->size() == 2);
      CHECK((*nets)[0].to_string() == "127.0.0.0/8");
      CHECK((*nets)[1].to_string() == "::1/128");
    }
    CHECK(c.smtp.users.empty());
    CHECK(c.smtp.max_message_bytes == 41943040);
    CHECK(c.smtp.max_recipients == 50);
    CHECK(c.smtp.max_connections == 1000);
    CHECK(c.smtp.max_connections_per_ip == 50);
    CHECK(c.smtp.max_command_line == 512);
    CHECK(c.smtp.max_errors == 10);
    CHECK(c.smtp.command_timeout == 5min);
    CHECK(c.smtp.data_timeout == 10min);

    CHECK_FALSE(c.http.listen);
    CHECK(c.http.api_keys.empty());
    CHECK_FALSE(c.metrics.listen);

    REQUIRE(c.ip_pools.size() == 1);
    REQUIRE(c.ip_pools[0].ips.size() == 1);
    CHECK(c.ip_pools[0].ips[0].address.to_string() == "192.0.2.1");
    CHECK(c.ip_pools[0].ips[0].ehlo == c.hostname);
    REQUIRE(c.configuration_sets.size() == 1);
    CHECK(c.configuration_sets[0].priority == Priority::kNormal);
    CHECK(c.default_configuration_set == "main");
    CHECK(c.find_set("main") == &c.configuration_sets[0]);
    CHECK(c.find_pool("main") == &c.ip_pools[0]);
    CHECK(c.find_set("Main") == nullptr);
    CHECK(c.find_user("anyone") == nullptr);
  }

  TEST_CASE("every key is read into the structs") {
    TempFile cert("cert.pem"), key("key.pem");
    Config c = load_ok(
        "hostname: mx.example.com\n"
        "spool_dir: var/spool\n"
        "log_level: debug\n"
        "smtp:\n"
        "  listeners:\n"
        "    - listen: \"[::1]:587\"\n"
        "      starttls: { cert: " +
        cert.path.string() + ", key: " + key.path.string() +
        " }\n"
        "      require_auth: yes\n"
        "  relay_networks: []\n"
        "  plaintext_auth_networks: [10.1.2.3]\n"
        "  users: [{ name: u1, password: p1, configuration_set: bulk }]\n"
        "  max_message_bytes: 2147483648\n"
        "  max_recipients: 100000\n"
        "  max_connections: 7\n"
        "  max_connections_per_ip: 3\n"
        "  max_command_line: 65536\n"
        "  max_errors: 1\n"
        "  command_timeout: 1s\n"
        "  data_timeout: 1h\n"
        "http:\n"
        "  listen: \"127.0.0.1:8025\"\n"
        "  api_keys: [{ id: AK1, secret: s1 }, { id: AK2, secret: s2, admin: true,\n"
        "               configuration_sets: [tx, bulk] }]\n"
        "metrics: { listen: \"127.0.0.1:9025\" }\n"
        "ip_pools:\n"
        "  - name: p\n"
        "    ips:\n"
        "      - { address: 192.0.2.1, ehlo: o1.example.com }\n"
        "      - { address: \"2001:db8::1\" }\n"
        "configuration_sets:\n"
        "  - { name: tx, ip_pool: p, priority: high }\n"
        "  - { name: bulk, ip_pool: p, priority: bulk }\n"
        "default_configuration_set: bulk\n");
    CHECK(c.hostname == "mx.example.com");
    CHECK(c.spool_dir == "var/spool");
    CHECK(c.log_level == "debug");
    const auto& l = c.smtp.listeners.at(0);
    CHECK(l.listen.to_string() == "[::1]:587");
    REQUIRE(l.starttls);
    CHECK(l.starttls->cert == cert.path.string());
    CHECK(l.starttls->key == key.path.string());
    CHECK(l.require_auth);
    CHECK(c.smtp.relay_networks.empty());
    REQUIRE(c.smtp.plaintext_auth_networks.size() == 1);
    CHECK(c.smtp.plaintext_auth_networks[0].to_string() == "10.1.2.3/32");
    const SmtpUser* u = c.find_user("u1");
    REQUIRE(u);
    CHECK(u->password == "p1");
    CHECK(u->configuration_set == "bulk");
    CHECK(c.smtp.max_message_bytes == 2147483648u);
    CHECK(c.smtp.max_recipients == 100000);
    CHECK(c.smtp.max_connections == 7);
    CHECK(c.smtp.max_connections_per_ip == 3);
    CHECK(c.smtp.max_command_line == 65536);
    CHECK(c.smtp.max_errors == 1);
    CHECK(c.smtp.command_timeout == 1s);
    CHECK(c.smtp.data_timeout == 1h);
    REQUIRE(c.http.listen);
    CHECK(c.http.listen->to_string() == "127.0.0.1:8025");
    REQUIRE(c.http.api_keys.size() == 2);
    CHECK(c.http.api_keys[1].id == "AK2");
    CHECK(c.http.api_keys[1].secret == "s2");
    CHECK_FALSE(c.http.api_keys[0].admin);
    CHECK(c.http.api_keys[0].configuration_sets.empty());
    CHECK(c.http.api_keys[1].admin);
    CHECK(c.http.api_keys[1].configuration_sets == std::vector<std::string>{"tx", "bulk"});
    REQUIRE(c.metrics.listen);
    CHECK(c.metrics.listen->port == 9025);
    const IpPool* p = c.find_pool("p");
    REQUIRE(p);
    REQUIRE(p->ips.size() == 2);
    CHECK(p->ips[0].ehlo == "o1.example.com");
    CHECK(p->ips[1].address.to_string() == "2001:db8::1");
    CHECK(p->ips[1].ehlo == "mx.example.com");
    CHECK(c.find_set("tx")->priority == Priority::kHigh);
    CHECK(c.find_set("bulk")->priority == Priority::kBulk);
    CHECK(c.default_configuration_set == "bulk");
  }

  TEST_CASE("the shipped config/mta.yaml and config/dev.yaml load cleanly") {
    // mta.yaml keeps its starttls example commented out: the certificate
    // files it names do not exist on a build machine.
    for (const char* name : {"/config/mta.yaml", "/config/dev.yaml"}) {
      std::string path = std::string(MTA_SOURCE_DIR) + name;
      INFO("file: ", path);
      auto r = load_file(path);
      INFO("error: ", r.error ? r.error->to_string() : "");
      REQUIRE(r.config);
      CHECK(r.config->path == path);
    }
    Config dev = *load_file(std::string(MTA_SOURCE_DIR) + "/config/dev.yaml").config;
    CHECK(dev.hostname == "mta.dev.test");
    CHECK(dev.spool_dir == "var/spool");
    CHECK(dev.smtp.listeners.at(0).listen.to_string() == "127.0.0.1:2525");
    CHECK(dev.metrics.listen->to_string() == "127.0.0.1:9025");
    CHECK(dev.ip_pools.at(0).ips.at(0).ehlo == "mta.dev.test");
    CHECK(dev.default_configuration_set == "default");
  }

  TEST_CASE("errors print as FILE:LINE:COL: message") {
    CHECK(Error{"a.yaml", 3, 7, "boom"}.to_string() == "a.yaml:3:7: boom");
    CHECK(Error{"a.yaml", 0, 0, "cannot open: x"}.to_string() == "a.yaml: cannot open: x");
  }

  TEST_CASE("a YAML syntax error is reported where the parser stopped") {
    check_error(
        {"spool_dir: /x\n"
         "smtp:\n"
         "  listeners: []\n"
         "   max_recipients: 5\n",
         4, 4, "invalid YAML: end of map not found"});
    check_error({"spool_dir: /x\nsmtp: { listeners: [\n", 3, 1, "invalid YAML: end of"});
  }

  TEST_CASE("an unknown top-level key is an error at the key") {
    check_error({kMinimal + "trackin: { listen: \"0.0.0.0:8080\" }\n", 12, 1,
                 "unknown key \"trackin\" at the top level (expected one of: hostname,"});
  }

  TEST_CASE("an unknown nested key is an error at the key") {
    check_error({with_smtp("      lisen: \"127.0.0.1:26\"\n"), 5, 7,
                 "unknown key \"lisen\" in smtp.listeners[0] (expected one of: listen, starttls, "
                 "require_auth)"});
    check_error({with_smtp("  max_recipent: 5\n"), 5, 3, "unknown key \"max_recipent\" in smtp"});
    // A key written twice would otherwise silently take the first value.
    check_error({with_smtp("  max_errors: 5\n  max_errors: 6\n"), 6, 3,
                 "duplicate key \"max_errors\" in smtp"});
  }

  TEST_CASE("a value of the wrong type is an error at the value") {
    ErrorCase cases[] = {
        {kMinimal + "hostname: [a, b]\n", 12, 11, "hostname: expected a string, got a list"},
        {kMinimal + "hostname:\n", 12, 1, "hostname: expected a string, got nothing"},
        {kMinimal + "metrics: \"127.0.0.1:9025\"\n", 12, 10,
         "metrics: expected a map, got \"127.0.0.1:9025\""},
        {with_smtp("  users: { name: a }\n"), 5, 10, "smtp.users: expected a list, got a map"},
        {with_smtp("  max_errors: { n: 1 }\n"), 5, 15,
         "smtp.max_errors: expected an integer from 1 to 1000, got a map"},
        {"- spool_dir: /x\n", 1, 1, "expected a map of settings, got a list"},
    };
    for (const auto& c : cases) check_error(c);
  }

  TEST_CASE("an integer out of range or malformed is an error") {
    for (const char* v :
         {"0", "100001", "abc", "12abc", "1.5", "-1", "+5", "1e3", "0x10", "\"\""}) {
      INFO("max_recipients: ", std::string(v));
      check_error({with_smtp(std::string("  max_recipients: ") + v + "\n"), 5, 19,
                   "smtp.max_recipients: expected an integer from 1 to 100000, got "});
    }
    check_error({with_smtp("  max_recipients: abc\n"), 5, 19,
                 "smtp.max_recipients: expected an integer from 1 to 100000, got \"abc\""});
    check_error({with_smtp("  max_message_bytes: 2147483649\n"), 5, 22,
                 "smtp.max_message_bytes: expected an integer from 1024 to 2147483648"});
    check_error({with_smtp("  max_command_line: 99999999999999999999999\n"), 5, 21,
                 "smtp.max_command_line: expected an integer from 512 to 65536"});
  }

  TEST_CASE("a malformed or out-of-range duration is an error") {
    check_error({with_smtp("  command_timeout: 300\n"), 5, 20,
                 "smtp.command_timeout: expected a duration from 1s to 1h like \"30s\" or \"5m\", "
                 "got \"300\" (the unit is required: ms, s, m, h or d)"});
    for (const char* v :
         {"5 m", "-5s", "5min", "m", "1.5s", "0s", "999ms", "61m", "2h", "99999999999999999999d"}) {
      INFO("data_timeout: ", std::string(v));
      check_error({with_smtp(std::string("  data_timeout: ") + v + "\n"), 5, 17,
                   "smtp.data_timeout: expected a duration from 1s to 1h"});
    }
  }

  TEST_CASE("a bool other than true/false/yes/no is an error") {
    for (const char* v : {"on", "off", "y", "n", "True", "1", "[]"}) {
      INFO("require_auth: ", std::string(v));
      check_error({with_smtp(std::string("      require_auth: ") + v + "\n"), 5, 21,
                   "smtp.listeners[0].require_auth: expected true or false (or yes/no), got "});
    }
  }

  TEST_CASE("a missing required key is an error at the map that lacks it") {
    check_error(
        {"# comment\n"
         "smtp:\n"
         "  listeners: [{ listen: \"127.0.0.1:25\" }]\n",
         2, 1, "missing required key \"spool_dir\" at the top level"});
    check_error({with_smtp_body("  listeners:\n"
                                "    - require_auth: true\n"),
                 4, 7, "missing required key \"listen\" in smtp.listeners[0]"});
    check_error({with_smtp("      starttls: { cert: /etc/passwd }\n"), 5, 17,
                 "missing required key \"key\" in smtp.listeners[0].starttls"});
    check_error({with_smtp_body("  listeners: []\n"), 3, 14,
                 "smtp.listeners: must list at least one listener"});
  }

  TEST_CASE("a configuration set naming a missing pool is an error") {
    check_error(
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools: [{ name: main, ips: [{ address: 192.0.2.1 }] }]\n"
         "configuration_sets:\n"
         "  - { name: tx, ip_pool: main }\n"
         "  - { name: news, ip_pool: bulk }\n",
         6, 28, "configuration_sets[1].ip_pool: no ip_pool named \"bulk\""});
  }

  TEST_CASE("a user naming a missing configuration set is an error") {
    check_error({with_smtp("  users:\n"
                           "    - { name: app1, password: pw, configuration_set: mian }\n"),
                 6, 54, "smtp.users[0].configuration_set: no configuration set named \"mian\""});
  }

  TEST_CASE("a default_configuration_set naming a missing set is an error") {
    check_error({kMinimal + "default_configuration_set: transactional\n", 12, 28,
                 "default_configuration_set: no configuration set named \"transactional\""});
  }

  TEST_CASE("duplicate names are errors at the second one") {
    ErrorCase cases[] = {
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools:\n"
         "  - { name: a, ips: [{ address: 192.0.2.1 }] }\n"
         "  - { name: a, ips: [{ address: 192.0.2.2 }] }\n"
         "configuration_sets: [{ name: a, ip_pool: a }]\n",
         5, 13, "ip_pools[1].name: a pool named \"a\" is already defined"},
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n"
         "configuration_sets: [{ name: s, ip_pool: a }, { name: s, ip_pool: a }]\n",
         4, 55, "configuration_sets[1].name: a configuration set named \"s\" is already defined"},
        {with_smtp("  users: [{ name: u, password: p }, { name: u, password: q }]\n"), 5, 45,
         "smtp.users[1].name: a user named \"u\" is already defined"},
        {kMinimal + "http: { api_keys: [{ id: K, secret: a }, { id: K, secret: b }] }\n", 12, 48,
         "http.api_keys[1].id: an API key with id \"K\" is already defined"},
        {kMinimal + "http: { api_keys: [{ id: K, secret: a, configuration_sets: [nope] }] }\n", 12,
         61, "http.api_keys[0].configuration_sets[0]: no configuration set named \"nope\""},
        {kMinimal + "http: { api_keys: [{ id: K, secret: a, configuration_sets: [] }] }\n", 12, 60,
         "http.api_keys[0].configuration_sets: must list at least one configuration set"},
        {kMinimal + "http: { api_keys: [{ id: K, secret: a, admin: maybe }] }\n", 12, 47,
         "http.api_keys[0].admin: expected true or false (or yes/no)"},
        {kMinimal + "http: { api_keys: [{ id: K, secret: a, root: true }] }\n", 12, 40,
         "unknown key \"root\" in http.api_keys[0]"},
    };
    for (const auto& c : cases) check_error(c);
  }

  TEST_CASE("the same IP address in two pools is an error") {
    check_error(
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools:\n"
         "  - name: a\n"
         "    ips: [{ address: 192.0.2.1 }]\n"
         "  - name: b\n"
         "    ips: [{ address: \"::ffff:192.0.2.1\" }]\n"
         "configuration_sets: [{ name: a, ip_pool: a }]\n",
         7, 22, "ip_pools[1].ips[0].address: ::ffff:192.0.2.1 is already in pool \"a\""});
    check_error(
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools:\n"
         "  - name: a\n"
         "    ips: [{ address: 192.0.2.1 }, { address: 192.0.2.1 }]\n"
         "configuration_sets: [{ name: a, ip_pool: a }]\n",
         5, 46, "ip_pools[0].ips[1].address: 192.0.2.1 is listed twice in this pool"});
  }

  TEST_CASE("a pool address that is not an IP is an error") {
    check_error(
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
         "ip_pools:\n"
         "  - name: a\n"
         "    ips:\n"
         "      - address: o1.example.com\n"
         "configuration_sets: [{ name: a, ip_pool: a }]\n",
         6, 18,
         "ip_pools[0].ips[0].address: expected an IP address like \"192.0.2.10\" or "
         "\"2001:db8::10\", got \"o1.example.com\""});
  }

  TEST_CASE("a malformed CIDR is an error at the list item") {
    check_error({with_smtp("  relay_networks: [\"127.0.0.0/8\", 10.0.0.0/33]\n"), 5, 35,
                 "smtp.relay_networks[1]: expected a network like \"10.0.0.0/8\" or an IP "
                 "address, got \"10.0.0.0/33\""});
    check_error({with_smtp("  plaintext_auth_networks:\n    - localhost\n"), 6, 7,
                 "smtp.plaintext_auth_networks[0]: expected a network"});
  }

  TEST_CASE("a listen address that is not IP:port is an error") {
    for (const char* v : {"localhost:25", "127.0.0.1", "127.0.0.1:70000", "::1:25", "25"}) {
      INFO("listen: ", std::string(v));
      check_error({with_smtp_body("  listeners:\n"
                                  "    - listen: \"" +
                                  std::string(v) + "\"\n"),
                   4, 15, "smtp.listeners[0].listen: expected IP:port like \"127.0.0.1:587\""});
    }
    check_error({kMinimal + "metrics: { listen: \"127.0.0.1:0\" }\n", 12, 20,
                 "metrics.listen: the port must be from 1 to 65535"});
  }

  TEST_CASE("an unreadable starttls file is an error at its path") {
    TempFile cert("cert.pem");
    check_error({with_smtp("      starttls:\n"
                           "        cert: /nonexistent/tls.crt\n"
                           "        key: /nonexistent/tls.key\n"),
                 6, 15,
                 "smtp.listeners[0].starttls.cert: cannot read /nonexistent/tls.crt: No such file "
                 "or directory"});
    check_error({with_smtp("      starttls:\n"
                           "        cert: " +
                           cert.path.string() +
                           "\n"
                           "        key: /tmp\n"),
                 7, 14, "smtp.listeners[0].starttls.key: cannot read /tmp: Is a directory"});
  }

  TEST_CASE("two listeners on the same address are an error") {
    check_error({with_smtp("    - listen: \"127.0.0.1:25\"\n"), 5, 15,
                 "smtp.listeners[1].listen: 127.0.0.1:25 is already used by "
                 "smtp.listeners[0].listen"});
    // Every socket the daemon binds counts, and [::1] is the same as [0::1].
    check_error(
        {"spool_dir: /x\n"
         "smtp: { listeners: [{ listen: \"[::1]:9025\" }] }\n"
         "metrics: { listen: \"[0::1]:9025\" }\n"
         "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n"
         "configuration_sets: [{ name: a, ip_pool: a }]\n",
         3, 20, "metrics.listen: [0::1]:9025 is already used by smtp.listeners[0].listen"});
  }

  TEST_CASE("a missing or empty file is an error about the whole file") {
    auto r = load_file("/nonexistent/mta.yaml");
    REQUIRE(r.error);
    CHECK_FALSE(r.config);
    CHECK(r.error->line == 0);
    CHECK(r.error->to_string() == "/nonexistent/mta.yaml: cannot open: No such file or directory");

    auto empty = load_string("# nothing here\n", "test.yaml");
    REQUIRE(empty.error);
    CHECK(empty.error->to_string() == "test.yaml: the file is empty: expected a map of settings");
  }

  TEST_CASE("durations need a unit and fit in milliseconds") {
    struct Case {
      const char* input;
      std::optional<Duration> want;
    } cases[] = {
        {"500ms", 500ms},
        {"30s", 30s},
        {"5m", 5min},
        {"2h", 2h},
        {"3d", 72h},
        {"0s", 0ms},
        {"007s", 7s},
        {"9223372036854775807ms", Duration(9223372036854775807)},
        {"106751991167d", std::chrono::hours(24) * 106751991167},
        {"106751991168d", std::nullopt},  // overflows int64 milliseconds
        {"99999999999999999999s", std::nullopt},
        {"30", std::nullopt},
        {"", std::nullopt},
        {"s", std::nullopt},
        {"-5s", std::nullopt},
        {"+5s", std::nullopt},
        {"5 s", std::nullopt},
        {" 5s", std::nullopt},
        {"5S", std::nullopt},
        {"5sec", std::nullopt},
        {"1.5h", std::nullopt},
        {"1h30m", std::nullopt},
        {"5w", std::nullopt},
    };
    for (const auto& c : cases) {
      auto got = parse_duration(c.input);
      INFO("input: \"", c.input, "\" got: ", got ? std::to_string(got->count()) + "ms" : "nullopt",
           " want: ", c.want ? std::to_string(c.want->count()) + "ms" : "nullopt");
      CHECK(got == c.want);
    }
  }

  TEST_CASE("feedback: addresses lowercased, retention, and their errors") {
    Config none = load_ok(with_smtp(""));
    CHECK(none.feedback.addresses.empty());
    CHECK(none.feedback.retention == std::chrono::hours(24 * 30));
    // with_smtp("") is 8 lines: `feedback:` is line 9.
    Config c = load_ok(with_smtp("") +
                       "feedback:\n"
                       "  addresses: [FBL@Mta.Example.com, \"abuse@mta.example.com\"]\n"
                       "  retention: 7d\n");
    CHECK(c.feedback.addresses ==
          std::vector<std::string>{"fbl@mta.example.com", "abuse@mta.example.com"});
    CHECK(c.feedback.retention == std::chrono::hours(24 * 7));
    CHECK(c.feedback.is_feedback_address("Abuse@MTA.example.com"));
    CHECK_FALSE(c.feedback.is_feedback_address("abuse@mta.example.co"));
    for (const char* bad :
         {"fbl", "\"@mta.test\"", "fbl@", "a@b@c", "\"a b@c.test\"", "<a@b.test>"}) {
      INFO("address: ", std::string(bad));
      check_error({with_smtp("") + "feedback:\n  addresses: [" + bad + "]\n", 10, 15,
                   "feedback.addresses[0]: expected an email address"});
    }
    check_error({with_smtp("") + "feedback:\n  addresses: [a@b.test, A@B.test]\n", 10, 25,
                 "\"a@b.test\" is listed twice"});
    check_error({with_smtp("") + "feedback:\n  retention: 30m\n", 10, 14,
                 "feedback.retention: expected a duration from 1h to"});
    check_error(
        {with_smtp("") + "feedback:\n  adresses: [a@b.test]\n", 10, 3, "unknown key \"adresses\""});
  }

  TEST_CASE("warm-up: schedules, IP warm-ups, overflow and time zone are read") {
    auto c = load_ok(
        "spool_dir: /x\n"
        "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n"
        "timezone: Europe/Berlin\n"
        "warmup_schedules:\n"
        "  - { name: fast, daily_limits: [10, 20, 40], overflow: \"pool:spare\", "
        "per_provider: true }\n"
        "ip_pools:\n"
        "  - name: main\n"
        "    ips:\n"
        "      - { address: 192.0.2.1 }\n"
        "      - { address: 192.0.2.2, warmup: { schedule: fast, started: 2026-11-20 } }\n"
        "      - { address: 192.0.2.3, warmup: { schedule: standard, started: 2026-12-01 } }\n"
        "  - name: spare\n"
        "    ips: [{ address: 192.0.2.9 }]\n"
        "    overflow: defer\n"
        "configuration_sets: [{ name: main, ip_pool: main }]\n");
    CHECK(c.time_zone.name() == "Europe/Berlin");
    REQUIRE(c.warmup_schedules.size() == 1);
    CHECK(c.warmup_schedules[0].schedule.daily_limits == std::vector<uint64_t>{10, 20, 40});
    CHECK(c.warmup_schedules[0].schedule.per_provider);
    CHECK(c.warmup_schedules[0].overflow == "pool:spare");
    const auto& ips = c.ip_pools[0].ips;
    CHECK_FALSE(ips[0].warmup);
    REQUIRE(ips[1].warmup);
    CHECK(ips[1].warmup->schedule == "fast");
    CHECK(ips[1].warmup->started.to_string() == "2026-11-20");
    REQUIRE(c.find_schedule("standard"));
    CHECK(c.find_schedule("standard")->days() == 45);
    CHECK(c.find_schedule("nope") == nullptr);
    // The pool's overflow: its own, else its first warming IP's schedule's.
    CHECK(c.overflow_of(c.ip_pools[0]) == "pool:spare");
    CHECK(c.overflow_of(c.ip_pools[1]) == "defer");
  }

  TEST_CASE("warm-up: bad schedules, dates, overflow and zones are errors where written") {
    const std::string head =
        "spool_dir: /x\n"                                         // 1
        "smtp: { listeners: [{ listen: \"127.0.0.1:25\" }] }\n";  // 2
    const std::string sets = "configuration_sets: [{ name: a, ip_pool: a }]\n";
    check_error({head +
                     "ip_pools:\n"
                     "  - name: a\n"
                     "    ips: [{ address: 192.0.2.1, warmup: { schedule: nope, started: "
                     "2026-01-01 } }]\n" +
                     sets,
                 5, 53, "no warm-up schedule named \"nope\""});
    check_error({head +
                     "ip_pools:\n"
                     "  - name: a\n"
                     "    ips: [{ address: 192.0.2.1, warmup: { schedule: standard, started: "
                     "2026-02-30 } }]\n" +
                     sets,
                 5, 72, "expected a date like \"2026-11-20\""});
    check_error({head +
                     "ip_pools:\n"
                     "  - name: a\n"
                     "    ips: [{ address: 192.0.2.1, warmup: { started: 2026-01-01 } }]\n" +
                     sets,
                 5, 41, "missing required key \"schedule\""});
    check_error({head + "warmup_schedules: [{ name: z, daily_limits: [10, 0] }]\n" +
                     "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n" + sets,
                 3, 50, "expected an integer from 1"});
    check_error({head + "warmup_schedules: [{ name: z, daily_limits: [] }]\n" +
                     "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n" + sets,
                 3, 45, "must list at least one daily limit"});
    check_error({head + "warmup_schedules: [{ name: z, daily_limits: [1], overflow: later }]\n" +
                     "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n" + sets,
                 3, 60, "invalid overflow \"later\": want defer or pool:NAME"});
    check_error({head +
                     "warmup_schedules: [{ name: z, daily_limits: [1], overflow: \"pool:x\" }]\n" +
                     "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n" + sets,
                 3, 60, "no ip_pool named \"x\""});
    check_error(
        {head + "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }], overflow: \"pool:a\" }]\n" +
             sets,
         3, 64, "a pool cannot overflow into itself"});
    check_error({head + "timezone: Mars/Olympus\n" +
                     "ip_pools: [{ name: a, ips: [{ address: 192.0.2.1 }] }]\n" + sets,
                 3, 11, "unknown time zone"});
  }

  TEST_CASE("shaping: built-in providers, operator providers and backoff") {
    auto c =
        load_ok(with_smtp("") +
                "shaping:\n"
                "  default: { max_connections: 4, max_messages_per_hour: 100 }\n"
                "  providers:\n"
                "    - { name: gmail, max_connections: 3 }\n"
                "    - { name: isp, mx_suffixes: [\".MX.Isp.test\"], "
                "max_messages_per_hour: 50 }\n"
                "  backoff: { floor: 0.2, decrease: 0.25, window: 30s, min_clean_results: 2 }\n");
    const auto* g = c.shaping.find_provider("gmail");
    REQUIRE(g);
    CHECK(g->max_connections == 3);
    CHECK(g->max_messages_per_connection == 100);  // the built-in's
    CHECK(c.shaping.provider_for("gmail-smtp-in.l.google.com.") == g);
    CHECK(c.shaping.provider_for("ALT1.ASPMX.L.GOOGLE.COM") == g);
    CHECK(c.shaping.provider_for("notgoogle.com") == nullptr);  // label boundary
    const auto* isp = c.shaping.provider_for("a.mx.isp.test");
    REQUIRE(isp);
    CHECK(isp->name == "isp");
    CHECK(isp->max_connections == 4);  // shaping.default's
    CHECK(isp->max_messages_per_hour == 50);
    CHECK(c.shaping.provider_for("mx.isp.test")->name == "isp");
    CHECK(c.shaping.provider_for("yahoo.com.example") == nullptr);
    CHECK(c.shaping.find_provider("yahoo"));  // built-ins stay
    CHECK(c.shaping.max_messages_per_hour == 100);
    CHECK(c.shaping.backoff.floor == doctest::Approx(0.2));
    CHECK(c.shaping.backoff.decrease == doctest::Approx(0.25));
    CHECK(c.shaping.backoff.increase == doctest::Approx(0.1));
    CHECK(c.shaping.backoff.window == std::chrono::seconds(30));
    CHECK(c.shaping.backoff.min_clean_results == 2);

    check_error({with_smtp("") + "shaping:\n  providers: [{ name: newprov }]\n", 10, 15,
                 "missing required key \"mx_suffixes\""});
    check_error({with_smtp("") + "shaping:\n  providers: [{ name: \"a b\", mx_suffixes: [x] }]\n",
                 10, 23, "expected a provider name"});
    check_error({with_smtp("") + "shaping:\n  backoff: { decrease: 1 }\n", 10, 24,
                 "expected a number above 0 below 1"});
    check_error({with_smtp("") + "shaping:\n  backoff: { floor: 0 }\n", 10, 21,
                 "expected a number above 0 up to 1"});
  }
}

namespace {

// A temporary PEM key made with the openssl tool, mode 0600 unless told.
struct KeyFile {
  std::string path;
  KeyFile(const std::string& name, const std::string& genpkey_args, mode_t mode = 0600) {
    path = (std::filesystem::temp_directory_path() /
            ("mta-config-test-" + std::to_string(getpid()) + "-" + name))
               .string();
    std::string cmd = "openssl genpkey " + genpkey_args + " -out " + path + " 2>/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    REQUIRE(chmod(path.c_str(), mode) == 0);
  }
  ~KeyFile() { std::filesystem::remove(path); }
};

std::string with_top(const std::string& top, const std::string& set_extra = "") {
  return "spool_dir: /tmp/spool\n"             // 1
         "smtp:\n"                             // 2
         "  listeners:\n"                      // 3
         "    - listen: \"127.0.0.1:2525\"\n"  // 4
         "ip_pools:\n"                         // 5
         "  - name: main\n"                    // 6
         "    ips:\n"                          // 7
         "      - address: 192.0.2.1\n"        // 8
         "configuration_sets:\n"               // 9
         "  - name: main\n"                    // 10
         "    ip_pool: main\n" +               // 11
         set_extra +
         top;
}

}  // namespace

TEST_SUITE("config") {
  TEST_CASE("tracking, list_unsubscribe and dkim are read") {
    KeyFile rsa("rsa.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048");
    KeyFile ed("ed.pem", "-algorithm ED25519");
    auto c =
        load_ok(with_top("tracking:\n"
                         "  listen: \"127.0.0.1:8080\"\n"
                         "  base_url: \"https://t.example.com/\"\n"
                         "  secret: \"0123456789abcdef\"\n"
                         "  previous_secrets: [\"fedcba9876543210\"]\n"
                         "dkim:\n"
                         "  - { domain: Example.COM, selector: s1, private_key: " +
                             rsa.path +
                             " }\n"
                             "  - { domain: example.com, selector: s2, private_key: " +
                             ed.path +
                             ", algorithm: ed25519-sha256, headers: [From, Subject] }\n"
                             "dkim_failure: send_unsigned\n"
                             "dkim_engine: opendkim\n",
                         "    tracking: { opens: true, clicks: false }\n"
                         "    list_unsubscribe: { enabled: true, mailto: \"u@example.com\" }\n"
                         "    dkim_domain: example.com\n"));
    CHECK(c.tracking.listen->port == 8080);
    CHECK(c.tracking.base_url == "https://t.example.com");
    CHECK(c.tracking.previous_secrets.size() == 1);
    REQUIRE(c.dkim.size() == 2);
    CHECK(c.dkim[0].domain == "example.com");
    CHECK(c.dkim[0].algorithm == "rsa-sha256");
    CHECK(c.dkim[1].algorithm == "ed25519-sha256");
    CHECK(c.dkim[1].headers == std::vector<std::string>{"From", "Subject"});
    CHECK(c.dkim_failure == DkimFailure::kSendUnsigned);
    CHECK(c.dkim_engine == DkimEngine::kOpenDkim);
    const auto& s = c.configuration_sets.front();
    CHECK(s.tracking.opens);
    CHECK_FALSE(s.tracking.clicks);
    CHECK(s.list_unsubscribe.enabled);
    CHECK(s.list_unsubscribe.mailto == "u@example.com");
    CHECK(s.dkim_domain == "example.com");
    // Defaults.
    auto d = load_ok(kMinimal);
    CHECK_FALSE(d.tracking.configured());
    CHECK(d.dkim.empty());
    CHECK(d.dkim_failure == DkimFailure::kDefer);
    CHECK(d.dkim_engine == DkimEngine::kNative);
    CHECK_FALSE(d.configuration_sets.front().tracking.any());
  }

  TEST_CASE("tracking and list_unsubscribe errors are reported where written") {
    const std::string tracking =
        "tracking: { base_url: \"https://t.example.com\", secret: \"0123456789abcdef\" }\n";
    // A set that tracks without the tracking section.
    check_error(
        {with_top("", "    tracking: { opens: true }\n"), 12, 15, "needs the top-level tracking"});
    check_error({with_top("", "    list_unsubscribe: { enabled: true }\n"), 12, 23,
                 "needs the top-level tracking"});
    // Off is fine without it.
    load_ok(with_top("", "    tracking: { opens: false }\n"));
    check_error({with_top("tracking: { base_url: \"ftp://x\", secret: \"0123456789abcdef\" }\n"),
                 12, 23, "http:// or https://"});
    check_error({with_top("tracking: { base_url: \"https://t.example.com\", secret: short }\n"), 12,
                 56, "at least 16"});
    check_error({with_top("tracking: { secret: \"0123456789abcdef\" }\n"), 12, 11,
                 "missing required key \"base_url\""});
    check_error({with_top(tracking, "    list_unsubscribe: { enabled: true, mailto: nope }\n"), 12,
                 48, "an email address"});
    check_error({with_top(tracking, "    tracking: { opens: maybe }\n"), 12, 24, "true or false"});
  }

  TEST_CASE("dkim key problems are config errors at the key") {
    KeyFile ok("ok.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
    KeyFile open("open.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:1024", 0644);
    KeyFile small("small.pem", "-algorithm RSA -pkeyopt rsa_keygen_bits:512");
    KeyFile ed("ed.pem", "-algorithm ED25519");
    auto key = [](const std::string& path, const std::string& extra = "") {
      return "dkim:\n  - { domain: example.com, selector: s1, private_key: " + path + extra +
             " }\n";
    };
    load_ok(with_top(key(ok.path)));
    check_error({with_top(key("/nonexistent/key.pem")), 13, 55, "/nonexistent/key.pem"});
    check_error({with_top(key(open.path)), 13, 55, "world-readable"});
    check_error({with_top(key(small.path)), 13, 55, "512"});
    check_error({with_top(key(ed.path)), 13, 55, "is an Ed25519 key"});
    check_error({with_top(key(ok.path, ", algorithm: dsa")), 13,
                 55 + static_cast<int>(ok.path.size()) + 13, "rsa-sha256"});
    // Two keys with one selector; a set's dkim_domain without a key.
    check_error({with_top(key(ok.path) + "  - { domain: example.com, selector: s1, private_key: " +
                          ok.path + " }\n"),
                 14, 38, "already defined"});
    check_error({with_top(key(ok.path), "    dkim_domain: other.example\n"), 12, 18,
                 "no dkim key for domain \"other.example\""});
    check_error({with_top("dkim_failure: maybe\n"), 12, 15, "defer"});
    check_error({with_top("dkim_engine: libdkim\n"), 12, 14, "native or opendkim"});
  }
}
