// The verbs of the mta command line. Each returns the process exit code:
// 0 success, 1 runtime failure, 2 bad usage or bad config.
#pragma once

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
int suppression_list(const std::string& config_path, bool json);
int suppression_edit(const std::string& config_path, const std::string& address,
                     const std::string& reason, bool add);

}  // namespace mta::app
