#!/usr/bin/env bash
# Generation benchmark on this machine: the default kino-tiny clip and the
# reference fixture pipeline, each timed over several runs (wall clock of
# the whole process, and kino's own stage times). Prints a table and JSON.
#   scripts/bench.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
kino=build/kino
[ -x "$kino" ] || bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bench() {  # name, then kino generate arguments
  local name=$1; shift
  local times=() stages=""
  for i in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$kino" generate "$@" --seed "$i" -o "$tmp/out.mp4" 2>"$tmp/log"
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
    stages=$(grep -o 'text [0-9.]*s, denoise [0-9.]*s, decode [0-9.]*s' "$tmp/log" || true)
  done
  local sorted median
  sorted=$(printf '%s\n' "${times[@]}" | sort -g)
  median=$(echo "$sorted" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  printf '| %-28s | %6.2f s | %6.2f s | %6.2f s | %s |\n' "$name" "$median" "$(echo "$sorted" | head -1)" \
    "$(echo "$sorted" | tail -1)" "$stages"
  json+=("{\"case\": \"$name\", \"runs\": $runs, \"median_s\": $median, \"stages_last_run\": \"$stages\"}")
}

json=()
echo "kino generate, $runs runs each, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| case                         | median   | min      | max      | stages (last run) |"
echo "|------------------------------|----------|----------|----------|-------------------|"
if [ -f models/kino-tiny/kino.json ]; then
  bench "kino-tiny default clip" "a large red circle moving to the right on a black background"
fi
if [ -d ../shared/fixtures/wan21-tiny ]; then
  bench "wan21-tiny fixture pipeline" "a large red circle moving to the right on a black background" \
    --model tests/fixtures/wan21-tiny.kino.json
fi
echo
echo "[$(IFS=,; echo "${json[*]}")]"
