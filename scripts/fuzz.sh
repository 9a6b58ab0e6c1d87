#!/usr/bin/env bash
# Fuzzes kino's torch-free parsers with libFuzzer (clang, ASan + UBSan):
# safetensors, .pth, kino.json manifests, prompt files, storyboards.
#   scripts/fuzz.sh [SECONDS_PER_TARGET=600] [TARGET...]
# Seeds come from fuzz/corpus/<target>/; the growing corpus lives in
# build-fuzz/corpus/, crashing inputs in build-fuzz/crashes/<target>/.
# Prints a table and writes bench/results/fuzz.json (executions, seconds,
# corpus size, crashes per target). Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh fuzz
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors pth manifest prompt_file storyboard)

cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null

mkdir -p bench/results
rows=()
status=0
printf '%-12s %12s %8s %8s %8s\n' target executions seconds corpus crashes
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t crashes=build-fuzz/crashes/$t
  mkdir -p "$corpus" "$crashes"
  log=build-fuzz/$t.log
  rc=0
  ASAN_OPTIONS=detect_leaks=1 build-fuzz/fuzz/fuzz_"$t" "$corpus" fuzz/corpus/"$t" -max_total_time="$seconds" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  n_corpus=$(find "$corpus" -type f | wc -l)
  n_crash=$(find "$crashes" -type f | wc -l)
  [ "$rc" -eq 0 ] && [ "$n_crash" -eq 0 ] || status=1
  printf '%-12s %12s %8s %8s %8s\n' "$t" "$execs" "$seconds" "$n_corpus" "$n_crash"
  rows+=("{\"target\": \"$t\", \"executions\": $execs, \"seconds\": $seconds, \"corpus\": $n_corpus, \"crashes\": $n_crash, \"exit\": $rc}")
done
{
  printf '{"date": "%s", "kino_commit": "%s", "sanitizers": "address,undefined", "targets": [\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  for i in "${!rows[@]}"; do
    [ "$i" -eq 0 ] || printf ',\n'
    printf '  %s' "${rows[$i]}"
  done
  printf '\n]}\n'
} > bench/results/fuzz.json
exit $status
