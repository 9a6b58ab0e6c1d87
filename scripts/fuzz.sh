#!/usr/bin/env bash
# Fuzzes kino's torch-free parsers with libFuzzer (clang, ASan + UBSan):
# safetensors, .pth, GGUF, kino.json manifests, prompt files, storyboards.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET...]
# Each target runs until 1,000,000 executions or SECONDS_PER_TARGET,
# whichever comes first ($KINO_FUZZ_RUNS changes the count).
# Seeds come from fuzz/corpus/<target>/; the growing corpus lives in
# build-fuzz/corpus/, crashing inputs in build-fuzz/crashes/<target>/.
# Prints a table and writes bench/results/fuzz/<target>.json (executions,
# seconds, corpus size, crashes), joined into bench/results/fuzz.json with
# the latest run of every target. Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh fuzz
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors pth gguf manifest prompt_file storyboard)

cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

mkdir -p bench/results/fuzz
status=0
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '%-12s %12s %8s %8s %8s\n' target executions seconds corpus crashes
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t
  mkdir -p "$corpus" "$crashes"
  log=build-fuzz/$t.log
  rc=0
  ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz/fuzz_"$t" "$corpus" fuzz/corpus/"$t" -max_total_time="$seconds" -runs="${KINO_FUZZ_RUNS:-1000000}" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' || true)
  took=${took:-$seconds}
  n_corpus=$(find "$corpus" -type f | wc -l)
  n_crash=$(find "$crashes" -type f | wc -l)
  [ "$rc" -eq 0 ] && [ "$n_crash" -eq 0 ] || status=1
  printf '%-12s %12s %8s %8s %8s\n' "$t" "$execs" "$took" "$n_corpus" "$n_crash"
  printf '{"target": "%s", "date": "%s", "kino_commit": "%s", "sanitizers": "address,undefined", "executions": %s, "seconds": %s, "corpus": %s, "crashes": %s, "exit": %s}\n' \
    "$t" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$execs" "$took" "$n_corpus" "$n_crash" "$rc" > bench/results/fuzz/"$t".json
done
{
  printf '[\n'
  first=1
  for f in bench/results/fuzz/*.json; do
    [ $first -eq 1 ] || printf ',\n'
    first=0
    printf '  %s' "$(cat "$f")"
  done
  printf '\n]\n'
} > bench/results/fuzz.json
exit $status
