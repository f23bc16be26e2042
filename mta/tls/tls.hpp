// TLS contexts (OpenSSL 3 through asio::ssl): one server context per
// listener that offers STARTTLS, and later the client context for delivery.
#pragma once

#include <asio/ssl/context.hpp>

#include <memory>
#include <string>

#include "mta/core/result.hpp"

namespace mta::tls {

// TLS 1.2+ with the certificate chain and key from PEM files.
core::Result<std::shared_ptr<asio::ssl::context>> make_server_context(const std::string& cert_file,
                                                                      const std::string& key_file);

}  // namespace mta::tls
