#!/usr/bin/env bash
# Reproduces models/kino-tiny from scratch: builds kino, trains tokenizer,
# VAE, text encoder and DiT with kino-train (fixed seeds, see
# src/train/train_tiny.cpp), evaluates prompt following from pixels and
# writes the report and the README's frame strip.
# About 90 minutes on 2 CPU cores.
#   scripts/train-tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
out=models/kino-tiny
t0=$(date +%s)
build/kino-train train --out "$out"
t1=$(date +%s)
echo "training took $((t1 - t0)) s"
build/kino-train eval --model "$out" --per-group 48 --json "$out/eval.json" | tee "$out/eval.md"
bash scripts/make-strip.sh
