#include <doctest/doctest.h>

#include <algorithm>

#include "mta/warmup/plan.hpp"
#include "test_util.hpp"

using namespace mta::warmup;
using namespace mta::warmup::test;

TEST_SUITE("warmup") {
  TEST_CASE("the plan lists every day with its date, limit and cumulative volume") {
    auto p = plan(standard_schedule(), date("2024-05-01"));
    REQUIRE(p.size() == 45);
    CHECK(p[0].day == 1);
    CHECK(p[0].date.to_string() == "2024-05-01");
    CHECK(p[0].daily_limit == 50);
    CHECK(p[0].hourly == 3);
    CHECK(p[0].cumulative == 50);
    CHECK(p[1].cumulative == 108);
    CHECK(p[44].day == 45);
    CHECK(p[44].date.to_string() == "2024-06-14");
    CHECK(p[44].daily_limit == 50000);
    CHECK(p[44].hourly == 2084);
    uint64_t sum = 0;
    for (auto v : standard_schedule().daily_limits) sum += v;
    CHECK(p[44].cumulative == sum);
    CHECK(warm_on(standard_schedule(), date("2024-05-01")).to_string() == "2024-06-15");
    CHECK(warm_on(standard_schedule(), date("2024-05-01"), 3).to_string() == "2024-06-18");
    CHECK(plan(standard_schedule(), date("2024-05-01"), 2)[0].date.to_string() == "2024-05-03");
  }

  TEST_CASE("format_plan prints a table that ends with the warm date") {
    Date today = date("2024-05-03");
    std::string out = format_plan(standard_schedule(), date("2024-05-01"), "192.0.2.10", 0, &today);
    INFO(out);
    CHECK(out.find("warm-up plan for 192.0.2.10: schedule \"standard\", 45 days from 2024-05-01") ==
          0);
    CHECK(out.find("warm on 2024-06-15") != std::string::npos);
    CHECK(out.find("50,000") != std::string::npos);
    CHECK(out.find(">    3  2024-05-03") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 45 + 3);
    std::string small = format_plan(Schedule{"tiny", {5, 10}, true}, date("2024-05-01"));
    CHECK(small ==
          "warm-up plan: schedule \"tiny\", 2 days from 2024-05-01 (limits per provider)\n"
          "   day  date         daily limit   ~per hour    cumulative\n"
          "     1  2024-05-01             5           1             5\n"
          "     2  2024-05-02            10           1            15\n"
          "warm on 2024-05-03: no warm-up limit from then on\n");
  }

  TEST_CASE("large numbers get thousands separators") {
    struct Case {
      uint64_t n;
      const char* want;
    } cases[] = {{0, "0"},          {999, "999"},           {1000, "1,000"},
                 {50000, "50,000"}, {1234567, "1,234,567"}, {100000, "100,000"}};
    for (auto& c : cases) {
      INFO(c.n, " want ", c.want, " got ", with_commas(c.n));
      CHECK(with_commas(c.n) == c.want);
    }
  }
}
