#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "mta/protocol/data_reader.hpp"

using namespace mta::protocol;

namespace {

constexpr size_t kBig = 1 << 20;

std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 32 || c >= 127) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// Everything a DataReader tells, for comparing whole outcomes.
struct Outcome {
  std::string body;
  size_t consumed = 0;
  bool done = false;
  bool too_big = false;
  bool long_line = false;
  bool has_nul = false;
  bool bare_lf = false;
  bool eight_bit = false;
  uint64_t total = 0;

  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{body \"" << escape(o.body) << "\" consumed " << o.consumed << " done " << o.done
            << " too_big " << o.too_big << " long_line " << o.long_line << " nul " << o.has_nul
            << " bare_lf " << o.bare_lf << " 8bit " << o.eight_bit << " total " << o.total << "}";
}

Outcome outcome_of(DataReader& r, size_t consumed) {
  return {r.body(),    consumed,    r.done(),      r.too_big(),    r.long_line(),
          r.has_nul(), r.bare_lf(), r.eight_bit(), r.total_bytes()};
}

Outcome read_whole(std::string_view in, size_t max_bytes = kBig, size_t max_line = 998) {
  DataReader r(max_bytes, max_line);
  size_t n = r.feed(in);
  return outcome_of(r, n);
}

// Feeds `in` in pieces whose sizes cycle through `sizes`, like a socket
// would, and checks the feed contract on the way.
Outcome read_chunked(std::string_view in, const std::vector<size_t>& sizes, size_t max_bytes = kBig,
                     size_t max_line = 998) {
  DataReader r(max_bytes, max_line);
  size_t consumed = 0;
  size_t pos = 0;
  for (size_t i = 0; pos < in.size(); ++i) {
    std::string_view piece = in.substr(pos, sizes[i % sizes.size()]);
    bool was_done = r.done();
    size_t n = r.feed(piece);
    if (was_done) CHECK(n == 0);
    if (!r.done()) CHECK(n == piece.size());
    consumed += n;
    pos += piece.size();
  }
  return outcome_of(r, consumed);
}

// What the reader must do, written the slow and obvious way: whole lines,
// one at a time.
Outcome reference(std::string_view in, size_t max_bytes = kBig, size_t max_line = 998) {
  Outcome o;
  std::string stored;
  bool prev_crlf = true;
  size_t pos = 0;
  for (;;) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string_view::npos) break;  // the tests end inputs with complete lines
    std::string_view raw = in.substr(pos, nl - pos);
    bool crlf = !raw.empty() && raw.back() == '\r';
    std::string_view content = crlf ? raw.substr(0, raw.size() - 1) : raw;
    pos = nl + 1;
    if (content == "." && crlf && prev_crlf) {
      o.done = true;
      break;
    }
    std::string line(content == "." || content.empty() || content[0] != '.' ? content
                                                                            : content.substr(1));
    if (line.size() > max_line) o.long_line = true;
    if (!crlf) o.bare_lf = true;
    stored += line + "\r\n";
    prev_crlf = crlf;
  }
  o.consumed = o.done ? pos : in.size();
  for (char c : in.substr(0, o.consumed)) {
    if (c == '\0') o.has_nul = true;
    if (static_cast<unsigned char>(c) >= 0x80) o.eight_bit = true;
  }
  o.total = stored.size();
  o.too_big = stored.size() > max_bytes;
  o.body = stored.substr(0, std::min(stored.size(), max_bytes));
  return o;
}

struct Case {
  std::string in;
  std::string want_body;
  bool want_done;
  size_t want_consumed;  // npos: all of it
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      // Simple messages and where they end.
      {"Subject: x\r\n\r\nhello\r\n.\r\n", "Subject: x\r\n\r\nhello\r\n", true, std::string::npos},
      {".\r\n", "", true, 3},
      {".\r\nMAIL FROM:<a@b.example>\r\n", "", true, 3},
      {"a\r\n.\r\nQUIT\r\n", "a\r\n", true, 6},
      {"\r\n.\r\n", "\r\n", true, std::string::npos},
      {"a\r\nb\r\n", "a\r\nb\r\n", false, std::string::npos},
      {"a\r\n.\r", "a\r\n", false, std::string::npos},
      {"a\r\n.", "a\r\n", false, std::string::npos},
      // Dot-unstuffing.
      {"..x\r\n.\r\n", ".x\r\n", true, std::string::npos},
      {"..\r\n.\r\n", ".\r\n", true, std::string::npos},
      {"...\r\n.\r\n", "..\r\n", true, std::string::npos},
      {".x\r\n.\r\n", "x\r\n", true, std::string::npos},
      {"a\r\n..\r\n..b\r\n.\r\n", "a\r\n.\r\n.b\r\n", true, std::string::npos},
      {"a.\r\n b.\r\n.\r\n", "a.\r\n b.\r\n", true, std::string::npos},
      // Smuggling: only <CRLF>.<CRLF> ends the data.
      {"a\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", true, std::string::npos},
      {"a\r\n.\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", true, std::string::npos},
      {"a\n.\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", true, std::string::npos},
      {"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", true, std::string::npos},
      {"a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", true, std::string::npos},
      {"a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", true, std::string::npos},
      {".\n.\r\n.\r\n", ".\r\n.\r\n", true, std::string::npos},
      {"a\r\n\r.\r\n.\r\n", "a\r\n\r.\r\n", true, std::string::npos},
      {"a\n.\n", "a\r\n.\r\n", false, std::string::npos},
      {"a\r\n.\n", "a\r\n.\r\n", false, std::string::npos},
      {"a\n.\r\n", "a\r\n.\r\n", false, std::string::npos},
      // Bare LF and bare CR.
      {"a\nb\r\n.\r\n", "a\r\nb\r\n", true, std::string::npos},
      {"\n\r\n.\r\n", "\r\n\r\n", true, std::string::npos},
      {"a\rb\r\n.\r\n", "a\rb\r\n", true, std::string::npos},
      {"a\r\r\n.\r\n", "a\r\r\n", true, std::string::npos},
      // Octets the reader flags.
      {std::string("a\0b\r\n.\r\n", 8), std::string("a\0b\r\n", 5), true, std::string::npos},
      {"caf\xc3\xa9\r\n.\r\n", "caf\xc3\xa9\r\n", true, std::string::npos},
      {".\r\n\xff\0", "", true, 3},
  };
  return c;
}

}  // namespace

