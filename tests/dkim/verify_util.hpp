// A DKIM verifier for the tests: OpenDKIM's own, with the public keys served
// from a temporary file instead of DNS (DKIM_QUERY_FILE).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace mta::dkim::test {

struct Verdict {
  int signatures = 0;               // DKIM-Signature fields found
  std::vector<std::string> passed;  // a= of each signature that verified
  std::vector<std::string> failed;  // "a=...: reason" of each that did not
  std::string error;                // the verifier could not run
};

// `records`: "selector._domainkey.domain" -> TXT value.
Verdict verify(std::string_view message, const std::map<std::string, std::string>& records);

// A scratch directory removed at the end of the scope.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// Writes `text` to `path` with `mode`.
void write_file(const std::string& path, const std::string& text, unsigned mode = 0600);
// A PEM key made with OpenSSL: "rsa" with `bits` (PKCS#8, or PKCS#1 when
// `pkcs1`), or "ed25519". The same arguments give the same key (cached).
std::string make_pem(const std::string& type, int bits = 2048, bool pkcs1 = false);

}  // namespace mta::dkim::test
