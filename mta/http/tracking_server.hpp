// The tracking listener (tracking.listen): click redirects, the open pixel
// and one-click unsubscribe, served by RESTinio on the daemon's io_context.
//
//   GET  /c/{token}      302 to the URL signed in the token (Cache-Control:
//                        no-store) and a Click event
//   GET  /o/{token}.gif  the 43-byte transparent GIF (no-cache headers) and
//                        an Open event
//   HEAD on both         the same headers, no body, no event; the token is
//                        remembered for a few seconds for the head-then-get
//                        machine rule
//   GET  /u/{token}      a confirmation page whose button POSTs: link
//                        scanners fetch GETs, so a GET never unsubscribes
//   POST /u/{token}      RFC 8058 one-click (body List-Unsubscribe=One-Click,
//                        or the page's form): the recipient is unsubscribed
//                        from the token's scope (queue::ListScope) and a
//                        Subscription event written, in one synced batch,
//                        answered 200 only after the commit; a repeat
//                        answers 200 without a second event
//   GET  /healthz        200
// A token that does not verify (bad MAC, wrong kind for the path,
// malformed) gets 404 with no Location and counts in
// mta_tracking_invalid_tokens_total; other paths 404, other methods 405.
// The only Location ever sent is a verified token's URL: no open redirect.
//
// Redirects and pixels answer before anything is written: the event
// (feedback record point get, then an unsynced commit) follows the answer.
//
// Client address: the TCP peer; when the peer is loopback (a reverse proxy
// on the same host terminating TLS), the first address of X-Forwarded-For
// instead, if it parses. Put nothing but such a proxy on loopback.
//
// Thread-safe: handlers run on any of the io_context's threads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mta/core/clock.hpp"
#include "mta/core/net.hpp"
#include "mta/core/result.hpp"

namespace asio {
class io_context;
}
namespace mta::store {
class Store;
}
namespace mta::tracking {
class MachineRules;
}

namespace mta::http {

struct TrackingOptions {
  core::HostPort listen;
  std::string base_url;
  std::vector<std::string> secrets;                     // current first, then previous ones
  std::shared_ptr<const tracking::MachineRules> rules;  // null: every request is human
  // The configured sets: metric labels take a token's set only when it is
  // one of these ("other" otherwise), so labels stay bounded.
  std::vector<std::string> configuration_sets;
};

class TrackingServer final {
 public:
  TrackingServer(asio::io_context& io, store::Store& store, const core::Clock& clock,
                 TrackingOptions o);
  ~TrackingServer();
  // Binds the listener. Call before the io_context runs.
  core::Status start();
  // Closes the listener; blocks until done. Call while the io_context runs.
  void stop();
  // SIGHUP: new secrets, rules, base_url and sets for new requests (listen
  // applies at restart).
  void reconfigure(TrackingOptions o);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mta::http
