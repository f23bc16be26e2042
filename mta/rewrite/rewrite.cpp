#include "mta/rewrite/rewrite.hpp"

#include <algorithm>
#include <cstring>

#include "mta/rewrite/codec.hpp"
#include "mta/rewrite/html.hpp"
#include "mta/rewrite/mime.hpp"

namespace mta::rewrite {
namespace detail {

// RFC 5322 2.1.1: a line is at most 998 octets without its CRLF.
constexpr size_t kMaxLine = 998;

enum class EditKind : uint8_t { kLink, kRemove, kPixel };

// One change point in a part's decoded HTML. Positions are offsets into the
// decoded text.
struct Edit {
  EditKind kind;
  char quote = 0;         // kLink: the value's quote ('"', '\'' or 0)
  uint32_t link = 0;      // kLink: index into links
  size_t name_begin = 0;  // kLink: the "h" of href (a line may break before it)
  size_t begin = 0;       // kLink: value; kRemove: deleted range; kPixel: insertion point
  size_t end = 0;
  size_t close = 0;  // kLink: after the closing quote
  size_t tail = 0;   // octets from `close` (kPixel: `begin`) to the end of the line
  size_t first() const { return kind == EditKind::kLink ? name_begin : begin; }
  size_t last() const { return kind == EditKind::kLink ? close : end; }
};

// QP: a run of whole encoded lines holding edits [first, last); it is
// re-encoded when one of them applies, the lines around it are copied.
struct Region {
  size_t enc_begin, enc_end;  // offsets into the message
  size_t dec_begin, dec_end;  // offsets into the decoded text
  size_t first, last;
  bool soft_end;  // its last line ends in a soft break that the next line continues
};

struct Part {
  Cte cte = Cte::kIdentity;
  bool line_limit = false;
  size_t body_begin = 0, body_end = 0;
  size_t b64_data_end = 0;  // base64: after the last base64 character (then line ends)
  std::string decoded;      // QP and base64; identity parts use the message itself
  std::vector<Edit> edits;  // sorted, not overlapping
  std::vector<Region> regions;
};

struct Ctx {
  const ClickUrl& click;
  const std::vector<Link>& links;
  const std::string& pixel;
};

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '\'' ||
        c == '=' || c == '<' || c == '>' || c == '`') {
      return true;
    }
  }
  return false;
}

// `v` as the value of an attribute quoted with `quote` (0: unquoted; then
// quoted with '"' when it must be).
size_t append_escaped(std::string& out, std::string_view v, char quote) {
  const size_t before = out.size();
  const bool add = quote == 0 && needs_quotes(v);
  const char q = add ? '"' : quote;
  if (add) out += '"';
  const bool plain = std::memchr(v.data(), '&', v.size()) == nullptr &&
                     std::memchr(v.data(), q, v.size()) == nullptr &&
                     std::memchr(v.data(), '\r', v.size()) == nullptr &&
                     std::memchr(v.data(), '\n', v.size()) == nullptr &&
                     std::memchr(v.data(), '\0', v.size()) == nullptr;
  if (plain) {  // the usual case: nothing to escape
    out.append(v);
    if (add) out += '"';
    return out.size() - before;
  }
  size_t start = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    const char c = v[k];
    const char* rep = c == '&'                 ? "&amp;"
                      : c == '"' && q == '"'   ? "&quot;"
                      : c == '\'' && q == '\'' ? "&#39;"
                                               : nullptr;
    // CR, LF and NUL are dropped: a browser ignores line breaks in a URL,
    // and bare ones must not reach the message.
    const bool drop = c == '\r' || c == '\n' || c == '\0';
    if (rep || drop) {
      out.append(v.data() + start, k - start);
      if (rep) out.append(rep);
      start = k + 1;
    }
  }
  out.append(v.data() + start, v.size() - start);
  if (add) out += '"';
  return out.size() - before;
}

