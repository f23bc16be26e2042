// DKIM signing (RFC 6376, Ed25519 per RFC 8463): one DKIM-Signature header
// field per configured key of the signing domain, so a domain with an RSA and
// an Ed25519 key is dual-signed. Signatures are relaxed/relaxed with t= and
// without l=; the signed header set is kDefaultSignedHeaders (or a key's own
// list) and the kOverSignedHeaders among them are listed once more than they
// occur, so adding one later (a second From, a List-Unsubscribe) breaks the
// signature.
//
// Two engines make the same signatures. kNative (the default) canonicalizes
// (canon.hpp) and signs with OpenSSL keys parsed once at load. kOpenDkim uses
// libopendkim, whose dkim_sign() takes the key as PEM text and parses it
// again for every signature: with OpenSSL 3.0 that parse costs 0.5-0.8 ms,
// ten times an Ed25519 signature (bench/dkim_bench.cpp); and Debian 12's
// libopendkim (2.11.0~beta2) leaks about 1.3 KB per Ed25519 signature
// (tests/dkim/lsan.supp). So the daemon uses kNative; kOpenDkim stays as the
// reference the tests and the bench compare with. The tests run both and
// verify with OpenDKIM's verifier and with dkimpy.
//
// A Signer is immutable after load(): the delivery engine signs the final
// bytes of each message from several I/O threads at once, and a config reload
// builds a new Signer and swaps the shared_ptr. <dkim.h> is included only by
// signer.cpp (it needs a _Bool workaround in C++).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mta/core/result.hpp"
#include "mta/dkim/keys.hpp"

namespace mta::dkim {

// Signed when present, in this order in h=.
inline constexpr const char* kDefaultSignedHeaders[] = {"From",
                                                        "To",
                                                        "Cc",
                                                        "Subject",
                                                        "Date",
                                                        "Message-ID",
                                                        "Reply-To",
                                                        "In-Reply-To",
                                                        "References",
                                                        "MIME-Version",
                                                        "Content-Type",
                                                        "Content-Transfer-Encoding",
                                                        "List-Unsubscribe",
                                                        "List-Unsubscribe-Post",
                                                        "List-Id",
                                                        "Feedback-ID",
                                                        "X-MTA-Message-ID"};
// Of the signed headers, those listed once more than present (an absent one
// once): nobody downstream may add or prepend one without breaking the
// signature.
inline constexpr const char* kOverSignedHeaders[] = {"From",
                                                     "Subject",
                                                     "Date",
                                                     "To",
                                                     "Message-ID",
                                                     "List-Unsubscribe",
                                                     "List-Unsubscribe-Post",
                                                     "Content-Type",
                                                     "MIME-Version"};

struct KeySpec {
  std::string domain;       // d=, lowercase
  std::string selector;     // s=
  std::string private_key;  // path to the PEM file
  Algorithm algorithm = Algorithm::kRsaSha256;
  std::vector<std::string> headers;  // empty: kDefaultSignedHeaders; From is always signed
};

enum class Engine { kNative, kOpenDkim };

class Signer final {
 public:
  // Reads and checks every key file (check_key_file), keeps each key's PEM
  // text in memory and sets up OpenDKIM. Errors name the key
  // (selector._domainkey.domain and the path).
  static core::Result<std::shared_ptr<const Signer>> load(const std::vector<KeySpec>& keys,
                                                          Engine engine = Engine::kNative);

  // The d= domain to sign mail From `from_domain` with: a key domain equal to
  // it, else the nearest parent domain with keys (a.b.example.com ->
  // b.example.com -> example.com); "" when none. Case-insensitive.
  std::string signing_domain(std::string_view from_domain) const;
  bool has_domain(std::string_view domain) const;

  // One "DKIM-Signature: ...\r\n" header field (folded with CRLF) per key of
  // `domain`, concatenated, to be put in front of `message`. `message` is the
  // whole message as it will be sent: CRLF line ends, not dot-stuffed (one
  // not ending in CRLF is signed as SMTP delivers it: with one; a bare CR or
  // LF is signed as an ordinary character, and verifiers disagree on those,
  // so intake's CRLF normalisation matters). Errors:
  // no key for `domain`, a message OpenDKIM cannot parse (no From, a header
  // line without a colon), OpenSSL failures. Thread-safe.
  core::Result<std::string> sign(std::string_view message, std::string_view domain) const;

  size_t key_count() const;
  // The algorithms of `domain`'s keys, in signing order (for metrics).
  std::vector<Algorithm> algorithms(std::string_view domain) const;
  Engine engine() const { return engine_; }
  // "selector._domainkey.domain (algorithm)" of each key, for logs.
  std::vector<std::string> describe() const;

  ~Signer();
  Signer(const Signer&) = delete;
  Signer& operator=(const Signer&) = delete;

  struct Key;  // signer.cpp

 private:
  Signer();
  core::Result<std::string> sign_native(std::string_view message,
                                        const std::vector<const Key*>& keys) const;
  core::Result<std::string> sign_opendkim(std::string_view message, const Key& key) const;

  Engine engine_ = Engine::kNative;
  std::vector<std::unique_ptr<Key>> keys_;
  std::map<std::string, std::vector<const Key*>, std::less<>> by_domain_;
};

}  // namespace mta::dkim
