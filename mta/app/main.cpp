// mta: the command line. `serve` runs the daemon (daemon.cpp); the other
// verbs are tools that read the config and, for `queue`, the spool.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "mta/app/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mta: a high-volume sending MTA"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mta 0.1.0");

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "Run the daemon in the foreground");
  serve->add_option("--config,-c", config_path, "Config file")->required();

  auto* check = app.add_subcommand("check-config", "Validate a config file");
  check->add_option("--config,-c", config_path, "Config file")->required();

  auto* queue = app.add_subcommand("queue", "Inspect the spool");
  queue->require_subcommand(1);
  bool json = false;
  auto* qlist = queue->add_subcommand("list", "List spooled messages");
  qlist->add_option("--config,-c", config_path, "Config file")->required();
  qlist->add_flag("--json", json, "One JSON object per line");
  std::string id;
  auto* qshow = queue->add_subcommand("show", "Print a spooled message as it will be sent");
  qshow->add_option("--config,-c", config_path, "Config file")->required();
  qshow->add_option("id", id, "Message id")->required();

  auto* events = app.add_subcommand("events", "The event outbox and webhook dead letters");
  events->require_subcommand(1);
  auto* etail = events->add_subcommand("tail", "Print stored events, oldest first, as JSON lines");
  etail->add_option("--config,-c", config_path, "Config file")->required();
  std::string after;
  etail->add_option("--after", after, "Only events after this event id");
  std::string destination;
  auto* edead = events->add_subcommand(
      "dead", "List webhook events that exhausted their retry window (dead letters)");
  edead->add_option("--config,-c", config_path, "Config file")->required();
  edead->add_option("--destination", destination, "Only this event destination");
  edead->add_flag("--json", json, "One JSON object per line");
  std::vector<std::string> event_ids;
  auto* ereplay = events->add_subcommand(
      "replay", "Queue dead letters again (daemon stopped; while it runs: mta ctl events replay)");
  ereplay->add_option("--config,-c", config_path, "Config file")->required();
  ereplay->add_option("--destination", destination, "Only this event destination");
  ereplay->add_option("ids", event_ids, "Event ids (default: every dead letter)");

  auto* supp = app.add_subcommand("suppression", "The suppression list");
  supp->require_subcommand(1);
  auto* slist = supp->add_subcommand("list", "List suppressed addresses");
  slist->add_option("--config,-c", config_path, "Config file")->required();
  slist->add_flag("--json", json, "One JSON object per line");
  std::string address, reason = "MANUAL";
  auto* sadd = supp->add_subcommand("add", "Suppress an address (daemon stopped)");
  sadd->add_option("--config,-c", config_path, "Config file")->required();
  sadd->add_option("address", address, "Email address")->required();
  sadd->add_option("--reason", reason, "BOUNCE, COMPLAINT or MANUAL");
  auto* sremove = supp->add_subcommand("remove", "Stop suppressing an address (daemon stopped)");
  sremove->add_option("--config,-c", config_path, "Config file")->required();
  sremove->add_option("address", address, "Email address")->required();

  auto* warm = app.add_subcommand("warmup", "IP warm-up: plans and status");
  warm->require_subcommand(1);
  std::string warm_ip;
  auto* wplan = warm->add_subcommand(
      "plan", "Print an IP's warm-up day by day: its daily limit and when it is warm");
  wplan->add_option("--config,-c", config_path, "Config file")->required();
  wplan->add_option("--ip", warm_ip, "A pool IP with a warmup")->required();
  auto* wstatus = warm->add_subcommand(
      "status", "Every pool IP's warm-up: day, limit, sent today, held or advancing and why");
  wstatus->add_option("--config,-c", config_path, "Config file")->required();
  wstatus->add_flag("--json", json, "A JSON array");

  auto* dkimcmd = app.add_subcommand("dkim", "DKIM signing keys");
  dkimcmd->require_subcommand(1);
  std::string dkim_domain, dkim_selector, dkim_alg = "rsa-sha256", dkim_out;
  int dkim_bits = 2048;
  auto* dkeygen = dkimcmd->add_subcommand(
      "keygen", "Write a new private key (mode 0600) and print the DNS TXT record to publish");
  dkeygen->add_option("--domain", dkim_domain, "Signing domain (d=)")->required();
  dkeygen->add_option("--selector", dkim_selector, "Selector (s=)")->required();
  dkeygen->add_option("--algorithm", dkim_alg, "rsa-sha256 (default) or ed25519-sha256");
  dkeygen->add_option("--bits", dkim_bits, "RSA key size (default 2048)");
  dkeygen->add_option("--out", dkim_out, "Key file (default ./DOMAIN.SELECTOR.pem)");
  auto* dcheck = dkimcmd->add_subcommand(
      "check", "Check each configured key and print the DNS TXT record it needs");
  dcheck->add_option("--config,-c", config_path, "Config file")->required();

  // Tracking tokens, for debugging links (hidden from --help; see README).
  auto* trackcmd = app.add_subcommand("tracking", "Tracking tokens (debugging)")->group("");
  trackcmd->require_subcommand(1);
  mta::app::TrackingTokenOptions tok;
  auto* ttoken = trackcmd->add_subcommand("token", "Print a signed tracking token");
  ttoken->add_option("--config,-c", tok.config_path, "Config file")->required();
  ttoken->add_option("--kind", tok.kind, "open, click (default) or unsubscribe");
  ttoken->add_option("--message-id", tok.message_id, "Message id (default: a fresh one)");
  ttoken->add_option("--recipient", tok.recipient, "Recipient address")->required();
  ttoken->add_option("--configuration-set", tok.configuration_set, "Set (default: the default)");
  ttoken->add_option("--url", tok.url, "Click: the original URL");
  ttoken->add_option("--link-index", tok.link_index, "Click: the link's position");
  ttoken->add_option("--link-tags", tok.link_tags, "Click: ses:tags \"k:v;k2:v2\"");
  ttoken->add_option("--list", tok.list_name, "Unsubscribe: contact list (default: the set)");
  ttoken->add_option("--topic", tok.list_topic, "Unsubscribe: topic of the list");
  ttoken->add_option("--sent-ms", tok.sent_ms, "When the copy was sent, Unix ms (default now)");
  ttoken->add_flag("--print-url", tok.print_url, "Print the whole URL under tracking.base_url");
  std::string tdecode_arg;
  auto* tdecode =
      trackcmd->add_subcommand("decode", "Verify a token (or URL) and print its claims");
  tdecode->add_option("--config,-c", config_path, "Config file")->required();
  tdecode->add_option("token", tdecode_arg, "Token or tracking URL")->required();

  auto* cls = app.add_subcommand(
      "classify", "Classify SMTP replies like the delivery engine does (one JSON object each)");
  cls->add_option("--config,-c", config_path, "Config file (to include its bounces rules)");
  std::string stage = "rcpt", mx;
  cls->add_option("--stage", stage, "connect, ehlo, mail, rcpt, data or any (default rcpt)");
  cls->add_option("--mx", mx, "MX host the reply came from (selects provider rules)");
  std::vector<std::string> replies;
  cls->add_option("replies", replies,
                  "Replies, e.g. \"550 5.1.1 user unknown\"; none: one per line on stdin; "
                  "\\n separates the lines of a multi-line reply");

  auto* sinkcmd = app.add_subcommand(
      "sink", "A local SMTP sink that accepts and logs every message (for development)");
  std::string sink_listen = "127.0.0.1:2526", dump;
  sinkcmd->add_option("--listen", sink_listen, "IP:port (default 127.0.0.1:2526)");
  sinkcmd->add_option("--dump", dump, "Write each message to this directory");

  // mta ctl: the admin API of a running daemon.
  mta::app::CtlOptions ctl_opts;
  auto* ctl = app.add_subcommand("ctl", "Talk to a running daemon through the HTTP admin API");
  ctl->require_subcommand(1);
  ctl->add_option("--config,-c", ctl_opts.config_path,
                  "Config file (for http.listen and an admin API key)");
  ctl->add_option("--url", ctl_opts.url, "API base URL, e.g. http://127.0.0.1:8025");
  ctl->add_option("--key-id", ctl_opts.key_id, "Which admin key of the config to use");
  ctl->add_option("--secret", ctl_opts.secret, "API key secret (or $MTA_API_SECRET)");
  ctl->add_flag("--json", ctl_opts.json, "Print the API's JSON");
  auto ctl_cmd = [&](const char* name, const char* help) {
    auto* c = ctl->add_subcommand(name, help);
    c->fallthrough();
    return c;
  };
  auto* cqueue = ctl_cmd("queue", "Queued mail by configuration set, pool and destination");
  auto* csupp = ctl_cmd("suppression", "The suppression list");
  csupp->require_subcommand(1);
  std::string ctl_address, ctl_reason = "BOUNCE";
  auto* csadd = csupp->add_subcommand("add", "Suppress an address")->fallthrough();
  csadd->add_option("address", ctl_address, "Email address")->required();
  csadd->add_option("--reason", ctl_reason, "BOUNCE (default) or COMPLAINT");
  auto* csremove = csupp->add_subcommand("remove", "Stop suppressing an address")->fallthrough();
  csremove->add_option("address", ctl_address, "Email address")->required();
  auto* csget = csupp->add_subcommand("get", "Show one suppressed address")->fallthrough();
  csget->add_option("address", ctl_address, "Email address")->required();
  auto* cslist = csupp->add_subcommand("list", "List suppressed addresses")->fallthrough();
  std::string ctl_pool;
  auto* cips = ctl_cmd("ips", "Dedicated IPs and their warm-up");
  cips->add_option("--pool", ctl_pool, "Only this pool");
  std::string ctl_kind, ctl_name;
  auto* csuspend = ctl_cmd("suspend", "Stop sending from a pool or IP, or to a destination");
  auto* cresume = ctl_cmd("resume", "Undo suspend");
  for (auto* c : {csuspend, cresume}) {
    c->add_option("kind", ctl_kind, "pool, ip or destination")
        ->required()
        ->check(CLI::IsMember({"pool", "ip", "destination"}));
    c->add_option("name", ctl_name, "Pool name, IP address or domain")->required();
  }
  auto* cbounce = ctl_cmd("bounce-all", "Bounce every queued recipient at a destination domain");
  cbounce->add_option("destination", ctl_name, "Domain")->required();
  auto* cevents = ctl_cmd("events", "Webhook events that could not be delivered");
  cevents->require_subcommand(1);
  size_t ctl_limit = 100;
  auto* cdead = cevents->add_subcommand("dead", "List dead letters")->fallthrough();
  cdead->add_option("--limit", ctl_limit, "At most this many (default 100)");
  std::vector<std::string> ctl_ids;
  auto* creplay =
      cevents->add_subcommand("replay", "Replay dead letters (all without ids)")->fallthrough();
  creplay->add_option("ids", ctl_ids, "Dead letter ids");

  CLI11_PARSE(app, argc, argv);

  if (ctl->parsed()) {
    if (cqueue->parsed()) return mta::app::ctl_queue(ctl_opts);
    if (csadd->parsed()) return mta::app::ctl_suppression(ctl_opts, "add", ctl_address, ctl_reason);
    if (csremove->parsed()) return mta::app::ctl_suppression(ctl_opts, "remove", ctl_address, "");
    if (csget->parsed()) return mta::app::ctl_suppression(ctl_opts, "get", ctl_address, "");
    if (cslist->parsed()) return mta::app::ctl_suppression(ctl_opts, "list", "", "");
    if (cips->parsed()) return mta::app::ctl_ips(ctl_opts, ctl_pool);
    if (csuspend->parsed()) return mta::app::ctl_suspend(ctl_opts, true, ctl_kind, ctl_name);
    if (cresume->parsed()) return mta::app::ctl_suspend(ctl_opts, false, ctl_kind, ctl_name);
    if (cbounce->parsed()) return mta::app::ctl_bounce_all(ctl_opts, ctl_name);
    if (cdead->parsed()) return mta::app::ctl_events(ctl_opts, "dead", {}, ctl_limit);
    if (creplay->parsed()) return mta::app::ctl_events(ctl_opts, "replay", ctl_ids, 0);
    return 2;
  }

  if (cls->parsed()) return mta::app::classify(config_path, stage, replies, mx);
  if (ttoken->parsed()) return mta::app::tracking_token(tok);
  if (tdecode->parsed()) return mta::app::tracking_decode(config_path, tdecode_arg);
  if (dkeygen->parsed())
    return mta::app::dkim_keygen(dkim_domain, dkim_selector, dkim_alg, dkim_bits, dkim_out);
  if (dcheck->parsed()) return mta::app::dkim_check(config_path);
  if (sinkcmd->parsed()) return mta::app::sink(sink_listen, dump);

  if (etail->parsed()) return mta::app::events_tail(config_path, after);
  if (edead->parsed()) return mta::app::events_dead(config_path, destination, json);
  if (ereplay->parsed()) return mta::app::events_replay(config_path, destination, event_ids);
  if (slist->parsed()) return mta::app::suppression_list(config_path, json);
  if (sadd->parsed()) return mta::app::suppression_edit(config_path, address, reason, true);
  if (sremove->parsed()) return mta::app::suppression_edit(config_path, address, reason, false);
  if (serve->parsed()) return mta::app::serve(config_path);
  if (check->parsed()) return mta::app::check_config(config_path);
  if (qlist->parsed()) return mta::app::queue_list(config_path, json);
  if (qshow->parsed()) return mta::app::queue_show(config_path, id);
  if (wplan->parsed()) return mta::app::warmup_plan(config_path, warm_ip);
  if (wstatus->parsed()) return mta::app::warmup_status(config_path, json);
  return 2;
}
