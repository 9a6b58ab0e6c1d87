#!/usr/bin/env bash
# Step caching on kino-tiny, each method side by side with the uncached run
# of the same prompts and seeds, in one run: denoising time (ratio to the
# uncached run), transformer passes served from the cache, PSNR and SSIM of
# the frames against the uncached frames (ffmpeg's psnr/ssim filters on the
# lossless PNG frames), and prompt following from pixels (kino-train eval).
# kino-tiny has no constants of its own: TeaCache and MagCache run with the
# Wan2.1-1.3B constants, as the reference fixture does (a copy of its
# manifest naming them); the thresholds are the scripts' defaults and one
# faster setting each ($KINO_CACHE_METHODS replaces the list).
# Prints a table and writes bench/results/cpu-cache-kino-tiny.json.
#   scripts/bench-cache.sh [PROMPTS=6] [EVAL_PER_GROUP=8]
# With real weights: KINO_CACHE_MODEL=Wan2.1-T2V-1.3B scripts/bench-cache.sh
# compares on that model instead (PSNR/SSIM and speed; the pixel
# evaluation is kino-tiny's world and is left out), writing
# bench/results/cpu-cache-<folder name>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-6}
per_group=${2:-8}
kino=build/kino
[ -x "$kino" ] || bash scripts/build.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# kino-tiny's manifest with absolute paths and the 1.3B constants.
model=${KINO_CACHE_MODEL:-}
name=kino-tiny
if [ -n "$model" ]; then
  name=$(basename "$model")
  per_group=0
else
model=$tmp/kino-tiny
mkdir -p "$model"
sed -e "s|\"weights\": \"|\"weights\": \"$PWD/models/kino-tiny/|" \
    -e "s|\"tokenizer\": \"|\"tokenizer\": \"$PWD/models/kino-tiny/|" \
    -e 's|"kino_manifest": 1,|"kino_manifest": 1, "cache_constants": "wan2.1-t2v-1.3b",|' models/kino-tiny/kino.json >"$model/kino.json"
fi
read -r -a methods <<<"none ${KINO_CACHE_METHODS:-teacache teacache:0.2,ret_steps magcache magcache:0.3 easycache easycache:0.2}"
prompts=("a large red circle moving to the right on a black background"
         "a small blue square sliding down over a white background"
         "a big yellow triangle growing on a navy background"
         "ein kleines grünes Quadrat bewegt sich nach oben auf grauem Hintergrund"
         "a large white circle moving left on a dark red background"
         "a small orange triangle shrinking on a teal background"
         "a big purple square moving up over a yellow background"
         "ein großer blauer Kreis bewegt sich nach rechts auf schwarzem Hintergrund")
field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$2" | head -1; }
declare -A den reused passes psnr ssim acc
for m in "${methods[@]}"; do den[$m]=0; reused[$m]=0; passes[$m]=0; psnr[$m]=0; ssim[$m]=0; done
for ((i = 0; i < n; i++)); do
  p=${prompts[i % ${#prompts[@]}]}
  for m in "${methods[@]}"; do
    out=$tmp/$i/${m//[:,=]/_}
    mkdir -p "$out"
    "$kino" -q generate "$p" --model "$model" --seed $((100 + i)) --cache "$m" --json -o "$out/f_%04d.png" >"$out/r.json"
    tr ',{}' '\n\n\n' <"$out/r.json" >"$out/r.txt"
    den[$m]=$(echo "${den[$m]} + $(field denoise_s "$out/r.txt")" | bc -l)
    reused[$m]=$((reused[$m] + $(field reused_passes "$out/r.txt")))
    passes[$m]=$((passes[$m] + $(field transformer_passes "$out/r.txt")))
    if [ "$m" != none ]; then
      base=$tmp/$i/none
      q=$(ffmpeg -v info -i "$base/f_%04d.png" -i "$out/f_%04d.png" -lavfi "[0][1]psnr" -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -1)
      s=$(ffmpeg -v info -i "$base/f_%04d.png" -i "$out/f_%04d.png" -lavfi "[0][1]ssim" -f null - 2>&1 | sed -n 's/.*All:\([0-9.]*\).*/\1/p' | tail -1)
      [ "$q" = inf ] && q=99
      psnr[$m]=$(echo "${psnr[$m]} + $q" | bc -l)
      ssim[$m]=$(echo "${ssim[$m]} + $s" | bc -l)
    fi
  done
done
# Prompt following from pixels, the same cases for every method.
for m in "${methods[@]}"; do
  acc[$m]="-"
  [ "$per_group" -gt 0 ] || continue
  args=()
  [ "$m" = none ] || args=(--cache "$m")
  build/kino-train eval --model "$model" --per-group "$per_group" --cases-seed 2026 "${args[@]}" >"$tmp/eval.txt"
  # the groups' rows pooled: background / colour / shape / motion
  acc[$m]=$(awk -F'|' '/%/ {n += $3; for (k = 4; k <= 7; k++) { v = $k; sub(/%.*/, "", v); s[k] += $3 * v } }
    END { printf "%.0f / %.0f / %.0f / %.0f%%", s[4] / n, s[5] / n, s[6] / n, s[7] / n }' "$tmp/eval.txt")
done
echo "step caching on $name (its default size, steps and cfg), $n prompts, CPU $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| cache | passes served | denoise s | vs none | PSNR dB | SSIM | prompt following (background / colour / shape / motion) |"
echo "|---|---|---|---|---|---|---|"
rows=()
for m in "${methods[@]}"; do
  ratio=$(echo "${den[$m]} / ${den[none]}" | bc -l)
  if [ "$m" = none ]; then pq="-"; sq="-"; else pq=$(printf '%.2f' "$(echo "${psnr[$m]} / $n" | bc -l)"); sq=$(printf '%.4f' "$(echo "${ssim[$m]} / $n" | bc -l)"); fi
  printf '| %s | %d/%d | %.2f | %.2f | %s | %s | %s |\n' "$m" "${reused[$m]}" "${passes[$m]}" "${den[$m]}" "$ratio" "$pq" "$sq" "${acc[$m]}"
  rows+=("{\"cache\": \"$m\", \"reused_passes\": ${reused[$m]}, \"passes\": ${passes[$m]}, \"denoise_s\": ${den[$m]}, \"denoise_ratio\": $ratio, \"psnr_db\": \"$pq\", \"ssim\": \"$sq\", \"eval\": \"${acc[$m]}\"}")
done
mkdir -p bench/results
printf '{"date": "%s", "model": "'"$name"'", "prompts": %s, "eval_per_group": %s, "cores": %s, "kino_commit": "%s", "runs": [%s]}\n' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$n" "$per_group" "$(nproc)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$(IFS=,; echo "${rows[*]}")" >"bench/results/cpu-cache-$name.json"
echo "wrote bench/results/cpu-cache-$name.json"
