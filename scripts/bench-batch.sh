#!/usr/bin/env bash
# A batch of N prompts costs one model load plus N generations: compares
# `kino batch` (model loaded once) with N separate `kino generate` calls on
# the default model. Prints a Markdown table and JSON (also written to
# bench/results/batch.json).
#   scripts/bench-batch.sh [N=8]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
[ -x build/kino ] || bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prompt="a small green triangle moving up on a black background"
for i in $(seq "$n"); do echo "$prompt"; done > "$tmp/p.txt"
now() { date +%s.%N; }
t0=$(now)
build/kino -q batch "$tmp/p.txt" -d "$tmp" --json > "$tmp/batch.jsonl"
t1=$(now)
for i in $(seq "$n"); do build/kino -q generate "$prompt" --seed "$((i - 1))" -o "$tmp/s$i.mp4"; done
t2=$(now)
# Generation time inside the batch: the sum of the per-video totals.
gen=$(grep -o '"total_s":[0-9.e+-]*' "$tmp/batch.jsonl" | cut -d: -f2 | awk '{s += $1} END {printf "%.3f", s}')
awk -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v gen="$gen" -v commit="$(git rev-parse --short HEAD)" 'BEGIN {
  batch = t1 - t0; separate = t2 - t1; overhead = batch - gen
  printf "| N | batch total | generation in batch | load + startup (once) | %d separate runs | per separate run | separate / batch |\n", n
  printf "|---|---|---|---|---|---|---|\n"
  printf "| %d | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.2fx |\n", n, batch, gen, overhead, separate, separate / n, separate / batch
  printf "{\"n\": %d, \"batch_s\": %.3f, \"generation_s\": %.3f, \"load_and_startup_s\": %.3f, \"separate_s\": %.3f, \"kino_commit\": \"%s\"}\n",
         n, batch, gen, overhead, separate, commit
}' | tee "$tmp/table"
mkdir -p bench/results
tail -1 "$tmp/table" > bench/results/batch.json
