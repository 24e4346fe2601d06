# Test registration helpers. Every test runs with a timeout and the sanitizer
# options of its build; labels: unit, integration, concurrency, stress, fuzz,
# canary. Exit code 77 means "skipped" (tools/dev fails a skip when CI=true).

set(GY_TEST_TIMEOUT 120 CACHE STRING "default per-test timeout, seconds")
set(GY_TEST_ENV
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=${PROJECT_SOURCE_DIR}/tests/tsan.supp")

# gy_add_test(NAME n COMMAND argv... [LABELS l...] [TIMEOUT s] [ENV k=v...])
function(gy_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT ${GY_TEST_TIMEOUT})
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  set_tests_properties(${T_NAME} PROPERTIES
    LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
    ENVIRONMENT "${GY_TEST_ENV};${T_ENV}")
endfunction()

# gy_add_cmocka_test(NAME module.name SOURCES f.c... [LIBS t...] [LABELS l...]
#                    [TIMEOUT s] [ENV k=v...])
# Builds test_<module>_<name> and registers it under NAME.
function(gy_add_cmocka_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ENV" ${ARGN})
  string(REPLACE "." "_" _exe "test_${T_NAME}")
  add_executable(${_exe} ${T_SOURCES})
  target_link_libraries(${_exe} PRIVATE gyre_test_support ${T_LIBS})
  gy_add_test(NAME ${T_NAME} COMMAND ${_exe} LABELS ${T_LABELS}
              TIMEOUT "${T_TIMEOUT}" ENV ${T_ENV})
endfunction()

# gy_add_canary(NAME n SOURCES f.c... EXPECT regex [LIBS t...] [LABELS l...])
# A canary must be caught by its sanitizer: it passes only when the program
# fails AND its output carries the sanitizer's report (EXPECT). It is
# registered WILL_FAIL around a wrapper that fails exactly in that case, so a
# canary that runs clean, or dies of something else, fails the suite.
function(gy_add_canary)
  cmake_parse_arguments(T "" "NAME;EXPECT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE gyre_test_support ${T_LIBS})
  gy_add_test(NAME ${T_NAME}
    COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:${T_NAME}> -DEXPECT=${T_EXPECT}
            -P ${PROJECT_SOURCE_DIR}/tools/cmake/ExpectSanitizer.cmake
    LABELS canary ${T_LABELS} TIMEOUT 60)
  set_tests_properties(${T_NAME} PROPERTIES WILL_FAIL TRUE)
endfunction()
