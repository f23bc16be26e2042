// `mta dkim keygen` and `mta dkim check`: make a signing key and print the
// DNS record to publish; show the record of every configured key and whether
// the daemon can sign with it.
#include <filesystem>
#include <iostream>
#include <map>

#include "mta/app/commands.hpp"
#include "mta/config/config.hpp"
#include "mta/dkim/keys.hpp"
#include "mta/dkim/signer.hpp"

namespace mta::app {
namespace {

// The DNS zone line for a key's public record.
std::string zone_line(const std::string& selector, const std::string& domain,
                      const std::string& record) {
  return selector + "._domainkey." + domain + ". IN TXT " + dkim::txt_chunks(record);
}

bool dns_label_chars(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string::npos)
    return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  return true;
}

}  // namespace

int dkim_keygen(const std::string& domain_arg, const std::string& selector,
                const std::string& algorithm, int bits, const std::string& out_arg) {
  std::string domain = domain_arg;
  while (!domain.empty() && domain.back() == '.') domain.pop_back();
  for (auto& c : domain)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  if (!dns_label_chars(domain)) {
    std::cerr << "mta: not a domain name: " << domain_arg << "\n";
    return 2;
  }
  if (!dns_label_chars(selector)) {
    std::cerr << "mta: a selector is letters, digits, '-', '_' and '.', not: " << selector << "\n";
    return 2;
  }
  // "rsa" and "ed25519" are accepted as short names.
  auto alg = dkim::algorithm_from_string(algorithm == "rsa"       ? "rsa-sha256"
                                         : algorithm == "ed25519" ? "ed25519-sha256"
                                                                  : algorithm);
  if (!alg) {
    std::cerr << "mta: --algorithm is rsa-sha256 or ed25519-sha256, not " << algorithm << "\n";
    return 2;
  }
  if (*alg == dkim::Algorithm::kRsaSha256 && (bits < dkim::kMinRsaBits || bits > 8192)) {
    std::cerr << "mta: --bits must be 1024 to 8192 (2048 recommended), not " << bits << "\n";
    return 2;
  }
  std::string out = out_arg.empty() ? domain + "." + selector + ".pem" : out_arg;
  if (auto s = dkim::generate_key(out, *alg, bits); !s.ok()) {
    std::cerr << "mta: " << s.error().message << "\n";
    return 1;
  }
  auto record = dkim::public_record(out, *alg);
  if (!record.ok()) {
    std::cerr << "mta: " << record.error().message << "\n";
    return 1;
  }
  std::error_code ec;
  std::string abs = std::filesystem::absolute(out, ec).lexically_normal().string();
  if (ec) abs = out;
  std::cout << "Wrote " << abs << " (" << dkim::to_string(*alg)
            << (*alg == dkim::Algorithm::kRsaSha256 ? ", " + std::to_string(bits) + " bits" : "")
            << ", mode 0600).\n\n"
            << "Publish this DNS TXT record:\n"
            << zone_line(selector, domain, *record) << "\n\n"
            << "Add the key to the dkim: list of the config:\n"
            << "  - { domain: " << domain << ", selector: " << selector << ", private_key: " << abs
            << ", algorithm: " << dkim::to_string(*alg) << " }\n";
  return 0;
}

int dkim_check(const std::string& path) {
  auto r = config::load_file(path);
  if (r.error) {
    std::cerr << r.error->to_string() << "\n";
    return 2;
  }
  const config::Config& cfg = *r.config;
  if (cfg.dkim.empty()) {
    std::cout << "No dkim keys in " << path << ": mail goes out unsigned.\n";
    return 0;
  }
  bool all_ok = true;
  std::vector<dkim::KeySpec> specs;
  for (const auto& k : cfg.dkim) {
    auto alg = dkim::algorithm_from_string(k.algorithm);
    std::cout << k.domain << "  selector " << k.selector << "  " << k.algorithm << "  "
              << k.private_key << "\n";
    if (!alg) {
      std::cout << "  key: unusable: unknown algorithm " << k.algorithm << "\n";
      all_ok = false;
      continue;
    }
    auto why = dkim::check_key_file(k.private_key, *alg);
    std::cout << "  key: " << (why ? "unusable: " + *why : std::string("ok")) << "\n";
    if (why) all_ok = false;
    auto record = dkim::public_record(k.private_key, *alg);
    if (record.ok())
      std::cout << "  " << zone_line(k.selector, k.domain, *record) << "\n";
    else
      std::cout << "  no record: " << record.error().message << "\n";
    if (!why) specs.push_back(dkim::KeySpec{k.domain, k.selector, k.private_key, *alg, k.headers});
  }
  // Sign a test message per domain the way the daemon will.
  auto signer = dkim::Signer::load(specs);
  if (!signer.ok()) {
    std::cout << "signer: " << signer.error().message << "\n";
    return 2;
  }
  std::map<std::string, bool> domains;
  for (const auto& s : specs) domains[s.domain] = true;
  for (const auto& [d, _] : domains) {
    std::string msg = "From: <dkim-check@" + d + ">\r\nSubject: mta dkim check\r\n\r\ntest\r\n";
    auto sig = (*signer)->sign(msg, d);
    std::cout << "test signature for " << d << ": "
              << (sig.ok() ? std::string("ok") : sig.error().message) << "\n";
    if (!sig.ok()) all_ok = false;
  }
  return all_ok ? 0 : 2;
}

}  // namespace mta::app
