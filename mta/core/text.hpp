// Small text helpers shared across modules. ASCII only: mail protocols are
// defined on octets, so nothing here depends on the C locale.
#pragma once

#include <string>
#include <string_view>

namespace mta::core {

// `s` with A-Z turned into a-z; every other octet as it was.
std::string ascii_lower(std::string_view s);

// `s` without the spaces and tabs at either end.
std::string_view trim_wsp(std::string_view s);

// `s` safe as XML or HTML text and attribute values: & < > " ' become
// &amp; &lt; &gt; &quot; &#39;.
std::string escape_markup(std::string_view s);

}  // namespace mta::core
