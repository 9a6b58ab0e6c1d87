#!/usr/bin/env bash
# kino remix with kino-tiny (SDEdit video-to-video): renders a source clip,
# remixes it under another prompt at strengths 0.4 and 0.7 (fixed seeds), and
# tiles every fourth frame of each into docs/kino-tiny-remix-strip.png (rows:
# the input, then each remix).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/kino -q generate "a large red circle moving to the right on a black background" --seed 1 -o "$tmp/in.mp4"
build/kino -q remix "$tmp/in.mp4" "a large green circle moving to the right on a black background" --strength 0.4 --seed 2 -o "$tmp/r5.mp4"
build/kino -q remix "$tmp/in.mp4" "a large green circle moving to the right on a black background" --strength 0.7 --seed 2 -o "$tmp/r8.mp4"
for v in in r5 r8; do
  ffmpeg -v error -i "$tmp/$v.mp4" -vf "select='not(mod(n\,4))',tile=5x1:padding=4:color=white" -frames:v 1 "$tmp/$v.png"
done
ffmpeg -v error -y -i "$tmp/in.png" -i "$tmp/r5.png" -i "$tmp/r8.png" -filter_complex "vstack=inputs=3" docs/kino-tiny-remix-strip.png
echo "wrote docs/kino-tiny-remix-strip.png"
