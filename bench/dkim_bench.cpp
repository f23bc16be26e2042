// DKIM signing cost per message on one core: RSA-2048, Ed25519 and both
// (dual signing), on a ~20 KB message, with each engine (native: keys parsed
// once; OpenDKIM: the key PEM parsed again by dkim_sign() for every
// signature). Also the cost of parsing a PEM key alone, and of the bare
// OpenSSL signature, to show where the time goes.
//   mta_dkim_bench [seconds per case, default 2]
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "mta/dkim/keys.hpp"
#include "mta/dkim/signer.hpp"

using namespace mta::dkim;
using Clock = std::chrono::steady_clock;

namespace {

std::string message_of(size_t body_bytes) {
  std::string m =
      "From: Newsletter <news@example.com>\r\n"
      "To: someone@example.org\r\n"
      "Subject: Your weekly digest\r\n"
      "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
      "Message-ID: <bench@example.com>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "List-Unsubscribe: <https://t.example.com/u/abcdef>\r\n"
      "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
      "X-MTA-Message-ID: <0000018c-bench>\r\n"
      "\r\n";
  const std::string line =
      "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do  eiusmod.</p>\r\n";
  while (m.size() < body_bytes) m += line;
  return m;
}

template <class F>
double per_second(double seconds, F&& f) {
  f();  // warm up
  long n = 0;
  auto start = Clock::now();
  auto until = start + std::chrono::duration<double>(seconds);
  Clock::time_point now;
  do {
    for (int i = 0; i < 10; ++i) f();
    n += 10;
    now = Clock::now();
  } while (now < until);
  return double(n) / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  char tmpl[] = "/tmp/mta-dkim-bench-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string rsa = dir + "/rsa.pem", ed = dir + "/ed.pem";
  if (!generate_key(rsa, Algorithm::kRsaSha256, 2048).ok() ||
      !generate_key(ed, Algorithm::kEd25519Sha256).ok()) {
    std::fprintf(stderr, "keygen failed\n");
    return 1;
  }
  std::string msg = message_of(20 * 1024);
  std::printf("message: %zu bytes; %.1f s per case; one thread\n", msg.size(), seconds);
  size_t sink = 0;
  for (Engine engine : {Engine::kNative, Engine::kOpenDkim}) {
    auto signer = Signer::load(
        {
            {"rsa.example.com", "r1", rsa, Algorithm::kRsaSha256, {}},
            {"ed.example.com", "e1", ed, Algorithm::kEd25519Sha256, {}},
            {"dual.example.com", "r1", rsa, Algorithm::kRsaSha256, {}},
            {"dual.example.com", "e1", ed, Algorithm::kEd25519Sha256, {}},
        },
        engine);
    if (!signer.ok()) {
      std::fprintf(stderr, "%s\n", signer.error().message.c_str());
      return 1;
    }
    const auto& s = **signer;
    for (const char* d : {"rsa.example.com", "ed.example.com", "dual.example.com"}) {
      double r = per_second(seconds, [&] {
        auto sig = s.sign(msg, d);
        if (!sig.ok()) {
          std::fprintf(stderr, "%s\n", sig.error().message.c_str());
          std::exit(1);
        }
        sink += sig->size();
      });
      std::printf("%-8s sign %-17s %7.0f messages/s %8.1f us/message\n",
                  engine == Engine::kNative ? "native" : "opendkim", d, r, 1e6 / r);
    }
  }
  for (const auto& [name, path, alg] : {std::tuple{"rsa-2048", rsa, Algorithm::kRsaSha256},
                                        std::tuple{"ed25519", ed, Algorithm::kEd25519Sha256}}) {
    std::string pem = *read_private_key_pem(path, alg);
    double r = per_second(seconds, [&] {
      BIO* b = BIO_new_mem_buf(pem.data(), int(pem.size()));
      EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
      sink += k != nullptr;
      EVP_PKEY_free(k);
      BIO_free(b);
    });
    std::printf("PEM parse %-21s %7.0f keys/s     %8.1f us/key\n", name, r, 1e6 / r);
    BIO* b = BIO_new_mem_buf(pem.data(), int(pem.size()));
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
    BIO_free(b);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned char digest[32] = {1}, sig[512];
    r = per_second(seconds, [&] {
      size_t len = sizeof sig;
      EVP_MD_CTX_reset(ctx);
      EVP_DigestSignInit(ctx, nullptr, alg == Algorithm::kRsaSha256 ? EVP_sha256() : nullptr,
                         nullptr, k);
      sink += EVP_DigestSign(ctx, sig, &len, digest, sizeof digest);
    });
    std::printf("bare OpenSSL signature %-8s %7.0f signatures/s %5.1f us/signature\n", name, r,
                1e6 / r);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
  }
  std::filesystem::remove_all(dir);
  return sink == 0;
}
