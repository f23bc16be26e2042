// A test driver for mta::dkim, so that tests/dkim/dkimpy_verify.py can check
// our keys, records and signatures with a second implementation (dkimpy):
//   mta_dkim_tool keygen PATH ALG [BITS]
//   mta_dkim_tool record PATH ALG          -> the TXT value on stdout
//   mta_dkim_tool sign DOMAIN SEL:ALG:PATH...  < message -> signed message
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "mta/dkim/keys.hpp"
#include "mta/dkim/signer.hpp"

using namespace mta::dkim;

namespace {

int usage() {
  std::cerr << "usage: mta_dkim_tool keygen PATH ALG [BITS] | record PATH ALG |"
               " sign DOMAIN SELECTOR:ALG:PATH... < message\n";
  return 2;
}

std::optional<Algorithm> alg_arg(const char* s) {
  auto a = algorithm_from_string(s);
  if (!a) std::cerr << "unknown algorithm " << s << "\n";
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string verb = argv[1];
  if (verb == "keygen" && (argc == 4 || argc == 5)) {
    auto a = alg_arg(argv[3]);
    if (!a) return 2;
    auto s = generate_key(argv[2], *a, argc == 5 ? std::stoi(argv[4]) : 2048);
    if (!s.ok()) {
      std::cerr << s.error().message << "\n";
      return 1;
    }
    return 0;
  }
  if (verb == "record" && argc == 4) {
    auto a = alg_arg(argv[3]);
    if (!a) return 2;
    auto r = public_record(argv[2], *a);
    if (!r.ok()) {
      std::cerr << r.error().message << "\n";
      return 1;
    }
    std::cout << *r << "\n";
    return 0;
  }
  if (verb == "sign" && argc >= 4) {
    std::string domain = argv[2];
    std::vector<KeySpec> specs;
    for (int i = 3; i < argc; ++i) {
      std::string arg = argv[i];
      size_t c1 = arg.find(':'), c2 = arg.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) return usage();
      auto a = alg_arg(arg.substr(c1 + 1, c2 - c1 - 1).c_str());
      if (!a) return 2;
      specs.push_back(KeySpec{domain, arg.substr(0, c1), arg.substr(c2 + 1), *a, {}});
    }
    auto signer = Signer::load(specs);
    if (!signer.ok()) {
      std::cerr << signer.error().message << "\n";
      return 1;
    }
    std::string message(std::istreambuf_iterator<char>(std::cin), {});
    auto sig = (*signer)->sign(message, domain);
    if (!sig.ok()) {
      std::cerr << sig.error().message << "\n";
      return 1;
    }
    std::cout << *sig << message;
    return 0;
  }
  return usage();
}
