#!/usr/bin/env bash
# Renders three prompts with kino-tiny (fixed seeds) and tiles every fourth
# frame of each into docs/kino-tiny-strip.png (one row per prompt).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for prompt in "a large red circle moving to the right on a black background" \
              "ein kleines blaues Quadrat bewegt sich nach oben auf grauem Hintergrund" \
              "a big yellow triangle growing on a navy background"; do
  build/kino -q generate "$prompt" --seed 1 -o "$tmp/$i.mp4"
  ffmpeg -v error -i "$tmp/$i.mp4" -vf "select='not(mod(n\,4))',tile=5x1:padding=4:color=white" -frames:v 1 "$tmp/$i.png"
  i=$((i + 1))
done
ffmpeg -v error -y -i "$tmp/0.png" -i "$tmp/1.png" -i "$tmp/2.png" -filter_complex "vstack=inputs=3" docs/kino-tiny-strip.png
echo "wrote docs/kino-tiny-strip.png"
