#include "mta/tls/stream.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace mta::tls {
namespace {
constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
}  // namespace

asio::awaitable<std::pair<asio::error_code, size_t>> read_some(asio::ip::tcp::socket& sock,
                                                               Stream* tls,
                                                               asio::mutable_buffer buf) {
  if (tls) {
    auto [ec, n] = co_await tls->async_read_some(buf, kNoThrow);
    co_return std::pair{ec, n};
  }
  auto [ec, n] = co_await sock.async_read_some(buf, kNoThrow);
  co_return std::pair{ec, n};
}

asio::awaitable<asio::error_code> write_all(asio::ip::tcp::socket& sock, Stream* tls,
                                            asio::const_buffer buf) {
  if (tls) {
    auto [ec, n] = co_await asio::async_write(*tls, buf, kNoThrow);
    co_return ec;
  }
  auto [ec, n] = co_await asio::async_write(sock, buf, kNoThrow);
  co_return ec;
}

}  // namespace mta::tls
