#!/usr/bin/env bash
# The transformer of a model (default Wan2.1-T2V-1.3B) alone on random
# weights, dense and in the GGUF encodings users download: resident weight
# bytes, seconds per pass and peak RSS, one process per encoding (the peak
# is per process). Prints a table and writes
# bench/results/cpu-quant-MODEL.json.
#   scripts/bench-quant.sh [MODEL] [WxHxF] [passes]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-wan2.1-t2v-1.3b}
size=${2:-256x144x9}
passes=${3:-2}
IFS=x read -r w h f <<<"$size"
bench=build/kino-bench
[ -x "$bench" ] || bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
out=bench/results/cpu-quant-$model.json
echo "transformer of $model, random weights, ${w}x${h}x${f}, $passes passes, CPU $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| weights  | resident GB | s per pass | peak RSS MB | time vs float32 |"
echo "|----------|-------------|------------|-------------|-----------------|"
rows=()
base=
for enc in float32 bfloat16 Q8_0 Q4_K; do
  args=(--dtype float32)
  case $enc in
    float32) ;;
    bfloat16) args=(--dtype bfloat16) ;;
    *) args+=(--weights "$enc") ;;
  esac
  "$bench" --device cpu --model "bench/models/$model.kino.json" --width "$w" --height "$h" --frames "$f" \
    --dit-step-bench "$passes" "${args[@]}" --json "$tmp/r.json" --commit "$(git rev-parse --short HEAD)" >"$tmp/out"
  # "<label> weights <GB> GB <s> s per pass peak RSS <MB> MB ..."
  read -r gb s rss < <(awk '/ per pass /{print $3, $5, $11}' "$tmp/out")
  base=${base:-$s}
  printf '| %-8s | %11.3f | %10.2f | %11.0f | %15.2f |\n' "$enc" "$gb" "$s" "$rss" "$(echo "$s / $base" | bc -l)"
  rows+=("$(cat "$tmp/r.json")")
done
printf '{"model": "%s", "size": "%s", "passes": %s, "cores": %s, "runs": [%s]}\n' "$model" "$size" "$passes" "$(nproc)" \
  "$(IFS=,; echo "${rows[*]}")" >"$out"
echo "wrote $out"
