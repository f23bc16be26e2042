#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "mta/dkim/keys.hpp"
#include "mta/dkim/signer.hpp"
#include "verify_util.hpp"

using namespace mta::dkim;
using mta::dkim::test::make_pem;
using mta::dkim::test::TempDir;
using mta::dkim::test::verify;
using mta::dkim::test::write_file;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

const std::string kMessage =
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Subject: Hello\r\n"
    " folded subject\r\n"
    "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "X-Unsigned: yes\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "\r\n"
    "  a line  with   spaces \r\n"
    ".leading dot, not stuffed\r\n"
    "\r\n"
    "\r\n";

// Keys for example.com (RSA s1 + Ed25519 e1) and news.example.net (RSA n1),
// and the DNS records that publish them.
// Each test case runs once per engine.
Engine pick_engine() {
  Engine e = Engine::kNative;
  SUBCASE("native engine") {
    e = Engine::kNative;
  }
  SUBCASE("OpenDKIM engine") {
    e = Engine::kOpenDkim;
  }
  return e;
}

struct Fixture {
  TempDir dir;
  Engine engine;
  std::vector<KeySpec> specs;
  std::map<std::string, std::string> records;

  Fixture() : engine(pick_engine()) {
    add("example.com", "s1", Algorithm::kRsaSha256, make_pem("rsa", 2048));
    add("example.com", "e1", Algorithm::kEd25519Sha256, make_pem("ed25519"));
    add("news.example.net", "n1", Algorithm::kRsaSha256, make_pem("rsa", 1024, true));
  }
  void add(const std::string& domain, const std::string& sel, Algorithm alg,
           const std::string& pem) {
    std::string path = dir.file(domain + "." + sel + ".pem");
    write_file(path, pem);
    specs.push_back(KeySpec{domain, sel, path, alg, {}});
    auto r = public_record(path, alg);
    REQUIRE(r.ok());
    records[sel + "._domainkey." + domain] = *r;
  }
  std::shared_ptr<const Signer> signer() const {
    auto s = Signer::load(specs, engine);
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    REQUIRE((*s)->engine() == engine);
    return *s;
  }
};

// The value of tag `tag` of the first DKIM-Signature in `sig`, unfolded.
std::string tag(const std::string& sig, const std::string& name) {
  std::string flat;
  for (char c : sig)
    if (c != '\r' && c != '\n' && c != '\t' && c != ' ') flat += c;
  size_t at = flat.find(";" + name + "=");
  if (at == std::string::npos) return "";
  size_t start = at + name.size() + 2;
  return flat.substr(start, flat.find(';', start) - start);
}

