#!/usr/bin/env bash
# Builds kino and runs the whole test suite (unit, parity against
# ../shared/fixtures, end to end, prompt following) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest -j"$(nproc)" --output-on-failure "$@"
