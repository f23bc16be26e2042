// The admin API's view of data that other modules own: plain structs and
// the hooks through which the daemon (app/daemon.cpp) connects them. The
// HTTP side (routing, auth, parameters, SES-shaped replies and errors) is
// mta/api/server.cpp; a hook that is not set answers 501.
//
// Hooks run on the API's blocking worker threads, never on an I/O thread,
// so they may read RocksDB or wait for a lock. They must be thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace mta::api {

// An expected failure of a hook: the HTTP status and SES-style error code
// (NotFoundException 404, BadRequestException 400, ...) to answer with.
struct AdminError {
  int status = 500;
  std::string code = "InternalFailure";
  std::string message;
};
template <class T>
using AdminResult = std::variant<T, AdminError>;

// GET /v2/email/dedicated-ips: SES's DedicatedIp plus our warm-up detail.
struct DedicatedIp {
  std::string ip;
  std::string pool;
  std::string warmup_status = "DONE";  // "IN_PROGRESS" | "DONE" | "NOT_APPLICABLE"
  int warmup_percentage = 100;         // 0..100, SES's meaning
  uint32_t warmup_day = 0;             // 1.. while warming; 0 when warm
  uint64_t sent_today = 0;
  uint64_t limit_today = 0;  // 0: no limit
};

struct QueueGroup {
  std::string name;
  uint64_t messages = 0;
  uint64_t recipients = 0;  // envelopes still to deliver
  int64_t oldest_ms = 0;    // received time of the oldest message (Unix ms); 0 when empty
};

struct QueueSummary {
  uint64_t messages = 0;
  uint64_t recipients = 0;
  int64_t oldest_ms = 0;
  std::vector<QueueGroup> by_configuration_set;
  std::vector<QueueGroup> by_pool;
  std::vector<QueueGroup> by_destination;  // recipient domain, largest first
  // Destination provider (shaping.providers, as the delivery engine last
  // routed the domain; "(not yet routed)" for domains it has not seen).
  std::vector<QueueGroup> by_provider;
};

enum class SuspendKind { kPool, kIp, kDestination };

struct DeadLetter {
  std::string id;
  std::string destination;  // event destination name
  std::string event_type;
  std::string message_id;
  int64_t failed_ms = 0;
  uint32_t attempts = 0;
  std::string last_error;
};

struct AdminHooks {
  // pool "" = every pool; an unknown pool → AdminError{404, "NotFoundException"}.
  std::function<AdminResult<std::vector<DedicatedIp>>(const std::string& pool)> dedicated_ips;
  // Unset: the server computes it from the spool (queue_summary.hpp).
  std::function<AdminResult<QueueSummary>()> queue_summary;
  // Suspends (true) or resumes (false) sending from a pool or IP, or to a
  // destination domain. Unknown name → 404.
  std::function<AdminResult<bool>(SuspendKind kind, const std::string& name, bool suspend)> suspend;
  // Bounces every queued recipient at a destination domain; how many.
  std::function<AdminResult<uint64_t>(const std::string& destination)> bounce_all;
  std::function<AdminResult<std::vector<DeadLetter>>(size_t limit)> dead_letters;
  // Replays the given dead letters (all when `ids` is empty); how many.
  std::function<AdminResult<uint64_t>(const std::vector<std::string>& ids)> replay_dead_letters;
};

}  // namespace mta::api
