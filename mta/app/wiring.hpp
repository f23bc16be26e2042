// Pieces of start-up shared by `serve` and the tools.
#pragma once

#include <memory>
#include <string>

#include "mta/bounce/classifier.hpp"
#include "mta/config/config.hpp"
#include "mta/core/result.hpp"

namespace mta::app {

// The shipped bounce rules plus the operator's, compiled. Errors carry
// FILE:LINE:COL.
core::Result<std::shared_ptr<const bounce::Classifier>> load_classifier(const config::Config& cfg);

}  // namespace mta::app
