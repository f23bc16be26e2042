# Every third-party dependency comes from a Debian 12 package
# (packaging/install-deps.sh); see shared/research/build-spike.md for why each
# line is the way it is.
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(CURL REQUIRED) # module mode: CURL::libcurl
find_package(RocksDB CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
find_package(nlohmann_json 3.11 CONFIG REQUIRED)
find_package(fmt 9 CONFIG REQUIRED) # before restinio, whose config needs fmt::fmt
find_package(spdlog 1.10 CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(restinio 0.6.16 CONFIG REQUIRED)
# restinio's exported target adds ASIO_DISABLE_STD_STRING_VIEW to everything
# that links it, which breaks asio::buffer(std::string_view) and makes asio
# differ between targets.
set_property(TARGET restinio::restinio PROPERTY INTERFACE_COMPILE_DEFINITIONS ASIO_STANDALONE)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(OPENDKIM REQUIRED IMPORTED_TARGET opendkim)
if(MTA_BUILD_TESTS)
  find_package(doctest CONFIG REQUIRED)
  include(doctest)
endif()

add_library(mta_asio INTERFACE)
target_compile_definitions(mta_asio INTERFACE ASIO_STANDALONE
  $<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1>)
target_link_libraries(mta_asio INTERFACE Threads::Threads)

# Flags every target of ours gets (never exported to third-party code).
add_library(mta_flags INTERFACE)
target_compile_options(mta_flags INTERFACE -Wall -Wextra
  # GCC 12 reports a false mismatched-new-delete at the end of coroutines.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
if(MTA_WERROR)
  target_compile_options(mta_flags INTERFACE -Werror)
endif()
if(MTA_SANITIZE)
  target_compile_options(mta_flags INTERFACE -fsanitize=address,undefined
    -fno-sanitize-recover=all -fno-omit-frame-pointer
    $<$<CXX_COMPILER_ID:Clang>:-fno-sanitize=function>)
  target_link_options(mta_flags INTERFACE -fsanitize=address,undefined)
endif()
