# Build options shared by every kino target.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

# The schedulers rely on IEEE infinities (log 0, expm1(-inf)): never fast-math.
function(kino_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -fno-fast-math)
endfunction()

# Sanitized builds: KINO_SANITIZE=address,undefined (scripts/sanitize.sh)
# instruments every target; KINO_FUZZ builds the libFuzzer targets of the
# torch-free parsers with clang (scripts/fuzz.sh).
set(KINO_SANITIZE "" CACHE STRING "Sanitizers for every target, e.g. address,undefined")
option(KINO_FUZZ "Build only kino_core and the libFuzzer targets (needs clang)" OFF)
if(KINO_FUZZ AND NOT KINO_SANITIZE)
  set(KINO_SANITIZE "address,undefined")
endif()
if(KINO_SANITIZE)
  add_compile_options(-fsanitize=${KINO_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${KINO_SANITIZE})
endif()
if(KINO_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
