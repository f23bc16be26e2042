#include "mta/api/form.hpp"

#include <charconv>

namespace mta::api {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// "member.N" or "member.N.Field" after "prefix."; false when the key is not
// part of the list at all.
struct MemberKey {
  bool matches = false;
  std::optional<size_t> index;  // nullopt: malformed index
  std::string field;
};

MemberKey member_key(std::string_view key, std::string_view prefix) {
  MemberKey mk;
  if (key.size() <= prefix.size() || key.substr(0, prefix.size()) != prefix ||
      key[prefix.size()] != '.')
    return mk;
  std::string_view rest = key.substr(prefix.size() + 1);
  constexpr std::string_view kMember = "member.";
  mk.matches = true;
  if (rest.substr(0, kMember.size()) != kMember) return mk;
  rest.remove_prefix(kMember.size());
  size_t dot = rest.find('.');
  std::string_view num = rest.substr(0, dot);
  size_t n = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (num.empty() || ec != std::errc() || p != num.data() + num.size() || n == 0 || n > 100000)
    return mk;
  mk.index = n;
  if (dot != std::string_view::npos) mk.field = std::string(rest.substr(dot + 1));
  return mk;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::optional<Params> parse_form(std::string_view body) {
  Params out;
  size_t start = 0;
  while (start <= body.size()) {
    size_t amp = body.find('&', start);
    std::string_view pair = body.substr(start, amp == std::string_view::npos ? amp : amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      auto k = percent_decode(pair.substr(0, eq), true);
      auto v = eq == std::string_view::npos ? std::optional<std::string>("")
                                            : percent_decode(pair.substr(eq + 1), true);
      if (!k || !v) return std::nullopt;
      out.emplace_back(std::move(*k), std::move(*v));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

const std::string* find_param(const Params& params, std::string_view name) {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

std::variant<std::vector<std::string>, std::string> member_list(const Params& params,
                                                                std::string_view prefix) {
  std::map<size_t, std::string> by_index;
  for (const auto& [k, v] : params) {
    auto mk = member_key(k, prefix);
    if (!mk.matches) continue;
    if (!mk.index || !mk.field.empty())
      return k + ": expected " + std::string(prefix) + ".member.N";
    if (!by_index.emplace(*mk.index, v).second) return k + ": given twice";
  }
  std::vector<std::string> out;
  for (auto& [i, v] : by_index) {
    if (i != out.size() + 1)
      return std::string(prefix) + ".member." + std::to_string(out.size() + 1) + ": missing";
    out.push_back(std::move(v));
  }
  return out;
}

std::variant<std::vector<std::map<std::string, std::string>>, std::string> member_structs(
    const Params& params, std::string_view prefix) {
  std::map<size_t, std::map<std::string, std::string>> by_index;
  for (const auto& [k, v] : params) {
    auto mk = member_key(k, prefix);
    if (!mk.matches) continue;
    if (!mk.index || mk.field.empty())
      return k + ": expected " + std::string(prefix) + ".member.N.Field";
    if (!by_index[*mk.index].emplace(mk.field, v).second) return k + ": given twice";
  }
  std::vector<std::map<std::string, std::string>> out;
  for (auto& [i, m] : by_index) {
    if (i != out.size() + 1)
      return std::string(prefix) + ".member." + std::to_string(out.size() + 1) + ": missing";
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace mta::api
