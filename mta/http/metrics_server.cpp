#include "mta/http/metrics_server.hpp"

#include <spdlog/spdlog.h>
#include <restinio/all.hpp>

#include <future>

#include "mta/metrics/metrics.hpp"

namespace mta::http {
namespace {
using Traits = restinio::traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t>;
using HttpServer = restinio::http_server_t<Traits>;
}  // namespace

struct MetricsServer::Impl {
  asio::io_context& io;
  core::HostPort listen;
  std::unique_ptr<HttpServer> server;
  bool open = false;
};

MetricsServer::MetricsServer(asio::io_context& io, core::HostPort listen)
    : impl_(std::make_unique<Impl>(Impl{io, std::move(listen), nullptr})) {}

MetricsServer::~MetricsServer() = default;

core::Status MetricsServer::start() {
  try {
    impl_->server =
        std::make_unique<HttpServer>(restinio::external_io_context(impl_->io), [&](auto& settings) {
          settings.address(impl_->listen.host)
              .port(impl_->listen.port)
              .request_handler([](restinio::request_handle_t req) {
                const auto& h = req->header();
                if (h.path() == "/metrics" && (h.method() == restinio::http_method_get() ||
                                               h.method() == restinio::http_method_head())) {
                  return req->create_response()
                      .append_header(restinio::http_field::content_type,
                                     "text/plain; version=0.0.4; charset=utf-8")
                      .set_body(metrics::render())
                      .done();
                }
                return req->create_response(restinio::status_not_found())
                    .append_header(restinio::http_field::content_type, "text/plain")
                    .set_body("not found: try GET /metrics\n")
                    .done();
              });
        });
    impl_->server->open_sync();
    impl_->open = true;
  } catch (const std::exception& e) {
    return core::make_error("cannot listen on " + impl_->listen.to_string() +
                            " for metrics: " + e.what());
  }
  spdlog::info("metrics=listening address={}", impl_->listen.to_string());
  return core::Ok{};
}

void MetricsServer::stop() {
  if (!impl_->open) return;
  impl_->open = false;
  std::promise<void> done;
  impl_->server->close_async([&done] { done.set_value(); },
                             [&done](std::exception_ptr) { done.set_value(); });
  done.get_future().wait();
}

}  // namespace mta::http
