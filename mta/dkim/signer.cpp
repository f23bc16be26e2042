#include "mta/dkim/signer.hpp"

// <dkim.h> is C: it uses _Bool, which C++ does not have.
#define _Bool bool
#include <opendkim/dkim.h>
#undef _Bool

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "mta/core/base64.hpp"
#include "mta/core/text.hpp"
#include "mta/dkim/canon.hpp"

namespace mta::dkim {

using detail::openssl_error;

namespace {

constexpr const char kFieldName[] = "DKIM-Signature: ";

// OpenDKIM turns header names into a regular expression ('*' is a
// wildcard), so only plain names are passed to it.
bool plain_header_name(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return false;
  return true;
}

// Domains and selectors go into the header field verbatim: DNS characters
// only, so nothing can break out of d= or s=.
bool dns_name(std::string_view n) {
  if (n.empty() || n.front() == '.' || n.back() == '.' || n.find("..") != n.npos) return false;
  for (char c : n)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  return true;
}

std::string key_name(const KeySpec& k) {
  return k.selector + "._domainkey." + k.domain;
}

}  // namespace

// One DKIM_LIB per distinct header configuration (every key with the default
// set shares one). After set-up it is only read, which OpenDKIM allows from
// many threads (its milter does the same).
struct DkimLib {
  DKIM_LIB* lib = nullptr;
  std::vector<std::string> sign, oversign;  // the storage of the arrays below
  std::vector<const char*> sign_ptrs, oversign_ptrs;
  ~DkimLib() {
    if (lib) dkim_close(lib);
  }
};

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdFree {
  void operator()(EVP_MD* m) const { EVP_MD_free(m); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct Signer::Key {
  KeySpec spec;
  std::vector<std::string> sign, oversign;  // header names
  // kNative: the parsed key and SHA-256, fetched once (both only read while
  // signing, which OpenSSL allows from many threads).
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey;
  std::shared_ptr<EVP_MD> sha256;
  // kOpenDkim: PKCS#8 text, NUL-terminated (what dkim_sign() takes).
  std::string pem;
  dkim_alg_t alg = DKIM_SIGN_RSASHA256;
  std::shared_ptr<DkimLib> lib;
};

namespace {

core::Result<std::shared_ptr<DkimLib>> make_lib(const std::vector<std::string>& sign,
                                                const std::vector<std::string>& oversign) {
  auto l = std::make_shared<DkimLib>();
  l->lib = dkim_init(nullptr, nullptr);
  if (!l->lib) return core::make_error("cannot initialise libopendkim");
  l->sign = sign;
  l->oversign = oversign;
  for (const auto& s : l->sign) l->sign_ptrs.push_back(s.c_str());
  l->sign_ptrs.push_back(nullptr);
  for (const auto& s : l->oversign) l->oversign_ptrs.push_back(s.c_str());
  l->oversign_ptrs.push_back(nullptr);
  // Both options take the array itself (a char**) with len sizeof(char**).
  const char** sp = l->sign_ptrs.data();
  const char** op = l->oversign_ptrs.data();
  if (dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, static_cast<void*>(sp), sizeof sp) !=
          DKIM_STAT_OK ||
      dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS, static_cast<void*>(op),
                   sizeof op) != DKIM_STAT_OK)
    return core::make_error("libopendkim rejected the signed header list");
  return l;
}

}  // namespace

Signer::Signer() = default;
Signer::~Signer() = default;

core::Result<std::shared_ptr<const Signer>> Signer::load(const std::vector<KeySpec>& keys,
                                                         Engine engine) {
  std::shared_ptr<Signer> s(new Signer());
  s->engine_ = engine;
  std::map<std::string, std::shared_ptr<DkimLib>> libs;  // by header configuration
  std::shared_ptr<EVP_MD> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr), MdFree{});
  if (!sha256) return core::make_error("OpenSSL has no SHA-256");
  for (const auto& given : keys) {
    KeySpec spec = given;
    spec.domain = core::ascii_lower(spec.domain);
    while (!spec.domain.empty() && spec.domain.back() == '.') spec.domain.pop_back();
    if (!dns_name(spec.domain) || !dns_name(spec.selector))
      return core::make_error("DKIM key " + key_name(spec) + " (" + spec.private_key +
                              "): domain and selector must be DNS names");
    if (auto why = check_key_file(spec.private_key, spec.algorithm))
      return core::make_error("DKIM key " + key_name(spec) + ": " + *why);
    for (const auto& k : s->keys_)
      if (k->spec.domain == spec.domain && iequals(k->spec.selector, spec.selector))
        return core::make_error("DKIM key " + key_name(spec) + " is defined twice");

    auto k = std::make_unique<Key>();
    k->spec = spec;
    auto pem = read_private_key_pem(spec.private_key, spec.algorithm);
    if (!pem) return core::make_error("DKIM key " + key_name(spec) + ": " + pem.error().message);
    k->pem = std::move(*pem);
    {
      BIO* bio = BIO_new_mem_buf(k->pem.data(), static_cast<int>(k->pem.size()));
      k->pkey.reset(bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr);
      BIO_free(bio);
      ERR_clear_error();
      if (!k->pkey) return core::make_error("DKIM key " + key_name(spec) + ": cannot load it");
    }
    if (engine != Engine::kOpenDkim) k->pem.clear();  // no copy of the secret kept for nothing
    k->sha256 = sha256;
    k->alg =
        spec.algorithm == Algorithm::kRsaSha256 ? DKIM_SIGN_RSASHA256 : DKIM_SIGN_ED25519SHA256;

    // The signed set (From always) and the over-signed ones among it.
    std::vector<std::string> sign, oversign;
    if (spec.headers.empty()) {
      for (const char* h : kDefaultSignedHeaders) sign.emplace_back(h);
    } else {
      sign.emplace_back("From");
      for (const auto& h : spec.headers) {
        if (!plain_header_name(h))
          return core::make_error("DKIM key " + key_name(spec) + ": header field name \"" + h +
                                  "\" is not supported (letters, digits, '-' and '_' only)");
        bool dup = false;
        for (const auto& have : sign) dup = dup || iequals(have, h);
        if (!dup) sign.push_back(h);
      }
    }
    for (const char* o : kOverSignedHeaders)
      for (const auto& h : sign)
        if (iequals(h, o)) oversign.emplace_back(o);
    if (engine == Engine::kOpenDkim) {
      std::string config;
      for (const auto& h : sign) config += core::ascii_lower(h) + ":";
      auto& lib = libs[config];
      if (!lib) {
        auto made = make_lib(sign, oversign);
        if (!made)
          return core::make_error("DKIM key " + key_name(spec) + ": " + made.error().message);
        lib = *made;
      }
      if (k->alg == DKIM_SIGN_ED25519SHA256 && !dkim_libfeature(lib->lib, DKIM_FEATURE_ED25519))
        return core::make_error("DKIM key " + key_name(spec) +
                                ": this libopendkim cannot sign with ed25519-sha256");
      k->lib = lib;
    }
    k->sign = std::move(sign);
    k->oversign = std::move(oversign);
    s->by_domain_[k->spec.domain].push_back(k.get());
    s->keys_.push_back(std::move(k));
  }
  return std::shared_ptr<const Signer>(std::move(s));
}

