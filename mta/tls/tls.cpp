#include "mta/tls/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace mta::tls {

core::Result<std::shared_ptr<asio::ssl::context>> make_server_context(const std::string& cert_file,
                                                                      const std::string& key_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  asio::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  if (ec) return core::make_error("TLS options: " + ec.message());
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return core::make_error("TLS certificate " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return core::make_error("TLS key " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return core::make_error("TLS key " + key_file + " does not match certificate " + cert_file);
  // Sessions are short and many: no session cache needed for submission.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
  return ctx;
}

}  // namespace mta::tls
