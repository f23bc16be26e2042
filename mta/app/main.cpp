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

  auto* events = app.add_subcommand("events", "Inspect the event outbox");
  events->require_subcommand(1);
  auto* etail = events->add_subcommand("tail", "Print stored events, oldest first, as JSON lines");
  etail->add_option("--config,-c", config_path, "Config file")->required();
  std::string after;
  etail->add_option("--after", after, "Only events after this event id");

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

  CLI11_PARSE(app, argc, argv);

  if (cls->parsed()) return mta::app::classify(config_path, stage, replies, mx);
  if (sinkcmd->parsed()) return mta::app::sink(sink_listen, dump);

  if (etail->parsed()) return mta::app::events_tail(config_path, after);
  if (slist->parsed()) return mta::app::suppression_list(config_path, json);
  if (sadd->parsed()) return mta::app::suppression_edit(config_path, address, reason, true);
  if (sremove->parsed()) return mta::app::suppression_edit(config_path, address, reason, false);
  if (serve->parsed()) return mta::app::serve(config_path);
  if (check->parsed()) return mta::app::check_config(config_path);
  if (qlist->parsed()) return mta::app::queue_list(config_path, json);
  if (qshow->parsed()) return mta::app::queue_show(config_path, id);
  return 2;
}
