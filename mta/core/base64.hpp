// Base64 (RFC 4648, standard alphabet with padding), for SMTP AUTH and the
// HTTP API's raw messages.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mta::core {

std::string base64_encode(std::string_view in);
// Ignores CR, LF, space and tab (MIME line breaks); nullopt on any other
// character outside the alphabet or bad padding.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace mta::core