TEST_SUITE("protocol") {
  TEST_CASE("DATA is unstuffed, normalised and ends only at CRLF.CRLF") {
    for (const auto& c : cases()) {
      Outcome got = read_whole(c.in);
      size_t want_consumed = c.want_consumed == std::string::npos ? c.in.size() : c.want_consumed;
      INFO("in: \"", escape(c.in), "\" got ", got, " want body \"", escape(c.want_body), "\" done ",
           c.want_done, " consumed ", want_consumed);
      CHECK(got.body == c.want_body);
      CHECK(got.done == c.want_done);
      CHECK(got.consumed == want_consumed);
      CHECK(got.total == c.want_body.size());
      CHECK(got == reference(c.in));
    }
  }

  TEST_CASE("DATA flags bare LF, NUL and 8-bit octets, but not past the terminator") {
    struct Flags {
      std::string in;
      bool bare_lf, has_nul, eight_bit;
    } cases[] = {
        {"a\r\n.\r\n", false, false, false},
        {"a\nb\r\n.\r\n", true, false, false},
        {"a\r\n.\n.\r\n.\r\n", true, false, false},
        {std::string("a\0\r\n.\r\n", 7), false, true, false},
        {"\x80\r\n.\r\n", false, false, true},
        {"0123456789abcdef\xff\r\n.\r\n", false, false, true},
        {std::string(".\r\n\n\0\xff", 6), false, false, false},
    };
    for (auto& c : cases) {
      Outcome got = read_whole(c.in);
      INFO("in: \"", escape(c.in), "\" got ", got);
      CHECK(got.done);
      CHECK(got.bare_lf == c.bare_lf);
      CHECK(got.has_nul == c.has_nul);
      CHECK(got.eight_bit == c.eight_bit);
    }
  }

  TEST_CASE("DATA gives the same result however the input is split") {
    for (const auto& c : cases()) {
      Outcome whole = read_whole(c.in);
      for (size_t chunk : {1, 2, 3, 7}) {
        Outcome got = read_chunked(c.in, {chunk});
        INFO("in: \"", escape(c.in), "\" chunk ", chunk, " got ", got, " want ", whole);
        CHECK(got == whole);
      }
      for (size_t i = 0; i <= c.in.size(); ++i) {
        for (size_t j = i; j <= c.in.size(); ++j) {
          Outcome got = read_chunked(c.in, {i, j - i, c.in.size()});
          INFO("in: \"", escape(c.in), "\" split at ", i, " and ", j, " got ", got, " want ",
               whole);
          CHECK(got == whole);
        }
      }
    }
  }

  TEST_CASE("DATA feeds nothing more once done") {
    DataReader r(kBig);
    CHECK(r.feed("a\r\n.\r\nRSET\r\n") == 6);
    CHECK(r.done());
    CHECK(r.feed("RSET\r\n") == 0);
    CHECK(r.feed("") == 0);
    CHECK(r.body() == "a\r\n");
    DataReader empty(kBig);
    CHECK(empty.feed("") == 0);
    CHECK_FALSE(empty.done());
  }

  TEST_CASE("DATA over max_bytes is cut, flagged, and read to its end") {
    struct Case {
      std::string in;
      size_t max_bytes;
      bool want_too_big;
      std::string want_body;
      uint64_t want_total;
    } cases[] = {
        {"abc\r\n.\r\n", 5, false, "abc\r\n", 5},
        {"abc\r\n.\r\n", 4, true, "abc\r", 5},
        {"abc\r\n.\r\n", 0, true, "", 5},
        {".\r\n", 0, false, "", 0},
        // A bare LF is stored as CRLF and counts as two octets.
        {"abc\n\r\n.\r\n", 7, false, "abc\r\n\r\n", 7},
        {"abc\n\r\n.\r\n", 6, true, "abc\r\n\r", 7},
        // A stuffing dot is not stored and does not count.
        {"..abc\r\n.\r\n", 6, false, ".abc\r\n", 6},
        {"..abc\r\n.\r\n", 5, true, ".abc\r", 6},
        {"a\r\nbbbbbbbbbb\r\nc\r\n.\r\nQUIT\r\n", 4, true, "a\r\nb", 18},
    };
    for (auto& c : cases) {
      std::string_view in = c.in;
      size_t want_consumed =
          in.find("\r\n.\r\n") == std::string_view::npos ? 3 : in.find("\r\n.\r\n") + 5;
      Outcome got = read_whole(c.in, c.max_bytes);
      INFO("in: \"", escape(c.in), "\" max ", c.max_bytes, " got ", got);
      CHECK(got.done);
      CHECK(got.consumed == want_consumed);
      CHECK(got.too_big == c.want_too_big);
      CHECK(got.body == c.want_body);
      CHECK(got.total == c.want_total);
      CHECK(got == reference(c.in, c.max_bytes));
      for (size_t chunk : {1, 2, 3, 7}) {
        CHECK(read_chunked(c.in, {chunk}, c.max_bytes) == got);
      }
    }
  }

  TEST_CASE("DATA flags lines longer than max_line octets") {
    const std::string x998(998, 'x');
    const std::string x999(999, 'x');
    struct Case {
      std::string in;
      bool want;
    } cases[] = {
        {x998 + "\r\n.\r\n", false},
        {x999 + "\r\n.\r\n", true},
        {x998 + "\n\r\n.\r\n", false},
        {x999 + "\n\r\n.\r\n", true},
        // Counted after unstuffing: 999 on the wire, 998 stored.
        {"." + x998 + "\r\n.\r\n", false},
        {".." + x998 + "\r\n.\r\n", true},
        // A CR that does not end the line is content.
        {x998 + "\r\r\n.\r\n", true},
        {"a\r\n" + x999 + "\r\nb\r\n.\r\n", true},
    };
    for (auto& c : cases) {
      Outcome whole = read_whole(c.in);
      INFO("line of ", c.in.find('\n'), " octets then \"", escape(c.in.substr(c.in.find('\n'))),
           "\" got ", whole.long_line, " want ", c.want);
      CHECK(whole.done);
      CHECK(whole.long_line == c.want);
      CHECK(whole == reference(c.in));
      for (size_t chunk : {1, 2, 3, 7, 500}) {
        CHECK(read_chunked(c.in, {chunk}) == whole);
      }
    }
    // Small limits make the boundaries easy to see.
    CHECK_FALSE(read_whole("abc\r\n.\r\n", kBig, 3).long_line);
    CHECK(read_whole("abcd\r\n.\r\n", kBig, 3).long_line);
    CHECK_FALSE(read_chunked("abc\r\n.\r\n", {1}, kBig, 3).long_line);
    CHECK(read_chunked("abcd\r\n.\r\n", {1}, kBig, 3).long_line);
  }

  TEST_CASE("DATA matches a line-at-a-time reference on random input") {
    // Inputs rich in the octets that matter, split at random. A fixed seed
    // keeps failures reproducible.
    std::mt19937 rng(5321);
    const std::string alphabet = std::string("..\r\r\n\n\nab \0\xff", 13);
    for (int round = 0; round < 2000; ++round) {
      std::string in;
      size_t len = rng() % 60;
      for (size_t i = 0; i < len; ++i) in += alphabet[rng() % alphabet.size()];
      in += "\r\n.\r\nNEXT";
      size_t max_bytes = rng() % 4 == 0 ? rng() % 40 : kBig;
      size_t max_line = 1 + rng() % 8;
      Outcome want = reference(in, max_bytes, max_line);
      std::vector<size_t> sizes;
      for (int i = 0; i < 5; ++i) sizes.push_back(1 + rng() % 9);
      Outcome got = read_chunked(in, sizes, max_bytes, max_line);
      INFO("in: \"", escape(in), "\" max_bytes ", max_bytes, " max_line ", max_line, " got ", got,
           " want ", want);
      REQUIRE(want.done);
      REQUIRE(got == want);
      REQUIRE(read_whole(in, max_bytes, max_line) == want);
    }
  }

  TEST_CASE("DATA reads a realistic message in socket-sized pieces") {
    std::string msg = "From: a@b.example\r\nTo: c@d.example\r\nSubject: test\r\n\r\n";
    std::string want = msg;
    for (int i = 0; i < 2000; ++i) {
      std::string line = (i % 7 == 0 ? "." : "") + std::string(20 + i % 60, 'a' + i % 26);
      msg += (i % 7 == 0 ? "." : "") + line + "\r\n";
      want += line + "\r\n";
    }
    msg += ".\r\n";
    for (size_t chunk : {1, 1460, 4096, 65536}) {
      Outcome got = read_chunked(msg, {chunk});
      INFO("chunk ", chunk);
      CHECK(got.done);
      CHECK(got.consumed == msg.size());
      CHECK(got.body == want);
      CHECK_FALSE(got.bare_lf);
      CHECK_FALSE(got.too_big);
    }
  }
}
