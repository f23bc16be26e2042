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

  CLI11_PARSE(app, argc, argv);

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
