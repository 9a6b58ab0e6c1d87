#!/usr/bin/env bash
# A continuous storyboard with kino-tiny (three 25-frame shots, one video in
# context windows, the prompt travelling shot by shot): every fourth frame
# tiled into docs/kino-tiny-continuous-strip.png.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/board.json" <<'JSON'
{"continuous": true, "shots": [
  {"prompt": "a large red circle moving to the right on a black background", "frames": 25},
  {"prompt": "a large green circle moving to the right on a gray background", "frames": 25},
  {"prompt": "a large yellow circle moving to the right on a white background", "frames": 25}]}
JSON
build/kino -q storyboard "$tmp/board.json" --seed 5 -o "$tmp/story.mp4"
ffmpeg -v error -i "$tmp/story.mp4" -vf "select='not(mod(n\,4))',scale=64:64,tile=21x1:padding=2:color=white" -frames:v 1 -y docs/kino-tiny-continuous-strip.png
echo "wrote docs/kino-tiny-continuous-strip.png"
