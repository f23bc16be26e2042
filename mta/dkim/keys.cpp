#include "mta/dkim/keys.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "mta/core/base64.hpp"

namespace mta::dkim {
namespace detail {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace detail

using detail::openssl_error;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

constexpr int kMaxRsaBits = 8192;
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

// An encrypted key fails to load instead of prompting on the terminal.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

core::Result<std::string> read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return core::make_error("cannot read " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxKeyFileBytes) {
      std::fclose(f);
      return core::make_error(path + " is not a PEM private key (larger than 64 KiB)");
    }
  }
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) return core::make_error("cannot read " + path + ": " + std::strerror(err));
  return text;
}

const char* algorithm_key_name(Algorithm a) {
  return a == Algorithm::kRsaSha256 ? "an RSA" : "an Ed25519";
}

// Parses `text` (the contents of `path`) as an unencrypted PEM private key of
// `alg`. Error texts name the file.
core::Result<Pkey> parse_key(const std::string& path, const std::string& text, Algorithm alg) {
  static constexpr const char* kExpected =
      "expected PKCS#1 \"RSA PRIVATE KEY\" or PKCS#8 \"PRIVATE KEY\"";
  size_t begin = text.find("-----BEGIN ");
  if (begin == std::string::npos)
    return core::make_error(path + " is not a PEM private key (" + kExpected + ")");
  size_t label_end = text.find("-----", begin + 11);
  std::string label = label_end == std::string::npos
                          ? std::string()
                          : text.substr(begin + 11, label_end - (begin + 11));
  if (label == "ENCRYPTED PRIVATE KEY" ||
      (label == "RSA PRIVATE KEY" && text.find("Proc-Type: 4,ENCRYPTED") != std::string::npos))
    return core::make_error(path +
                            " is encrypted (has a passphrase); DKIM keys must be unencrypted");
  if (label != "RSA PRIVATE KEY" && label != "PRIVATE KEY")
    return core::make_error(path + " is not a PEM private key (found \"" + label + "\"; " +
                            kExpected + ")");

  Bio bio(BIO_new_mem_buf(text.data() + begin, static_cast<int>(text.size() - begin)));
  if (!bio) return core::make_error("out of memory reading " + path);
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) return core::make_error(path + " is not a valid PEM private key: " + openssl_error());

  int id = EVP_PKEY_get_base_id(key.get());
  if (id == EVP_PKEY_RSA) {
    if (alg != Algorithm::kRsaSha256)
      return core::make_error(path + " is an RSA key, but its algorithm is " + to_string(alg) +
                              " (use rsa-sha256 for it)");
    int bits = EVP_PKEY_get_bits(key.get());
    if (bits < kMinRsaBits)
      return core::make_error(path + " is a " + std::to_string(bits) +
                              "-bit RSA key; DKIM needs at least 1024 bits (2048 recommended)");
    return key;
  }
  if (id == EVP_PKEY_ED25519) {
    if (alg != Algorithm::kEd25519Sha256)
      return core::make_error(path + " is an Ed25519 key, but its algorithm is " + to_string(alg) +
                              " (use ed25519-sha256 for it)");
    return key;
  }
  const char* type = EVP_PKEY_get0_type_name(key.get());
  return core::make_error(path + " is a " + std::string(type ? type : "non-RSA") + " key; DKIM " +
                          to_string(alg) + " needs " + algorithm_key_name(alg) + " key");
}

core::Result<Pkey> load_key(const std::string& path, Algorithm alg) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_key(path, *text, alg);
}

}  // namespace

std::optional<Algorithm> algorithm_from_string(std::string_view s) {
  if (s == "rsa-sha256") return Algorithm::kRsaSha256;
  if (s == "ed25519-sha256") return Algorithm::kEd25519Sha256;
  return std::nullopt;
}

const char* to_string(Algorithm a) {
  switch (a) {
    case Algorithm::kRsaSha256:
      return "rsa-sha256";
    case Algorithm::kEd25519Sha256:
      return "ed25519-sha256";
  }
  return "?";
}

std::optional<std::string> check_key_file(const std::string& path, Algorithm alg) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return "cannot read " + path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + " is not a regular file";
  if (st.st_mode & S_IROTH) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return path + " is world-readable (mode " + mode + "); chmod 600 it";
  }
  auto key = load_key(path, alg);
  if (!key) return key.error().message;
  return std::nullopt;
}

core::Result<std::string> read_private_key_pem(const std::string& path, Algorithm alg) {
  auto key = load_key(path, alg);
  if (!key) return key.error();
  Bio out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key->get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return core::make_error("cannot encode " + path + ": " + openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

core::Result<std::string> public_record(const std::string& path, Algorithm alg) {
  auto key = load_key(path, alg);
  if (!key) return key.error();
  std::string der;
  if (alg == Algorithm::kEd25519Sha256) {
    unsigned char raw[32];
    size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key->get(), raw, &len) != 1 || len != sizeof raw)
      return core::make_error("cannot get the public key of " + path + ": " + openssl_error());
    der.assign(reinterpret_cast<const char*>(raw), len);
    return "v=DKIM1; k=ed25519; p=" + core::base64_encode(der);
  }
  int len = i2d_PUBKEY(key->get(), nullptr);
  if (len <= 0)
    return core::make_error("cannot encode the public key of " + path + ": " + openssl_error());
  der.resize(static_cast<size_t>(len));
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(key->get(), &p) != len)
    return core::make_error("cannot encode the public key of " + path + ": " + openssl_error());
  return "v=DKIM1; k=rsa; p=" + core::base64_encode(der);
}

core::Status generate_key(const std::string& path, Algorithm alg, int rsa_bits) {
  if (alg == Algorithm::kRsaSha256 && (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits))
    return core::make_error("an RSA key needs 1024 to 8192 bits (2048 recommended), not " +
                            std::to_string(rsa_bits));
  Pkey key(alg == Algorithm::kRsaSha256
               ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits))
               : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return core::make_error("key generation failed: " + openssl_error());
  Bio out(BIO_new(BIO_s_mem()));
  if (!out ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return core::make_error("cannot encode the new key: " + openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);

  // O_EXCL: never overwrite a key that may already be published.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return core::make_error(path + " already exists; not overwriting it");
    return core::make_error("cannot create " + path + ": " + std::strerror(errno));
  }
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return core::make_error(std::string(what) + " " + path + ": " + std::strerror(err));
  };
  // The umask may only have narrowed 0600; make it exactly 0600.
  if (::fchmod(fd, 0600) != 0) return fail("cannot chmod");
  size_t off = 0, total = static_cast<size_t>(n);
  while (off < total) {
    ssize_t w = ::write(fd, data + off, total - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    off += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    return core::make_error("cannot write " + path + ": " + std::strerror(err));
  }
  return core::Ok{};
}

std::string txt_chunks(std::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size() || i == 0; i += 255) {
    if (!out.empty()) out += ' ';
    out += '"';
    out += value.substr(i, 255);
    out += '"';
    if (value.empty()) break;
  }
  return out;
}

}  // namespace mta::dkim