int count_in_h(const std::string& h, const std::string& name) {
  int n = 0;
  size_t pos = 0;
  std::string lh = h + ":";
  for (auto& c : lh) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string want = name + ":";
  for (auto& c : want) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (pos < lh.size()) {
    size_t end = lh.find(':', pos);
    if (lh.compare(pos, end + 1 - pos, want) == 0) ++n;
    pos = end + 1;
  }
  return n;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_SUITE("dkim") {
  TEST_CASE("signing_domain picks the From domain, else its nearest parent with keys") {
    Fixture f;
    auto s = f.signer();
    struct {
      const char* from;
      const char* want;
    } cases[] = {
        {"example.com", "example.com"},
        {"EXAMPLE.com", "example.com"},
        {"example.com.", "example.com"},
        {"mail.example.com", "example.com"},
        {"a.b.example.com", "example.com"},
        {"news.example.net", "news.example.net"},
        {"x.news.example.net", "news.example.net"},
        {"example.net", ""},
        {"badexample.com", ""},
        {"example.com.evil.test", ""},
        {"com", ""},
        {"", ""},
    };
    for (const auto& c : cases) {
      CAPTURE(c.from);
      CHECK(s->signing_domain(c.from) == c.want);
    }
    CHECK(s->has_domain("example.com"));
    CHECK(s->has_domain("Example.COM"));
    CHECK_FALSE(s->has_domain("mail.example.com"));
    CHECK(s->key_count() == 3);
    CHECK(s->describe().size() == 3);
  }

  TEST_CASE("a domain with an RSA and an Ed25519 key gets two signatures that verify") {
    Fixture f;
    auto s = f.signer();
    auto sig = s->sign(kMessage, "example.com");
    REQUIRE_MESSAGE(sig.ok(), (sig.ok() ? "" : sig.error().message));
    CHECK(sig->rfind("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com;", 0) ==
          0);
    CHECK(contains(*sig, "\r\nDKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;"));
    CHECK(sig->size() > 2);
    CHECK(sig->substr(sig->size() - 2) == "\r\n");
    // Folded with CRLF only: no bare LF.
    for (size_t i = 0; i < sig->size(); ++i)
      if ((*sig)[i] == '\n') CHECK((i > 0 && (*sig)[i - 1] == '\r'));
    CHECK(tag(*sig, "t") != "");
    CHECK(tag(*sig, "l") == "");

    auto v = verify(*sig + kMessage, f.records);
    CHECK(v.error == "");
    CHECK(v.signatures == 2);
    CHECK(v.failed.empty());
    REQUIRE(v.passed.size() == 2);
    CHECK(v.passed[0] != v.passed[1]);
    // An unsigned header may change; the body and signed headers may not.
    auto extra = verify(*sig + replace(kMessage, "X-Unsigned: yes", "X-Unsigned: no"), f.records);
    CHECK(extra.passed.size() == 2);
  }

  TEST_CASE("the signed header set: present defaults, over-signing, nothing else") {
    Fixture f;
    auto s = f.signer();
    auto sig = s->sign(kMessage, "news.example.net");
    REQUIRE(sig.ok());
    std::string h = tag(*sig, "h");
    CAPTURE(h);
    struct {
      const char* name;
      int want;
    } cases[] = {
        {"From", 2},
        {"To", 2},
        {"Subject", 2},
        {"Date", 2},
        {"Message-ID", 2},
        {"MIME-Version", 2},
        {"Content-Type", 2},
        {"List-Unsubscribe", 1},
        {"List-Unsubscribe-Post", 1},
        {"Cc", 0},
        {"Reply-To", 0},
        {"X-Unsigned", 0},
        {"X-MTA-Message-ID", 0},
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(count_in_h(h, c.name) == c.want);
    }
    std::string with = replace(kMessage, "X-Unsigned: yes\r\n",
                               "Cc: carol@example.org\r\nX-MTA-Message-ID: <m1>\r\n"
                               "List-Unsubscribe: <https://u.example.com/u/1>\r\n");
    auto sig2 = s->sign(with, "news.example.net");
    REQUIRE(sig2.ok());
    std::string h2 = tag(*sig2, "h");
    CAPTURE(h2);
    CHECK(count_in_h(h2, "Cc") == 1);
    CHECK(count_in_h(h2, "X-MTA-Message-ID") == 1);
    CHECK(count_in_h(h2, "List-Unsubscribe") == 2);
    CHECK(verify(*sig2 + with, f.records).passed.size() == 1);
  }

  TEST_CASE("tampering breaks every signature") {
    Fixture f;
    auto s = f.signer();
    auto sig = s->sign(kMessage, "example.com");
    REQUIRE(sig.ok());
    struct {
      std::string what;
      std::string message;
    } cases[] = {
        {"body", replace(kMessage, "Hello Bob", "Hello Eve")},
        {"From", replace(kMessage, "alice@example.com", "mallory@example.com")},
        {"Subject", replace(kMessage, "Subject: Hello", "Subject: Hullo")},
        {"a second From", "From: ceo@example.com\r\n" + kMessage},
        {"an added List-Unsubscribe",
         replace(kMessage, "X-Unsigned", "List-Unsubscribe: <mailto:x@evil.test>\r\nX-Unsigned")},
        {"an added List-Unsubscribe-Post",
         replace(kMessage, "X-Unsigned",
                 "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nX-Unsigned")},
        {"an appended body line", kMessage + "P.S. click here\r\n"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.what);
      auto v = verify(*sig + c.message, f.records);
      CHECK(v.signatures == 2);
      CHECK(v.passed.empty());
      CHECK(v.failed.size() == 2);
    }
    // The verifier itself does pass the untouched message.
    CHECK(verify(*sig + kMessage, f.records).passed.size() == 2);
    // And a wrong public key fails it.
    auto wrong = f.records;
    wrong["s1._domainkey.example.com"] = wrong["n1._domainkey.news.example.net"];
    auto v = verify(*sig + kMessage, wrong);
    CHECK(v.passed == std::vector<std::string>{"ed25519-sha256"});
  }

  TEST_CASE("relaxed canonicalization: whitespace changes in transit still verify") {
    Fixture f;
    auto s = f.signer();
    auto sig = s->sign(kMessage, "example.com");
    REQUIRE(sig.ok());
    std::string m = replace(kMessage, "Subject: Hello\r\n folded subject",
                            "subject:   Hello\r\n\t folded   subject");
    m = replace(m, "  a line  with   spaces \r\n", " a line with spaces\r\n");
    CHECK(verify(*sig + m, f.records).passed.size() == 2);
  }

  TEST_CASE("a key's own header list replaces the default set and From is always signed") {
    Fixture f;
    f.specs[2].headers = {"Subject", "X-Unsigned", "subject"};
    auto s = f.signer();
    auto sig = s->sign(kMessage, "news.example.net");
    REQUIRE(sig.ok());
    std::string h = tag(*sig, "h");
    CAPTURE(h);
    CHECK(count_in_h(h, "From") == 2);
    CHECK(count_in_h(h, "Subject") == 2);
    CHECK(count_in_h(h, "X-Unsigned") == 1);
    CHECK(count_in_h(h, "To") == 0);
    CHECK(count_in_h(h, "List-Unsubscribe") == 0);
    CHECK(verify(*sig + kMessage, f.records).passed.size() == 1);
    // The other keys keep the default set.
    auto other = s->sign(kMessage, "example.com");
    REQUIRE(other.ok());
    CHECK(count_in_h(tag(*other, "h"), "To") == 2);

    f.specs[2].headers = {"X-Bad.Name"};
    auto bad = Signer::load(f.specs, f.engine);
    REQUIRE_FALSE(bad.ok());
    CHECK(contains(bad.error().message, "X-Bad.Name"));
  }

  TEST_CASE("sign fails clearly: unknown domain, no From, a malformed header") {
    Fixture f;
    auto s = f.signer();
    auto none = s->sign(kMessage, "example.org");
    REQUIRE_FALSE(none.ok());
    CHECK(contains(none.error().message, "no DKIM key for domain example.org"));
    // mail.example.com must be asked for as its signing domain.
    CHECK_FALSE(s->sign(kMessage, "mail.example.com").ok());

    auto no_from = s->sign("To: bob@example.org\r\nSubject: x\r\n\r\nbody\r\n", "example.com");
    REQUIRE_FALSE(no_from.ok());
    CHECK(contains(no_from.error().message, "example.com"));
    CAPTURE(no_from.error().message);

    auto junk = s->sign("From: a@example.com\r\nno colon here\r\n\r\nbody\r\n", "example.com");
    CHECK_FALSE(junk.ok());
  }

  TEST_CASE("a message without a body or a final CRLF signs as SMTP will deliver it") {
    Fixture f;
    auto s = f.signer();
    for (std::string m : {std::string("From: a@example.com\r\nSubject: x\r\n\r\n"),
                          std::string("From: a@example.com\r\nSubject: x\r\n\r\nno newline"),
                          std::string("From: a@example.com\r\n")}) {
      CAPTURE(m);
      auto sig = s->sign(m, "example.com");
      REQUIRE_MESSAGE(sig.ok(), (sig.ok() ? "" : sig.error().message));
      // SMTP delivers it with a final CRLF.
      std::string sent = *sig + m + (m.ends_with("\r\n") ? "" : "\r\n");
      CHECK(verify(sent, f.records).passed.size() == 2);
    }
  }

  TEST_CASE("load rejects bad keys and names the key") {
    Fixture f;
    write_file(f.dir.file("open.pem"), make_pem("ed25519"), 0644);
    write_file(f.dir.file("small.pem"), make_pem("rsa", 512), 0600);
    struct {
      KeySpec spec;
      const char* want;
    } cases[] = {
        {{"example.org", "o1", f.dir.file("open.pem"), Algorithm::kEd25519Sha256, {}},
         "DKIM key o1._domainkey.example.org: "},
        {{"example.org", "o1", f.dir.file("open.pem"), Algorithm::kEd25519Sha256, {}},
         "world-readable"},
        {{"example.org", "o2", f.dir.file("small.pem"), Algorithm::kRsaSha256, {}},
         "512-bit RSA key"},
        {{"example.org", "o3", f.dir.file("missing.pem"), Algorithm::kRsaSha256, {}},
         "missing.pem"},
        {{"example.org", "o4", f.specs[0].private_key, Algorithm::kEd25519Sha256, {}},
         "is an RSA key"},
        {{"example.com", "s1", f.specs[2].private_key, Algorithm::kRsaSha256, {}},
         "s1._domainkey.example.com is defined twice"},
        {{"", "x", f.specs[0].private_key, Algorithm::kRsaSha256, {}}, "must be DNS names"},
        {{"example.org", "s1; h=x", f.specs[0].private_key, Algorithm::kRsaSha256, {}},
         "must be DNS names"},
        {{"example.org\r\nX: y", "s1", f.specs[0].private_key, Algorithm::kRsaSha256, {}},
         "must be DNS names"},
        {{"Example.COM.", "S1", f.specs[2].private_key, Algorithm::kRsaSha256, {}},
         "S1._domainkey.example.com is defined twice"},
    };
    for (const auto& c : cases) {
      auto specs = f.specs;
      specs.push_back(c.spec);
      auto s = Signer::load(specs, f.engine);
      CAPTURE(c.want);
      REQUIRE_FALSE(s.ok());
      CAPTURE(s.error().message);
      CHECK(contains(s.error().message, c.want));
    }
    auto empty = Signer::load({}, f.engine);
    REQUIRE(empty.ok());
    CHECK((*empty)->key_count() == 0);
    CHECK((*empty)->signing_domain("example.com") == "");
  }

  TEST_CASE("sign is safe from several threads at once") {
    Fixture f;
    auto s = f.signer();
    std::atomic<int> bad{0};
    std::vector<std::string> out(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        std::string m = replace(kMessage, "Hello Bob", "Hello Bob " + std::to_string(t));
        for (int i = 0; i < 25; ++i) {
          auto sig = s->sign(m, t % 2 ? "example.com" : "news.example.net");
          if (!sig.ok())
            ++bad;
          else if (i == 24)
            out[size_t(t)] = *sig + m;
        }
      });
    for (auto& t : threads) t.join();
    CHECK(bad == 0);
    for (int t = 0; t < 4; ++t) {
      CAPTURE(t);
      CHECK(verify(out[size_t(t)], f.records).passed.size() == (t % 2 ? 2u : 1u));
    }
  }

  TEST_CASE("the native engine hashes bodies exactly like OpenDKIM") {
    TempDir dir;
    std::string path = dir.file("k.pem");
    write_file(path, make_pem("ed25519"));
    std::vector<KeySpec> specs{{"example.com", "e1", path, Algorithm::kEd25519Sha256, {}}};
    auto native = Signer::load(specs, Engine::kNative);
    auto opendkim = Signer::load(specs, Engine::kOpenDkim);
    REQUIRE(native.ok());
    REQUIRE(opendkim.ok());
    std::map<std::string, std::string> records{
        {"e1._domainkey.example.com", *public_record(path, Algorithm::kEd25519Sha256)}};
    const std::string head = "From: a@example.com\r\nSubject: t\r\n";
    const std::string bodies[] = {
        "",
        "\r\n",
        "\r\n\r\n\r\n",
        "x",
        "x\r\n",
        "x\r\n\r\n\r\n",
        "  \t \r\n",
        "a  b\t\tc \t\r\n\t lead\r\n",
        "line\r\n \r\n\t\r\nafter blank-ish lines\r\n \r\n",
        "no final crlf  ",
        std::string(10000, 'z') + "\r\n" + std::string(9000, ' ') + "end\r\n",
    };
    for (const auto& body : bodies) {
      std::string m = body.empty() ? head : head + "\r\n" + body;
      CAPTURE(m);
      auto a = (*native)->sign(m, "example.com");
      auto b = (*opendkim)->sign(m, "example.com");
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      CHECK(tag(*a, "bh") == tag(*b, "bh"));
      std::string sent = m + (m.ends_with("\r\n") ? "" : "\r\n");
      CHECK(verify(*a + sent, records).passed.size() == 1);
    }
  }

  TEST_CASE("odd but legal headers sign and verify: folding, spacing, case, duplicates") {
    Fixture f;
    auto s = f.signer();
    std::string m =
        "Received: from x by y\r\n"
        "from :  Alice\r\n <alice@example.com>  \r\n"
        "TO:\tbob@example.org,\r\n\tcarol@example.org\r\n"
        "To: dave@example.org\r\n"
        "subject:\r\n folded only\r\n"
        "Empty:\r\n"
        "Content-type: text/plain\r\n"
        "\r\n"
        "body\r\n";
    auto sig = s->sign(m, "example.com");
    REQUIRE_MESSAGE(sig.ok(), (sig.ok() ? "" : sig.error().message));
    CHECK(count_in_h(tag(*sig, "h"), "To") == 3);
    auto v = verify(*sig + m, f.records);
    CHECK(v.failed.empty());
    CHECK(v.passed.size() == 2);
    // Moving the second To above the first breaks the signature (order counts).
    std::string swapped = replace(m, "To: dave@example.org\r\n", "");
    swapped = replace(swapped, "TO:", "To: dave@example.org\r\nTO:");
    CHECK(verify(*sig + swapped, f.records).passed.empty());
  }
}
