// I/O on a connection that STARTTLS may have upgraded: the same socket is
// read and written in clear text before the handshake and through the TLS
// stream after it. Used by the SMTP server session and the delivery client.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/stream.hpp>

#include <cstddef>
#include <utility>

namespace mta::tls {

using Stream = asio::ssl::stream<asio::ip::tcp::socket&>;

// Reads what is available into `buf`; through `tls` when it is not null.
asio::awaitable<std::pair<asio::error_code, size_t>> read_some(asio::ip::tcp::socket& sock,
                                                               Stream* tls,
                                                               asio::mutable_buffer buf);
// Writes all of `buf`; through `tls` when it is not null.
asio::awaitable<asio::error_code> write_all(asio::ip::tcp::socket& sock, Stream* tls,
                                            asio::const_buffer buf);

}  // namespace mta::tls
