// Classifications per second on one core: the replies of
// tests/bounce/replies.tsv classified in a loop for about two seconds with
// the shipped rules. classify() sits on the delivery hot path; the target is
// well above 100,000/s.
//
//   mta_classify_bench [seconds] [rules.yaml] [replies.tsv]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mta/bounce/classifier.hpp"
#include "tests/bounce/replies_table.hpp"

using namespace mta::bounce;

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::string rules_path =
      argc > 2 ? argv[2] : std::string(MTA_SOURCE_DIR) + "/config/bounce-rules.yaml";
  std::string table_path =
      argc > 3 ? argv[3] : std::string(MTA_SOURCE_DIR) + "/tests/bounce/replies.tsv";

  auto rules = load_rules_file(rules_path);
  if (!rules) {
    std::fprintf(stderr, "%s\n", rules.error().message.c_str());
    return 1;
  }
  auto built = Classifier::build(*rules, {});
  if (!built) {
    std::fprintf(stderr, "%s\n", built.error().message.c_str());
    return 1;
  }
  const Classifier& classifier = *built;
  std::string error;
  auto rows = testing::load_rows(table_path, &error);
  if (rows.empty()) {
    std::fprintf(stderr, "%s\n", error.empty() ? "no replies" : error.c_str());
    return 1;
  }

  using Clock = std::chrono::steady_clock;
  auto run = [&](double limit) {
    size_t n = 0, checksum = 0;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(limit);
    while (Clock::now() < deadline) {
      for (const auto& row : rows) {
        Classification c = classifier.classify(row.reply, row.stage, row.provider);
        checksum += static_cast<size_t>(c.category) + c.suppress + c.rule_id.size();
      }
      n += rows.size();
    }
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    return std::pair{n / elapsed, checksum};
  };
  run(0.2);  // warm up caches and the DFA
  auto [rate, checksum] = run(seconds);
  std::printf(
      "rules=%zu replies=%zu classifications/s=%.0f ns/classification=%.0f (checksum %zu)\n",
      classifier.rules().size(), rows.size(), rate, 1e9 / rate, checksum);
  return 0;
}