// Writes src[from, to) with the edits applied to `dst`; true if anything
// differs from the source. With `limit`, keeps lines within 998 octets by
// breaking inside the tag around a replaced value (HTML allows a line break
// between attributes). `dst` is at the start of a line on entry.
bool emit(std::string_view src, size_t from, size_t to, const Edit* e, const Edit* end,
          const Ctx& ctx, std::string& dst, bool limit) {
  bool changed = false;
  size_t line_start = dst.size();
  auto copy = [&](size_t a, size_t b) {
    if (b <= a) return;
    dst.append(src.data() + a, b - a);
    if (limit) {
      const void* nl = memrchr(src.data() + a, '\n', b - a);
      if (nl)
        line_start =
            dst.size() - (b - 1 - static_cast<size_t>(static_cast<const char*>(nl) - src.data()));
    }
  };
  auto fits = [&](size_t more) { return dst.size() - line_start + more <= kMaxLine; };
  auto newline = [&] {
    dst += "\r\n";
    line_start = dst.size();
  };
  std::string value;
  for (; e != end; ++e) {
    switch (e->kind) {
      case EditKind::kLink: {
        auto repl = ctx.click(e->link, ctx.links[e->link].url);
        if (!repl || e->name_begin < from || e->close > to) break;
        copy(from, e->name_begin);
        std::string_view mid = src.substr(e->name_begin, e->begin - e->name_begin);
        value.clear();
        append_escaped(value, *repl, e->quote);
        // Break before the attribute when the tag no longer fits the line,
        // and after the value when what follows no longer does.
        if (limit && dst.size() > line_start &&
            !fits(mid.size() + value.size() + (e->close - e->end))) {
          newline();
        }
        dst.append(mid);
        dst.append(value);
        dst.append(src.data() + e->end, e->close - e->end);
        if (limit && e->tail > 0 && !fits(e->tail)) newline();
        from = e->close;
        changed = true;
        break;
      }
      case EditKind::kRemove:
        if (e->begin < from || e->end > to) break;
        copy(from, e->begin);
        from = e->end;
        changed = true;
        break;
      case EditKind::kPixel:
        if (ctx.pixel.empty() || e->begin < from || e->begin > to) break;
        copy(from, e->begin);
        if (limit && dst.size() > line_start && !fits(ctx.pixel.size())) newline();
        dst.append(ctx.pixel);
        if (limit && e->tail > 0 && !fits(e->tail)) newline();
        from = e->begin;
        changed = true;
        break;
    }
  }
  copy(from, to);
  return changed;
}

size_t rest_of_line(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const void* nl = std::memchr(s.data() + pos, '\n', s.size() - pos);
  size_t e = nl ? static_cast<size_t>(static_cast<const char*>(nl) - s.data()) : s.size();
  if (nl && e > pos && s[e - 1] == '\r') --e;
  return e - pos;
}

// Groups the edits of a QP part into runs of whole encoded lines. Every
// encoded line starts at column 0, so a run can be re-encoded on its own: it
// ends with the hard break of its last line or, when that line was
// soft-broken, with a soft break of its own.
void make_regions(Part& p, const std::vector<QpLine>& lines) {
  auto line_of = [&](size_t pos) {
    auto it = std::upper_bound(lines.begin(), lines.end(), pos,
                               [](size_t v, const QpLine& l) { return v < l.dec_end; });
    return it == lines.end() ? lines.size() - 1 : static_cast<size_t>(it - lines.begin());
  };
  const size_t body_size = p.body_end - p.body_begin;
  size_t last_line = 0;
  auto close = [&](Region& r) {
    r.enc_end = p.body_begin + lines[last_line].enc_end;
    r.dec_end = lines[last_line].dec_end;
    r.soft_end = lines[last_line].soft && lines[last_line].enc_end < body_size;
  };
  for (size_t i = 0; i < p.edits.size(); ++i) {
    const Edit& e = p.edits[i];
    size_t a = line_of(e.first());
    size_t b = line_of(e.last() > e.first() ? e.last() - 1 : e.first());
    if (!p.regions.empty() && a <= last_line) {
      last_line = std::max(last_line, b);
      p.regions.back().last = i + 1;
      continue;
    }
    if (!p.regions.empty()) close(p.regions.back());
    last_line = b;
    Region r{};
    r.enc_begin = p.body_begin + (a == 0 ? 0 : lines[a - 1].enc_end);
    r.dec_begin = a == 0 ? 0 : lines[a - 1].dec_end;
    r.first = i;
    r.last = i + 1;
    p.regions.push_back(r);
  }
  if (!p.regions.empty()) close(p.regions.back());
}

bool looks_binary(std::string_view html) {
  if (html.size() >= 2 &&
      ((html[0] == '\xFE' && html[1] == '\xFF') || (html[0] == '\xFF' && html[1] == '\xFE'))) {
    return true;  // UTF-16 byte order mark
  }
  return std::memchr(html.data(), '\0', html.size()) != nullptr;
}

}  // namespace detail

using namespace detail;

struct Template::Impl {
  std::string message;
  std::vector<Part> parts;
  std::vector<Link> links;
  size_t html_bytes = 0;
};

Template Template::parse(std::string_view message) {
  return parse_owned(std::string(message));
}

