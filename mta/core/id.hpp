// Message ids: unique, time-ordered, printable.
//
// An id is 16 bytes: a 64-bit microsecond timestamp, a 32-bit per-process
// sequence and a 32-bit random salt drawn at start-up, all big-endian, so
// ids sort by creation time both as bytes (RocksDB keys) and as their
// 32-character lowercase hex text (what SMTP's 250 and the HTTP API return).
// The generator never goes backwards, even if the wall clock does.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mta::core {

struct MessageId {
  std::array<uint8_t, 16> bytes{};

  std::string hex() const;
  std::string_view key() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  uint64_t micros() const;  // creation time, µs since the Unix epoch

  static std::optional<MessageId> from_hex(std::string_view text);
  static std::optional<MessageId> from_key(std::string_view key);

  auto operator<=>(const MessageId&) const = default;
};

// Thread-safe.
MessageId next_message_id();

}  // namespace mta::core
