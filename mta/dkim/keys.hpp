// DKIM keys: the checks a private key file must pass before the daemon signs
// with it, the DNS TXT record that publishes its public half, and key
// generation for `mta dkim keygen`. OpenSSL only; the signing itself is
// signer.hpp. Called at config load (check_key_file, so a bad key is a
// FILE:LINE:COL error), by Signer::load and by the `mta dkim` verbs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mta/core/result.hpp"

namespace mta::dkim {

enum class Algorithm { kRsaSha256, kEd25519Sha256 };

// "rsa-sha256" | "ed25519-sha256" (the a= names, RFC 6376 and RFC 8463).
std::optional<Algorithm> algorithm_from_string(std::string_view s);
const char* to_string(Algorithm a);

// The smallest RSA key we sign with (RFC 8301 says verifiers must reject
// smaller ones).
inline constexpr int kMinRsaBits = 1024;

// Why the private key file at `path` cannot be used to sign with `alg`, or
// nullopt when it can. Each reason names the file: missing or unreadable; not
// a regular file; readable by "other" (a DKIM key is a secret); not an
// unencrypted PEM private key (PKCS#1 "RSA PRIVATE KEY" or PKCS#8
// "PRIVATE KEY"); a key of another algorithm; RSA under kMinRsaBits.
std::optional<std::string> check_key_file(const std::string& path, Algorithm alg);

// The DNS TXT record value for the key's public half:
// "v=DKIM1; k=rsa; p=<base64 of the SubjectPublicKeyInfo DER>" or
// "v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte public key>" (RFC 8463).
// Does not insist on mode 0600 (so `mta dkim check` can show the record of a
// key it also reports as world-readable); the algorithm must match.
core::Result<std::string> public_record(const std::string& path, Algorithm alg);

// Writes a new private key (PKCS#8 PEM) with mode 0600; refuses to overwrite
// an existing file. RSA keys need rsa_bits >= kMinRsaBits (ignored for
// Ed25519).
core::Status generate_key(const std::string& path, Algorithm alg, int rsa_bits = 2048);

// The key at `path` as PKCS#8 PEM text, after the same type and size checks
// as check_key_file (but not the file mode). Signer keeps this text: OpenDKIM
// takes PEM that starts with "-----", which a file with a comment or a
// PKCS#1 header might not.
core::Result<std::string> read_private_key_pem(const std::string& path, Algorithm alg);

// `value` split into quoted strings of at most 255 characters, as a DNS TXT
// record needs ("..." "..."); the zone file and most DNS consoles take this.
std::string txt_chunks(std::string_view value);

namespace detail {
// The first queued OpenSSL error as text; clears the thread's queue. For
// this module's messages (keys.cpp, signer.cpp).
std::string openssl_error();
}  // namespace detail

}  // namespace mta::dkim
