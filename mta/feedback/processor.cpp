#include "mta/feedback/processor.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "mta/core/id.hpp"
#include "mta/core/net.hpp"
#include "mta/events/outbox.hpp"
#include "mta/feedback/arf.hpp"
#include "mta/feedback/record.hpp"
#include "mta/metrics/metrics.hpp"
#include "mta/queue/scheduler.hpp"
#include "mta/queue/spool.hpp"
#include "mta/store/store.hpp"

namespace mta::feedback {
namespace {

metrics::Counter reports(const char* result) {
  return metrics::counter("mta_feedback_reports_total",
                          "Feedback (complaint) reports received, by what became of them",
                          {{"result", result}});
}

// A value from a report, fit for a log line: printable ASCII, bounded.
std::string loggable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct Processor::Impl {
  explicit Impl(store::Store& s) : store(s) {}

  store::Store& store;
  struct Job {
    std::string report;
    std::string client_ip;
    Done done;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool stopping = false;
  std::thread thread;

  metrics::Counter complaint = reports("complaint");
  metrics::Counter not_arf = reports("not_arf");
  metrics::Counter unknown_message = reports("unknown_message");
  metrics::Counter storage_error = reports("storage_error");

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        job = std::move(queue.front());
        queue.pop_front();
      }
      handle(std::move(job));
    }
  }

  void fail(const Done& done, const std::string& what) {
    storage_error.inc();
    spdlog::error("feedback=storage_error error=\"{}\"", what);
    done({451, "4.3.0", "Temporary storage failure, try again later"});
  }

  // The message a report is about: by X-MTA-Message-ID, else Message-ID;
  // from the feedback records, else from the spool (still queued).
  struct Found {
    std::optional<queue::Message> message;
    std::string matched_by;
    std::string error;
  };
  Found find(const Report& r) {
    std::optional<core::MessageId> id;
    std::string by;
    if (!r.mta_message_id.empty()) {
      id = core::MessageId::from_hex(r.mta_message_id);
      by = "X-MTA-Message-ID";
    }
    if (!id && !r.message_id.empty()) {
      auto m = find_by_message_id(store, r.message_id);
      if (!m) return {std::nullopt, {}, m.error().message};
      id = *m;
      by = "Message-ID";
    }
    if (!id) return {};
    auto rec = find_record(store, *id);
    if (!rec) return {std::nullopt, {}, rec.error().message};
    if (rec->has_value()) return {std::move(**rec), by, {}};
    auto queued = queue::Spool::find(store, *id);
    if (!queued) return {std::nullopt, {}, queued.error().message};
    if (queued->has_value()) return {compact(**queued), by, {}};
    return {};
  }

  void handle(Job job) {
    auto parsed = parse_report(job.report);
    if (!parsed.report) {
      not_arf.inc();
      spdlog::info("feedback=discarded reason=not_arf client={} detail=\"{}\"", job.client_ip,
                   loggable(parsed.error));
      job.done({250, "2.0.0",
                "Ok, but not a feedback report (" + loggable(parsed.error) + "): discarded"});
      return;
    }
    const Report& r = *parsed.report;
    auto found = find(r);
    if (!found.error.empty()) return fail(job.done, found.error);
    if (!found.message) {
      unknown_message.inc();
      spdlog::info(
          "feedback=discarded reason=unknown_message client={} x_mta_message_id=\"{}\" "
          "message_id=\"{}\" user_agent=\"{}\"",
          job.client_ip, loggable(r.mta_message_id), loggable(r.message_id),
          loggable(r.user_agent));
      job.done({250, "2.0.0",
                "Ok, but the report matches no message sent from here (no known "
                "X-MTA-Message-ID or Message-ID): discarded"});
      return;
    }
    const queue::Message& m = *found.message;
    Complained who = complained_recipients(r, m.recipients);
    bool suppress = who.certain && suppresses(r.feedback_type);

    events::Complaint c;
    c.recipients = who.recipients;
    c.now_ms = now_ms();
    c.feedback_id = core::next_message_id().hex();
    c.feedback_type = r.feedback_type;
    c.user_agent = r.user_agent;
    if (auto t = parse_date(r.arrival_date); t && *t > 0) c.arrival_ms = *t;
    if (core::IpAddress::parse(r.source_ip)) c.outgoing_ip = r.source_ip;
    c.format = r.format == Report::Format::kArf ? "arf" : "jmrp-legacy";
    c.matched_by = found.matched_by;
    c.suppressed = suppress;
    c.reported_domain = r.reported_domain;
    c.reporting_client = job.client_ip;

    store::Batch b;
    events::add_complaint(b, m, c);
    std::string detail = "feedback-type=" + r.feedback_type;
    if (!r.user_agent.empty()) detail += " user-agent=" + r.user_agent;
    detail += " feedback-id=" + c.feedback_id;
    if (suppress)
      for (const auto& rcpt : who.recipients)
        queue::put_suppression(b, {rcpt, "COMPLAINT", c.now_ms, m.id.hex(), detail});

    std::string text = "Ok " + c.feedback_id + ": complaint about " + m.id.hex() + " recorded (" +
                       std::to_string(suppress ? who.recipients.size() : 0) +
                       " address(es) suppressed)";
    std::string log = fmt::format(
        "id={} feedback=complaint feedback_id={} type=\"{}\" user_agent=\"{}\" matched_by={} "
        "recipients={} suppressed={} client={}",
        m.id.hex(), c.feedback_id, loggable(r.feedback_type), loggable(r.user_agent),
        found.matched_by, who.recipients.size(), suppress, job.client_ip);
    store.commit(std::move(b), [this, done = std::move(job.done), text = std::move(text),
                                log = std::move(log)](core::Status s) {
      if (!s.ok()) return fail(done, s.error().message);
      complaint.inc();
      spdlog::info("{}", log);
      done({250, "2.0.0", text});
    });
  }
};

Processor::Processor(store::Store& store) : impl_(std::make_unique<Impl>(store)) {
  impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

Processor::~Processor() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  impl_->thread.join();
  // Commits run their callbacks in order: once this empty one is done, no
  // callback of ours is left to run.
  (void)impl_->store.commit_sync(store::Batch{});
}

void Processor::submit(std::string report, std::string client_ip, Done done) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->queue.push_back({std::move(report), std::move(client_ip), std::move(done)});
  }
  impl_->cv.notify_one();
}

}  // namespace mta::feedback
