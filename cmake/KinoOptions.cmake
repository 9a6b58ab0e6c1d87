# Build options shared by every kino target.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()

# The schedulers rely on IEEE infinities (log 0, expm1(-inf)): never fast-math.
function(kino_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -fno-fast-math)
endfunction()
