// The table of real replies in tests/bounce/replies.tsv, shared by the
// classifier test and bench/classify_bench.cpp. See the file's header for the
// columns.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "mta/bounce/classifier.hpp"
#include "mta/protocol/reply.hpp"

namespace mta::bounce::testing {

struct Row {
  int line = 0;  // in the file, for messages
  std::string provider;
  Stage stage = Stage::kAny;
  std::string wire;  // as written, "\n" between lines
  protocol::Reply reply;
  Classification want;  // rule_id left empty
  std::string source;
};

inline std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab - start));
    if (tab == std::string::npos) return out;
    start = tab + 1;
  }
}

// "550-5.7.1 a\n550 5.7.1 b" -> the Reply the client-side parser builds.
// "0 text" is an engine pseudo-reply: Reply{0, "", text}. Empty code on a
// parse error.
inline protocol::Reply make_reply(const std::string& wire) {
  if (wire.rfind("0 ", 0) == 0) return protocol::Reply{0, "", wire.substr(2)};
  protocol::ReplyParser parser;
  size_t start = 0;
  for (;;) {
    size_t nl = wire.find("\\n", start);
    std::string line = wire.substr(start, nl - start);
    auto status = parser.feed_line(line);
    if (status == protocol::ReplyParser::Status::kError) return {};
    if (status == protocol::ReplyParser::Status::kDone) return parser.take();
    if (nl == std::string::npos) return {};
    start = nl + 2;
  }
}

// On a malformed line (or a missing file) returns no rows and sets *error.
inline std::vector<Row> load_rows(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot open";
    return {};
  }
  std::vector<Row> rows;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto f = split_tabs(line);
    auto fail = [&](const std::string& what) {
      *error = path + ":" + std::to_string(line_no) + ": " + what;
      return std::vector<Row>{};
    };
    if (f.size() != 9)
      return fail("expected 9 tab-separated columns, got " + std::to_string(f.size()));
    Row r;
    r.line = line_no;
    r.provider = f[0] == "-" ? "" : f[0];
    if (f[1] != "any") {
      auto stage = parse_stage(f[1]);
      if (!stage) return fail("bad stage " + f[1]);
      r.stage = *stage;
    }
    r.wire = f[2];
    r.reply = make_reply(f[2]);
    if (r.reply.code == 0 && f[2].rfind("0 ", 0) != 0) return fail("reply does not parse: " + f[2]);
    auto type = parse_bounce_type(f[3]);
    auto subtype = parse_subtype(f[4]);
    auto category = parse_category(f[5]);
    if (!type || !subtype || !category) return fail("bad type, subtype or category");
    if ((f[6] != "0" && f[6] != "1") || (f[7] != "0" && f[7] != "1"))
      return fail("suppress and throttle are 0 or 1");
    r.want.type = *type;
    r.want.subtype = *subtype;
    r.want.category = *category;
    r.want.suppress = f[6] == "1";
    r.want.throttle = f[7] == "1";
    r.source = f[8];
    if (r.source.empty()) return fail("no source");
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace mta::bounce::testing
