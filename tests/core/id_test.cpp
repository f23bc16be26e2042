#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <vector>

#include "mta/core/id.hpp"

using mta::core::MessageId;
using mta::core::next_message_id;

TEST_SUITE("core") {
  TEST_CASE("message ids are strictly increasing as bytes and as hex") {
    MessageId prev = next_message_id();
    for (int i = 0; i < 10000; ++i) {
      MessageId id = next_message_id();
      CHECK(prev < id);
      CHECK(prev.hex() < id.hex());
      CHECK(prev.key() < id.key());
      prev = id;
    }
  }

  TEST_CASE("message ids are unique across threads") {
    std::vector<std::vector<MessageId>> per(4);
    std::vector<std::thread> ts;
    for (auto& v : per)
      ts.emplace_back([&v] {
        for (int i = 0; i < 5000; ++i) v.push_back(next_message_id());
      });
    for (auto& t : ts) t.join();
    std::set<std::string> all;
    for (auto& v : per)
      for (auto& id : v) all.insert(id.hex());
    CHECK(all.size() == 20000);
  }

  TEST_CASE("message id round-trips through hex and key") {
    MessageId id = next_message_id();
    auto h = MessageId::from_hex(id.hex());
    REQUIRE(h);
    CHECK(*h == id);
    auto k = MessageId::from_key(id.key());
    REQUIRE(k);
    CHECK(*k == id);
    CHECK(id.hex().size() == 32);
  }

  TEST_CASE("malformed message id text is refused") {
    const char* bad[] = {"", "abc", "0123456789abcdef0123456789abcdeg",
                         "0123456789abcdef0123456789abcdef0"};
    for (auto* b : bad) {
      INFO("input: ", b);
      CHECK_FALSE(MessageId::from_hex(b));
    }
  }
}
