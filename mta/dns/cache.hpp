// TtlCache: a map whose entries expire at a given time and whose size is
// bounded by evicting the least recently used entry. Not thread-safe: the
// resolver touches it on its strand only.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "mta/core/clock.hpp"

namespace mta::dns {

template <class V>
class TtlCache {
 public:
  explicit TtlCache(size_t capacity) : capacity_(capacity) {}
  TtlCache(const TtlCache&) = delete;
  TtlCache& operator=(const TtlCache&) = delete;

  // The live value for key, now the most recently used; null when absent or
  // expired (an expired entry is dropped). Valid until the next put/clear.
  const V* find(const std::string& key, core::SysTime now) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    auto node = it->second;
    if (node->expires <= now) {
      index_.erase(it);
      lru_.erase(node);
      return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, node);
    return &node->value;
  }

  void put(std::string key, V value, core::SysTime expires) {
    if (capacity_ == 0) return;
    if (auto it = index_.find(key); it != index_.end()) {
      auto node = it->second;
      node->value = std::move(value);
      node->expires = expires;
      lru_.splice(lru_.begin(), lru_, node);
      return;
    }
    while (lru_.size() >= capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{std::move(key), std::move(value), expires});
    // The index's key views the string inside the list node, whose address
    // never changes.
    index_.emplace(lru_.front().key, lru_.begin());
  }

  void clear() {
    index_.clear();
    lru_.clear();
  }
  size_t size() const { return lru_.size(); }

 private:
  struct Entry {
    std::string key;
    V value;
    core::SysTime expires;
  };
  using Node = typename std::list<Entry>::iterator;

  size_t capacity_;
  std::list<Entry> lru_;  // front: most recently used
  std::unordered_map<std::string_view, Node> index_;
};

}  // namespace mta::dns