bool Signer::has_domain(std::string_view domain) const {
  return by_domain_.find(core::ascii_lower(domain)) != by_domain_.end();
}

std::string Signer::signing_domain(std::string_view from_domain) const {
  std::string d = core::ascii_lower(from_domain);
  while (!d.empty() && d.back() == '.') d.pop_back();
  std::string_view rest = d;
  while (!rest.empty()) {
    if (by_domain_.find(rest) != by_domain_.end()) return std::string(rest);
    size_t dot = rest.find('.');
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return "";
}

size_t Signer::key_count() const {
  return keys_.size();
}

std::vector<std::string> Signer::describe() const {
  std::vector<std::string> out;
  for (const auto& k : keys_)
    out.push_back(key_name(k->spec) + " (" + to_string(k->spec.algorithm) + ")");
  return out;
}

std::vector<Algorithm> Signer::algorithms(std::string_view domain) const {
  std::vector<Algorithm> out;
  auto it = by_domain_.find(core::ascii_lower(domain));
  if (it != by_domain_.end())
    for (const Key* k : it->second) out.push_back(k->spec.algorithm);
  return out;
}

core::Result<std::string> Signer::sign(std::string_view message, std::string_view domain) const {
  auto it = by_domain_.find(core::ascii_lower(domain));
  if (it == by_domain_.end())
    return core::make_error("no DKIM key for domain " + std::string(domain));
  if (engine_ == Engine::kNative) return sign_native(message, it->second);
  std::string out;
  for (const Key* k : it->second) {
    auto one = sign_opendkim(message, *k);
    if (!one) return one.error();
    out += *one;
  }
  return out;
}

namespace {

// Builds a header field folded before 78 columns: a piece that would not fit
// starts a continuation line (CRLF TAB) instead of its separating space.
struct Folder {
  std::string out;
  size_t column = 0;
  explicit Folder(std::string_view name) : out(name), column(name.size()) {}
  void add(std::string_view piece, bool space) {
    size_t need = piece.size() + (space ? 1 : 0);
    if (column + need > 78 && column > 1) {
      out += "\r\n\t";
      column = 8;
    } else if (space) {
      out += ' ';
      ++column;
    }
    out += piece;
    column += piece.size();
  }
};

}  // namespace

core::Result<std::string> Signer::sign_native(std::string_view message,
                                              const std::vector<const Key*>& keys) const {
  const std::string& domain = keys.front()->spec.domain;
  auto failed = [&](const std::string& why) {
    return core::make_error("DKIM signing for " + domain + " failed: " + why);
  };
  std::string error;
  auto parsed = parse_message(message, &error);
  if (!parsed) return failed(error);
  bool from = false;
  for (const auto& f : parsed->fields) from = from || iequals(f.name, "From");
  if (!from) return failed("the message has no From header field");

  // The body hash is the same for every key (all relaxed, all SHA-256).
  const EVP_MD* sha256 = keys.front()->sha256.get();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  {
    MdCtx ctx(EVP_MD_CTX_new());
    bool ok = ctx && EVP_DigestInit_ex(ctx.get(), sha256, nullptr) == 1;
    relaxed_body(parsed->body, [&](std::string_view piece) {
      ok = ok && EVP_DigestUpdate(ctx.get(), piece.data(), piece.size()) == 1;
    });
    if (!ok || EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) != 1)
      return failed("body hash: " + openssl_error());
  }
  std::string bh =
      core::base64_encode(std::string_view(reinterpret_cast<const char*>(digest), digest_len));
  std::string t = std::to_string(static_cast<long long>(std::time(nullptr)));

  std::string out, data;
  for (const Key* k : keys) {
    std::vector<std::string> h = header_list(parsed->fields, k->sign, k->oversign);
    Folder f("DKIM-Signature:");
    f.add("v=1;", true);
    f.add(std::string("a=") + to_string(k->spec.algorithm) + ";", true);
    f.add("c=relaxed/relaxed;", true);
    f.add("d=" + k->spec.domain + ";", true);
    f.add("s=" + k->spec.selector + ";", true);
    f.add("t=" + t + ";", true);
    f.add("bh=" + bh + ";", true);
    for (size_t i = 0; i < h.size(); ++i)
      f.add((i == 0 ? "h=" : "") + h[i] + (i + 1 < h.size() ? ":" : ";"), i == 0);
    f.add("b=", true);

    // RFC 6376 3.7: the selected fields in h= order, then this field with
    // an empty b= and no final CRLF, all relaxed.
    data.clear();
    for (const HeaderField* field : select_fields(parsed->fields, h))
      relaxed_header(field->raw, data);
    relaxed_header(f.out, data, false);

    MdCtx ctx(EVP_MD_CTX_new());
    std::string sig(512, '\0');
    size_t sig_len = sig.size();
    bool ok = false;
    if (k->spec.algorithm == Algorithm::kRsaSha256) {
      ok = ctx && EVP_DigestSignInit(ctx.get(), nullptr, sha256, nullptr, k->pkey.get()) == 1 &&
           EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
    } else {
      // RFC 8463: PureEdDSA over the SHA-256 of the data.
      unsigned char hd[EVP_MAX_MD_SIZE];
      unsigned int hd_len = 0;
      ok = ctx && EVP_Digest(data.data(), data.size(), hd, &hd_len, sha256, nullptr) == 1 &&
           EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k->pkey.get()) == 1 &&
           EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len, hd,
                          hd_len) == 1;
    }
    if (!ok)
      return core::make_error("DKIM signing with " + key_name(k->spec) +
                              " failed: " + openssl_error());
    sig.resize(sig_len);
    std::string b = core::base64_encode(sig);
    // b= folds anywhere (FWS inside its value is ignored).
    for (size_t i = 0; i < b.size();) {
      size_t room = f.column < 77 ? 78 - f.column : 0;
      if (room < 8) {
        f.out += "\r\n\t";
        f.column = 8;
        room = 70;
      }
      size_t n = std::min(room, b.size() - i);
      f.out.append(b, i, n);
      f.column += n;
      i += n;
    }
    out += f.out;
    out += "\r\n";
  }
  return out;
}

