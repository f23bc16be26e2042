// Processor: turns a feedback report received on the SMTP listener into a
// Complaint event and suppression entries.
//
// For each report: parse it (arf.hpp); find the message it is about by the
// reported copy's X-MTA-Message-ID, else its Message-ID, in the feedback
// records (record.hpp) or, for a message still queued, the spool; decide
// who complained; then write the Complaint event and the COMPLAINT
// suppression entries in one synced batch, and only then answer.
//
// A report that is not a feedback report, or is about no message of ours,
// is still answered 250 (and logged, and counted in
// mta_feedback_reports_total{result}): providers do not act on a rejection,
// so refusing would only make them retry or drop the address from their
// loop. Only a storage failure gets a 4xx, so the provider retries.
//
// Threads: submit() may be called from any thread; the work (RocksDB reads)
// runs on the processor's own thread, never on an I/O thread; `done` runs on
// that thread or the store's commit thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace mta::store {
class Store;
}

namespace mta::feedback {

struct Reply {
  int code = 250;
  std::string enhanced;
  std::string text;
};

class Processor final {
 public:
  using Done = std::function<void(Reply)>;

  explicit Processor(store::Store& store);
  ~Processor();  // handles every report already submitted, then stops
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  // `report` is the whole mail as received; `client_ip` who sent it.
  void submit(std::string report, std::string client_ip, Done done);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mta::feedback
