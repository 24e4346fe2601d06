# gyre_flags: the one INTERFACE target that carries Gyre's warnings, sanitizers
# and feature macros. Every Gyre target links it PRIVATE (or PUBLIC for test
# executables); third-party sources never do.
add_library(gyre_flags INTERFACE)
add_library(gyre::flags ALIAS gyre_flags)

target_compile_options(gyre_flags INTERFACE
  -Wall -Wextra -Werror -Wpedantic
  -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
  -Wpointer-arith -Wcast-qual -Wwrite-strings -Wvla -Wformat=2
  -Wundef -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough
  -fno-common)
# _GNU_SOURCE for pthread and libc extensions (C11 mode hides them otherwise).
target_compile_definitions(gyre_flags INTERFACE _GNU_SOURCE)

if(GY_ASAN AND GY_TSAN)
  message(FATAL_ERROR "GY_ASAN and GY_TSAN cannot be combined")
endif()

set(_gy_san "")
if(GY_ASAN)
  list(APPEND _gy_san address)
endif()
if(GY_UBSAN)
  list(APPEND _gy_san undefined)
endif()
if(GY_TSAN)
  list(APPEND _gy_san thread)
endif()
if(_gy_san)
  list(JOIN _gy_san "," _gy_san_list)
  # -fno-sanitize-recover: a UBSan report ends the process, so a test fails.
  target_compile_options(gyre_flags INTERFACE
    -fsanitize=${_gy_san_list} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(gyre_flags INTERFACE -fsanitize=${_gy_san_list})
endif()
# ck's ck_pr uses inline assembly that TSan cannot see; its compiler-builtin
# variant is equivalent and instrumented.
if(GY_TSAN)
  target_compile_definitions(gyre_flags INTERFACE CK_USE_CC_BUILTINS=1)
endif()
# Macros that code and tests test with #if; each is 0 or 1, so -Wundef holds.
foreach(_opt GY_ASAN GY_UBSAN GY_TSAN GY_FAILPOINTS)
  if(${_opt})
    target_compile_definitions(gyre_flags INTERFACE ${_opt}=1)
  else()
    target_compile_definitions(gyre_flags INTERFACE ${_opt}=0)
  endif()
endforeach()
