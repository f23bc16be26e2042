// Render: the bytes one delivery sends, made from the spooled message just
// before the transaction, per recipient when they differ.
//
// In order (each step sees the previous one's output; DKIM signs the final
// bytes):
//  1. Tracking (sets with tracking.opens/clicks): HTML links go through
//     {base_url}/c/{token}, a 1x1 GIF {base_url}/o/{token}.gif is added
//     (mta/rewrite does the MIME and HTML work, mta/tracking signs the
//     tokens: per recipient, so opens and clicks are attributed).
//  2. One-click unsubscribe (sets with list_unsubscribe, or messages with
//     list options): List-Unsubscribe: <{base_url}/u/{token}>[, <mailto:>]
//     and List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058). A
//     submitter's own List-Unsubscribe is kept for set-level unsubscribe
//     and replaced when the message names a contact list.
//  3. DKIM: keys of the From domain (exact, then a parent domain), else
//     the set's dkim_domain; one signature per key (RSA + Ed25519).
//
// The spool keeps one copy of the body; a rendered copy lives only for its
// transaction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mta/core/result.hpp"
#include "mta/queue/spool.hpp"

namespace mta::config {
struct Config;
struct ConfigurationSet;
}  // namespace mta::config
namespace mta::dkim {
class Signer;
}

namespace mta::delivery {

// Whether a message of `set` gets a different body per recipient (then each
// recipient is its own transaction).
bool per_recipient(const config::Config& cfg, const config::ConfigurationSet& set,
                   const queue::Message& m);

struct Rendered {
  std::string message;       // CRLF, not dot-stuffed
  std::string dkim_domain;   // d= used; "" unsigned
  bool dkim_failed = false;  // signing failed and dkim_failure is send_unsigned
  std::string dkim_error;
};

// `recipient`: the one recipient of a per-recipient render; "" otherwise
// (then no tracking or unsubscribe link is added). `signer` may be null.
// Error: signing failed and the config says defer (the text says why).
core::Result<Rendered> render(const config::Config& cfg, const config::ConfigurationSet& set,
                              const dkim::Signer* signer, const queue::Message& m,
                              std::string_view recipient, std::string body, int64_t now_ms);

}  // namespace mta::delivery
