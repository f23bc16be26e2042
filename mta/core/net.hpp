// Addresses without sockets: IP parsing, CIDR matching and "host:port"
// listen strings. Kept free of Asio so that config and tests stay light.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mta::core {

struct IpAddress {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4

  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  bool is_loopback() const;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4; else itself.
  IpAddress unmapped() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress net;
  int prefix = 0;

  // "10.0.0.0/8", "::1/128", or a bare address (a host route).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
  std::string to_string() const;
};

// "127.0.0.1:587", "[::1]:587", "0.0.0.0:8080". The host must be an IP
// literal: listeners bind addresses, not names.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  static std::optional<HostPort> parse(std::string_view text);
  std::string to_string() const;
};

}  // namespace mta::core
