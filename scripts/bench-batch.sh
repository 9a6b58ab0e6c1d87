#!/usr/bin/env bash
# A batch of N prompts costs one model load plus N generations: compares
# `kino batch` (model loaded once) with N separate `kino generate` calls.
#   scripts/bench-batch.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
[ -x build/kino ] || bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$n"); do echo "a small green triangle moving up on a black background"; done > "$tmp/p.txt"
t0=$(date +%s.%N)
build/kino -q batch "$tmp/p.txt" -d "$tmp" --json > "$tmp/batch.jsonl"
t1=$(date +%s.%N)
for i in $(seq "$n"); do build/kino -q generate "a small green triangle moving up on a black background" --seed "$i" -o "$tmp/s$i.mp4"; done
t2=$(date +%s.%N)
gen=$(grep '"timings"' "$tmp/batch.jsonl" | python3 -c 'import sys,json; print(sum(json.loads(l)["timings"]["total_s"] for l in sys.stdin))')
batch=$(echo "$t1 - $t0" | bc -l)
separate=$(echo "$t2 - $t1" | bc -l)
load=$(echo "$batch - $gen" | bc -l)
printf '| N | batch total | of which generation | load + startup (batch) | %d separate runs | ratio |\n|---|---|---|---|---|---|\n' "$n"
printf '| %d | %.2f s | %.2f s | %.2f s | %.2f s | %.2fx |\n' "$n" "$batch" "$gen" "$load" "$separate" "$(echo "$separate / $batch" | bc -l)"
printf '{"n": %d, "batch_s": %.3f, "generation_s": %.3f, "load_s": %.3f, "separate_s": %.3f}\n' "$n" "$batch" "$gen" "$load" "$separate"
