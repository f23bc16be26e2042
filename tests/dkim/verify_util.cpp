#include "verify_util.hpp"

#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

namespace mta::dkim::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/mta-dkim-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void write_file(const std::string& path, const std::string& text, unsigned mode) {
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
  }
  ::chmod(path.c_str(), mode);
}

std::string make_pem(const std::string& type, int bits, bool pkcs1) {
  // RSA key generation is slow (up to a second under load), and every test
  // case runs once per engine: one key per kind per process is enough.
  static std::mutex mu;
  static std::map<std::string, std::string> made;
  std::string id = type + "/" + std::to_string(bits) + (pkcs1 ? "/1" : "/8");
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = made.find(id); it != made.end()) return it->second;
  EVP_PKEY* key = type == "rsa" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(bits))
                                : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!key) throw std::runtime_error("keygen failed");
  BIO* b = BIO_new(BIO_s_mem());
  int ok = pkcs1
               ? PEM_write_bio_PrivateKey_traditional(b, key, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, size_t(n));
  BIO_free(b);
  EVP_PKEY_free(key);
  if (ok != 1) throw std::runtime_error("PEM write failed");
  made[id] = out;
  return out;
}

Verdict verify(std::string_view message, const std::map<std::string, std::string>& records) {
  Verdict v;
  TempDir dir;
  std::string keys = dir.file("keys");
  std::string text;
  for (const auto& [name, value] : records) text += name + "\t" + value + "\n";
  write_file(keys, text);

  DKIM_LIB* lib = dkim_init(nullptr, nullptr);
  dkim_query_t qm = DKIM_QUERY_FILE;
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qm, sizeof qm);
  dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, const_cast<char*>(keys.c_str()),
               keys.size());
  DKIM_STAT st = DKIM_STAT_OK;
  DKIM* d = dkim_verify(lib, reinterpret_cast<const unsigned char*>("test"), nullptr, &st);
  if (!d) {
    v.error = std::string("dkim_verify: ") + dkim_getresultstr(st);
    dkim_close(lib);
    return v;
  }
  auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(message.data()));
  st = dkim_chunk(d, data, message.size());
  if (st == DKIM_STAT_OK) st = dkim_chunk(d, nullptr, 0);
  if (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG) st = dkim_eom(d, nullptr);
  DKIM_SIGINFO** sigs = nullptr;
  int nsigs = 0;
  if (dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK) {
    v.signatures = nsigs;
    for (int i = 0; i < nsigs; ++i) {
      dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
      dkim_sig_getsignalg(sigs[i], &alg);
      std::string a = alg == DKIM_SIGN_RSASHA256       ? "rsa-sha256"
                      : alg == DKIM_SIGN_ED25519SHA256 ? "ed25519-sha256"
                                                       : "other";
      if (DKIM_SIG_CHECK(sigs[i]))
        v.passed.push_back(a);
      else
        v.failed.push_back(a + ": " + dkim_sig_geterrorstr(dkim_sig_geterror(sigs[i])) +
                           (dkim_sig_getbh(sigs[i]) == DKIM_SIGBH_MISMATCH ? " (body hash)" : ""));
    }
  } else if (st != DKIM_STAT_NOSIG) {
    v.error = std::string("verify: ") + dkim_getresultstr(st);
  }
  dkim_free(d);
  dkim_close(lib);
  return v;
}

}  // namespace mta::dkim::test