Template Template::parse_owned(std::string&& message) {
  auto impl = std::make_shared<Impl>();
  impl->message = std::move(message);
  const std::string_view m = impl->message;
  for (const HtmlPartRef& ref : find_html_parts(m)) {
    Part p;
    p.cte = ref.cte;
    p.line_limit = ref.line_limit;
    p.body_begin = ref.body_begin;
    p.body_end = ref.body_end;
    const std::string_view raw = m.substr(ref.body_begin, ref.body_end - ref.body_begin);
    std::vector<QpLine> lines;
    std::string_view html;
    switch (ref.cte) {
      case Cte::kIdentity:
        html = raw;
        break;
      case Cte::kQuotedPrintable:
        p.decoded.reserve(raw.size());
        qp_decode(raw, p.decoded, lines);
        html = p.decoded;
        break;
      case Cte::kBase64: {
        if (!base64_decode(raw, p.decoded)) continue;
        html = p.decoded;
        size_t k = raw.find_last_not_of(" \t\r\n");
        p.b64_data_end = ref.body_begin + (k == std::string_view::npos ? 0 : k + 1);
        break;
      }
    }
    if (looks_binary(html)) continue;

    HtmlScan scan = scan_html(html);
    for (const LinkTag& t : scan.links) {
      for (auto [b, e] : t.removals) {
        Edit ed{EditKind::kRemove};
        ed.begin = b;
        ed.end = e;
        p.edits.push_back(ed);
      }
      if (t.no_track || !t.has_href || !t.href_has_value) continue;
      auto decoded = decode_attribute(html.substr(t.value_begin, t.value_end - t.value_begin));
      if (!decoded) continue;
      std::string url = clean_url(*decoded);
      if (!is_trackable(url)) continue;
      Edit ed{EditKind::kLink};
      ed.quote = t.quote;
      ed.link = static_cast<uint32_t>(impl->links.size());
      ed.name_begin = t.name_begin;
      ed.begin = t.value_begin;
      ed.end = t.value_end;
      ed.close = t.attr_end;
      if (p.line_limit) ed.tail = rest_of_line(html, ed.close);
      std::string tags;
      if (!t.tags.empty()) tags = decode_attribute(t.tags).value_or(std::string());
      impl->links.push_back({ed.link, std::move(url), std::move(tags)});
      p.edits.push_back(ed);
    }
    Edit px{EditKind::kPixel};
    if (scan.last_body_end) {
      px.begin = *scan.last_body_end;
    } else {
      px.begin = html.size();
      if (px.begin > 0 && html[px.begin - 1] == '\n') --px.begin;
      if (px.begin > 0 && html[px.begin - 1] == '\r') --px.begin;
    }
    px.end = px.begin;
    if (p.line_limit) px.tail = rest_of_line(html, px.begin);
    p.edits.insert(std::upper_bound(p.edits.begin(), p.edits.end(), px.begin,
                                    [](size_t v, const Edit& e) { return v < e.first(); }),
                   px);
    if (ref.cte == Cte::kQuotedPrintable) make_regions(p, lines);
    impl->html_bytes += html.size();
    impl->parts.push_back(std::move(p));
  }
  return Template(std::move(impl));
}

bool Template::has_html() const {
  return !impl_->parts.empty();
}
const std::vector<Link>& Template::links() const {
  return impl_->links;
}
size_t Template::html_bytes() const {
  return impl_->html_bytes;
}
const std::string& Template::message() const {
  return impl_->message;
}

std::string Template::render(const ClickUrl& click_url, std::string_view pixel_url) const {
  const Impl& im = *impl_;
  const std::string_view m = im.message;
  std::string pixel;
  if (!pixel_url.empty()) {
    pixel = "<img src=\"";
    append_escaped(pixel, pixel_url, '"');
    pixel +=
        "\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" "
        "style=\"display:block;width:1px;height:1px;border:0;margin:0;padding:0\" />";
  }
  const Ctx ctx{click_url, im.links, pixel};
  std::string out;
  out.reserve(m.size() + m.size() / 16 + im.links.size() * 96 + im.parts.size() * pixel.size() +
              64);
  std::string scratch;
  size_t pos = 0;
  for (const Part& p : im.parts) {
    out.append(m.data() + pos, p.body_begin - pos);
    const Edit* edits = p.edits.data();
    switch (p.cte) {
      case Cte::kIdentity: {
        std::string_view html = m.substr(p.body_begin, p.body_end - p.body_begin);
        emit(html, 0, html.size(), edits, edits + p.edits.size(), ctx, out, p.line_limit);
        break;
      }
      case Cte::kQuotedPrintable: {
        size_t enc = p.body_begin;
        for (const Region& r : p.regions) {
          out.append(m.data() + enc, r.enc_begin - enc);
          scratch.clear();
          if (emit(p.decoded, r.dec_begin, r.dec_end, edits + r.first, edits + r.last, ctx, scratch,
                   false)) {
            qp_encode(scratch, out, r.soft_end);
            if (r.soft_end) out += "=\r\n";
          } else {
            out.append(m.data() + r.enc_begin, r.enc_end - r.enc_begin);
          }
          enc = r.enc_end;
        }
        out.append(m.data() + enc, p.body_end - enc);
        break;
      }
      case Cte::kBase64: {
        scratch.clear();
        if (emit(p.decoded, 0, p.decoded.size(), edits, edits + p.edits.size(), ctx, scratch,
                 false)) {
          base64_lines(scratch, out);
          out.append(m.data() + p.b64_data_end, p.body_end - p.b64_data_end);
        } else {
          out.append(m.data() + p.body_begin, p.body_end - p.body_begin);
        }
        break;
      }
    }
    pos = p.body_end;
  }
  out.append(m.data() + pos, m.size() - pos);
  return out;
}

}  // namespace mta::rewrite