core::Result<std::string> Signer::sign_opendkim(std::string_view message, const Key& key) const {
  const Key* k = &key;
  std::string out;
  {
    auto fail = [&](DKIM* d, DKIM_STAT st, const char* step) {
      const char* why = d ? dkim_geterror(d) : nullptr;
      std::string text = "DKIM signing with " + key_name(k->spec) + " failed (" + step +
                         "): " + (why && *why ? why : dkim_getresultstr(st));
      if (d) dkim_free(d);
      return core::make_error(std::move(text));
    };
    DKIM_STAT st = DKIM_STAT_OK;
    // dkim_sign() copies the key; it does not write to it.
    DKIM* d = dkim_sign(k->lib->lib, reinterpret_cast<const unsigned char*>("mta"), nullptr,
                        reinterpret_cast<dkim_sigkey_t>(const_cast<char*>(k->pem.c_str())),
                        reinterpret_cast<const unsigned char*>(k->spec.selector.c_str()),
                        reinterpret_cast<const unsigned char*>(k->spec.domain.c_str()),
                        DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, k->alg, -1, &st);
    if (!d) return fail(nullptr, st, "start");
    // dkim_chunk() only reads the buffer; its C signature is not const.
    auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(message.data()));
    if (!message.empty() && (st = dkim_chunk(d, data, message.size())) != DKIM_STAT_OK)
      return fail(d, st, "message");
    // SMTP ends the data with CRLF "." CRLF, so a message that does not end
    // with CRLF arrives with one; canonicalization adds it too (RFC 6376
    // 3.4.4). OpenDKIM insists on seeing it.
    if (!message.ends_with("\r\n")) {
      unsigned char crlf[] = {'\r', '\n'};
      if ((st = dkim_chunk(d, crlf, sizeof crlf)) != DKIM_STAT_OK) return fail(d, st, "message");
    }
    if ((st = dkim_chunk(d, nullptr, 0)) != DKIM_STAT_OK) return fail(d, st, "message");
    if ((st = dkim_eom(d, nullptr)) != DKIM_STAT_OK) return fail(d, st, "sign");
    unsigned char* field = nullptr;
    size_t len = 0;
    if ((st = dkim_getsighdr_d(d, sizeof kFieldName - 1, &field, &len)) != DKIM_STAT_OK)
      return fail(d, st, "header");
    // Already folded with CRLF + TAB.
    out += kFieldName;
    out.append(reinterpret_cast<const char*>(field), len);
    out += "\r\n";
    dkim_free(d);
  }
  return out;
}

}  // namespace mta::dkim
