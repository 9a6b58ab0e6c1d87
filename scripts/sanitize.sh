#!/usr/bin/env bash
# Builds every target with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake preset "asan", into build-asan/) and runs the whole test suite
# under them. Any report fails the run (-fno-sanitize-recover, halt_on_error).
#   scripts/sanitize.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset asan >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# Leaks inside libraries kino does not own (libtorch's and OpenMP's
# process-lifetime singletons) are not ours to fix; see the file.
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
cd build-asan
ctest -j"$(nproc)" --output-on-failure "$@"
