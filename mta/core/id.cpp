#include "mta/core/id.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>

namespace mta::core {
namespace {

void put_be(uint8_t* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint64_t get_be(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

uint32_t process_salt() {
  static const uint32_t salt = [] {
    std::random_device rd;
    return static_cast<uint32_t>(rd());
  }();
  return salt;
}

}  // namespace

std::string MessageId::hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

uint64_t MessageId::micros() const {
  return get_be(bytes.data(), 8);
}

std::optional<MessageId> MessageId::from_hex(std::string_view text) {
  if (text.size() != 32) return std::nullopt;
  MessageId id;
  for (size_t i = 0; i < 32; ++i) {
    char c = text[i];
    int v;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else
      return std::nullopt;
    id.bytes[i / 2] = static_cast<uint8_t>(id.bytes[i / 2] | (i % 2 ? v : v << 4));
  }
  return id;
}

std::optional<MessageId> MessageId::from_key(std::string_view key) {
  if (key.size() != 16) return std::nullopt;
  MessageId id;
  for (size_t i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(key[i]);
  return id;
}

MessageId next_message_id() {
  // The timestamp and sequence move together under one lock so that ids stay
  // strictly increasing across threads.
  static std::mutex mu;
  static uint64_t last_us = 0;
  static uint32_t seq = 0;
  uint64_t now_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  uint64_t ts;
  uint32_t s;
  {
    std::lock_guard lock(mu);
    if (now_us > last_us) {
      last_us = now_us;
    }
    ts = last_us;
    s = ++seq;
  }
  MessageId id;
  put_be(id.bytes.data(), ts, 8);
  put_be(id.bytes.data() + 8, s, 4);
  put_be(id.bytes.data() + 12, process_salt(), 4);
  return id;
}

}  // namespace mta::core
