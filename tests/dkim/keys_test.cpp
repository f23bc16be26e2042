#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>

#include "mta/core/base64.hpp"
#include "mta/dkim/keys.hpp"
#include "verify_util.hpp"

using namespace mta::dkim;
using mta::dkim::test::make_pem;
using mta::dkim::test::TempDir;
using mta::dkim::test::write_file;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

unsigned mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_SUITE("dkim") {
  TEST_CASE("algorithm names round-trip and unknown names are rejected") {
    CHECK(algorithm_from_string("rsa-sha256") == Algorithm::kRsaSha256);
    CHECK(algorithm_from_string("ed25519-sha256") == Algorithm::kEd25519Sha256);
    CHECK_FALSE(algorithm_from_string("rsa-sha1"));
    CHECK_FALSE(algorithm_from_string("ed25519"));
    CHECK_FALSE(algorithm_from_string(""));
    CHECK(std::string(to_string(Algorithm::kRsaSha256)) == "rsa-sha256");
    CHECK(std::string(to_string(Algorithm::kEd25519Sha256)) == "ed25519-sha256");
  }

  TEST_CASE("check_key_file accepts PKCS#1 and PKCS#8 RSA keys and PKCS#8 Ed25519 keys") {
    TempDir dir;
    write_file(dir.file("pkcs1.pem"), make_pem("rsa", 1024, true));
    write_file(dir.file("pkcs8.pem"), make_pem("rsa", 2048));
    write_file(dir.file("ed.pem"), make_pem("ed25519"));
    write_file(dir.file("group.pem"), make_pem("ed25519"), 0640);
    CHECK(contains(make_pem("rsa", 1024, true), "BEGIN RSA PRIVATE KEY"));
    CHECK(check_key_file(dir.file("pkcs1.pem"), Algorithm::kRsaSha256) == std::nullopt);
    CHECK(check_key_file(dir.file("pkcs8.pem"), Algorithm::kRsaSha256) == std::nullopt);
    CHECK(check_key_file(dir.file("ed.pem"), Algorithm::kEd25519Sha256) == std::nullopt);
    CHECK(check_key_file(dir.file("group.pem"), Algorithm::kEd25519Sha256) == std::nullopt);
  }

  TEST_CASE("check_key_file says why a key cannot be used") {
    TempDir dir;
    std::string rsa = make_pem("rsa", 2048), ed = make_pem("ed25519");
    write_file(dir.file("open.pem"), rsa, 0644);
    write_file(dir.file("garbage.pem"), "not a key at all\n");
    write_file(dir.file("pub.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    write_file(dir.file("broken.pem"),
               "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
    write_file(
        dir.file("enc.pem"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
    write_file(dir.file("small.pem"), make_pem("rsa", 512));
    write_file(dir.file("ed.pem"), ed);
    write_file(dir.file("rsa.pem"), rsa);
    write_file(dir.file("empty.pem"), "");

    struct Case {
      std::string file;
      Algorithm alg;
      std::string want;
    } cases[] = {
        {"missing.pem", Algorithm::kRsaSha256, "missing.pem: No such file or directory"},
        {"open.pem", Algorithm::kRsaSha256, "open.pem is world-readable (mode 0644); chmod 600 it"},
        {"garbage.pem", Algorithm::kRsaSha256, "garbage.pem is not a PEM private key"},
        {"empty.pem", Algorithm::kRsaSha256, "empty.pem is not a PEM private key"},
        {"pub.pem", Algorithm::kRsaSha256, "found \"PUBLIC KEY\""},
        {"broken.pem", Algorithm::kRsaSha256, "broken.pem is not a valid PEM private key"},
        {"enc.pem", Algorithm::kRsaSha256, "enc.pem is encrypted"},
        {"small.pem", Algorithm::kRsaSha256, "small.pem is a 512-bit RSA key"},
        {"ed.pem", Algorithm::kRsaSha256,
         "ed.pem is an Ed25519 key, but its algorithm is rsa-sha256"},
        {"rsa.pem", Algorithm::kEd25519Sha256,
         "rsa.pem is an RSA key, but its algorithm is ed25519-sha256"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.file);
      auto got = check_key_file(dir.file(c.file), c.alg);
      REQUIRE(got);
      CAPTURE(*got);
      CHECK(contains(*got, c.want));
    }
    // A directory is not a key file.
    auto got = check_key_file(dir.path, Algorithm::kRsaSha256);
    REQUIRE(got);
    CHECK(contains(*got, "is not a regular file"));
  }

  TEST_CASE("generate_key writes a 0600 PKCS#8 key and public_record publishes it") {
    TempDir dir;
    std::string rsa = dir.file("rsa.pem"), ed = dir.file("ed.pem");
    REQUIRE(generate_key(rsa, Algorithm::kRsaSha256, 1024).ok());
    REQUIRE(generate_key(ed, Algorithm::kEd25519Sha256).ok());
    CHECK(mode_of(rsa) == 0600);
    CHECK(mode_of(ed) == 0600);
    CHECK(check_key_file(rsa, Algorithm::kRsaSha256) == std::nullopt);
    CHECK(check_key_file(ed, Algorithm::kEd25519Sha256) == std::nullopt);
    auto pem = read_private_key_pem(rsa, Algorithm::kRsaSha256);
    REQUIRE(pem.ok());
    CHECK(pem->rfind("-----BEGIN PRIVATE KEY-----", 0) == 0);

    auto r = public_record(rsa, Algorithm::kRsaSha256);
    REQUIRE(r.ok());
    REQUIRE(r->rfind("v=DKIM1; k=rsa; p=", 0) == 0);
    auto der = mta::core::base64_decode(r->substr(18));
    REQUIRE(der);
    // SubjectPublicKeyInfo of a 1024-bit key: 162 bytes.
    CHECK(der->size() == 162);

    auto e = public_record(ed, Algorithm::kEd25519Sha256);
    REQUIRE(e.ok());
    REQUIRE(e->rfind("v=DKIM1; k=ed25519; p=", 0) == 0);
    auto raw = mta::core::base64_decode(e->substr(22));
    REQUIRE(raw);
    CHECK(raw->size() == 32);  // RFC 8463: the bare key, not SPKI

    // The wrong algorithm is an error, not a record.
    CHECK_FALSE(public_record(ed, Algorithm::kRsaSha256).ok());
    CHECK_FALSE(public_record(dir.file("none.pem"), Algorithm::kRsaSha256).ok());
  }

  TEST_CASE("generate_key refuses to overwrite and refuses small RSA keys") {
    TempDir dir;
    std::string p = dir.file("k.pem");
    write_file(p, "keep me");
    auto s = generate_key(p, Algorithm::kEd25519Sha256);
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.error().message, "already exists"));
    auto r = public_record(p, Algorithm::kEd25519Sha256);
    CHECK_FALSE(r.ok());  // still "keep me"

    auto small = generate_key(dir.file("small.pem"), Algorithm::kRsaSha256, 512);
    REQUIRE_FALSE(small.ok());
    CHECK(contains(small.error().message, "not 512"));
    CHECK(check_key_file(dir.file("small.pem"), Algorithm::kRsaSha256));  // nothing written

    auto nodir = generate_key(dir.file("no/such/dir.pem"), Algorithm::kEd25519Sha256);
    REQUIRE_FALSE(nodir.ok());
    CHECK(contains(nodir.error().message, "cannot create"));
  }

  TEST_CASE("txt_chunks splits a record into quoted strings of at most 255 characters") {
    CHECK(txt_chunks("v=DKIM1; k=ed25519; p=abc") == "\"v=DKIM1; k=ed25519; p=abc\"");
    std::string long_value(600, 'a');
    std::string got = txt_chunks(long_value);
    CHECK(got == "\"" + std::string(255, 'a') + "\" \"" + std::string(255, 'a') + "\" \"" +
                     std::string(90, 'a') + "\"");
    CHECK(txt_chunks(std::string(255, 'b')) == "\"" + std::string(255, 'b') + "\"");
    CHECK(txt_chunks("") == "\"\"");
  }
}
