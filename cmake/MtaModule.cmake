# mta_module(NAME SOURCES ... [DEPS ...] [PRIVATE_DEPS ...] [TESTS ...])
#
# Builds the static library mta_NAME from mta/NAME. Headers are included as
# "mta/NAME/x.hpp" from the repository root. DEPS are public (what the
# module's headers need), PRIVATE_DEPS are what only its sources need: a
# third-party library is linked PRIVATE by the one module that wraps it.
# TESTS are doctest sources (tests/NAME/*_test.cpp) built into mta_NAME_test,
# one ctest entry per TEST_CASE.
function(mta_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS;TESTS;TEST_DEPS" ${ARGN})
  add_library(mta_${name} STATIC ${M_SOURCES})
  target_include_directories(mta_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(mta_${name} PUBLIC ${M_DEPS} mta_flags PRIVATE ${M_PRIVATE_DEPS})
  if(MTA_BUILD_TESTS AND M_TESTS)
    add_executable(mta_${name}_test ${M_TESTS})
    target_link_libraries(mta_${name}_test PRIVATE mta_${name} mta_doctest_main ${M_TEST_DEPS})
    doctest_discover_tests(mta_${name}_test TEST_PREFIX "${name}: "
      PROPERTIES LABELS unit)
  endif()
endfunction()
