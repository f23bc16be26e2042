// The verbs of the mta command line. Each returns the process exit code:
// 0 success, 1 runtime failure, 2 bad usage or bad config.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mta::app {

int serve(const std::string& config_path);
int check_config(const std::string& config_path);
int queue_list(const std::string& config_path, bool json);
int queue_show(const std::string& config_path, const std::string& id);
int classify(const std::string& config_path, const std::string& stage,
             const std::vector<std::string>& replies, const std::string& mx);
int sink(const std::string& listen, const std::string& dump_dir);
int events_tail(const std::string& config_path, const std::string& after);
int events_dead(const std::string& config_path, const std::string& destination, bool json);
// Needs the daemon stopped (it writes to the spool).
int events_replay(const std::string& config_path, const std::string& destination,
                  const std::vector<std::string>& ids);
int suppression_list(const std::string& config_path, bool json);
int warmup_plan(const std::string& config_path, const std::string& ip);
int warmup_status(const std::string& config_path, bool json);
int suppression_edit(const std::string& config_path, const std::string& address,
                     const std::string& reason, bool add);
// `mta dkim` (dkim_cmd.cpp). keygen's `out` empty: ./DOMAIN.SELECTOR.pem.
int dkim_keygen(const std::string& domain, const std::string& selector,
                const std::string& algorithm, int bits, const std::string& out);
int dkim_check(const std::string& config_path);
// `mta tracking token|decode` (tracking_cmd.cpp): tracking tokens signed
// with the config's tracking.secret, for debugging and tests.
struct TrackingTokenOptions {
  std::string config_path;
  std::string kind = "click";  // open | click | unsubscribe
  std::string message_id;      // hex; empty: a fresh id
  std::string recipient;
  std::string configuration_set;      // empty: the default set
  std::string url, link_tags;         // click
  uint32_t link_index = 0;            // click
  std::string list_name, list_topic;  // unsubscribe
  int64_t sent_ms = -1;               // -1: now
  bool print_url = false;             // the whole URL under base_url
};
int tracking_token(const TrackingTokenOptions& o);
int tracking_decode(const std::string& config_path, const std::string& token_or_url);

// `mta ctl`: the admin API over HTTP (ctl.cpp).
struct CtlOptions {
  std::string config_path;  // for http.listen and an admin key
  std::string url;          // overrides the config's http.listen
  std::string key_id;       // which admin key of the config
  std::string secret;       // overrides the config's key ($MTA_API_SECRET too)
  bool json = false;
};
int ctl_queue(const CtlOptions& o);
int ctl_suppression(const CtlOptions& o, const std::string& action, const std::string& address,
                    const std::string& reason);
int ctl_ips(const CtlOptions& o, const std::string& pool);
int ctl_suspend(const CtlOptions& o, bool suspend, const std::string& kind,
                const std::string& name);
int ctl_bounce_all(const CtlOptions& o, const std::string& destination);
int ctl_events(const CtlOptions& o, const std::string& action, const std::vector<std::string>& ids,
               size_t limit);

}  // namespace mta::app
