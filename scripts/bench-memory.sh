#!/usr/bin/env bash
# Peak host memory (max RSS) of small generations on the CPU, text-to-video
# against the image models, on the reference fixtures' tiny models at their
# fixture sizes: what the image encoder, the 36-channel DiT and the VAE
# encoding of the condition add. Prints a table and writes
# bench/results/cpu-memory.json.
#   scripts/bench-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { sudo -n true 2>/dev/null && s=sudo || s=; $s apt-get install -y -qq time >/dev/null; }
kino=build/kino
[ -x "$kino" ] || bash scripts/build.sh >/dev/null
[ -d ../shared/fixtures/wan-i2v-tiny ] || { echo "the reference fixtures are not at ../shared/fixtures"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
img=../shared/fixtures/wan-i2v-tiny
rows=()
run() {  # name, then kino generate arguments
  local name=$1; shift
  /usr/bin/time -f '%M %e' -o "$tmp/t" "$kino" generate "a red fox" --seed 1 --threads 1 -o "$tmp/o.mp4" "$@" 2>/dev/null
  read -r kb s <"$tmp/t"
  printf '| %-34s | %8.1f MB | %6.2f s |\n' "$name" "$(echo "$kb / 1024" | bc -l)" "$s"
  rows+=("{\"case\": \"$name\", \"max_rss_mb\": $(echo "scale=1; $kb / 1024" | bc -l), \"wall_s\": $s}")
}
echo "peak host memory, kino generate on the CPU, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "| case                               | max RSS     | wall     |"
echo "|------------------------------------|-------------|----------|"
run "wan2.1 t2v tiny 64x48x9" --model tests/fixtures/wan21-tiny.kino.json --size 64x48 --frames 9
run "wan2.1 i2v tiny 64x48x9" --model tests/fixtures/wan21-i2v-tiny.kino.json --size 64x48 --frames 9 --image "$img/i2v_image.png"
run "wan2.1 flf2v tiny 48x32x81" --model tests/fixtures/wan21-flf2v-tiny.kino.json --size 48x32 --frames 81 \
  --image "$img/flf2v_first.png" --last-image "$img/flf2v_last.png"
run "wan2.2 i2v-a14b tiny 64x48x9" --model tests/fixtures/wan22-i2v-tiny.kino.json --size 64x48 --frames 9 --image "$img/i2v22_image.png"
mkdir -p bench/results
printf '{"date": "%s", "cores": %s, "kino_commit": "%s", "runs": [%s]}\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" \
  "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(IFS=,; echo "${rows[*]}")" >bench/results/cpu-memory.json
echo "wrote bench/results/cpu-memory.json"
