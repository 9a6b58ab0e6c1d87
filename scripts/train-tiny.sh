#!/usr/bin/env bash
# Reproduces models/kino-tiny from scratch: builds kino, trains tokenizer,
# VAE, text encoder and DiT with kino-train (fixed seeds, see
# src/train/train_tiny.cpp) in build/kino-tiny, evaluates prompt following
# from pixels, then replaces models/kino-tiny with the result and writes the
# README's frame strip. About 75 minutes on 2 CPU cores; kino-train runs on
# CUDA instead when the build and the machine have it (--device auto).
#   scripts/train-tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
work=build/kino-tiny
rm -rf "$work"
t0=$(date +%s)
build/kino-train train --out "$work"
t1=$(date +%s)
echo "training took $((t1 - t0)) s"
build/kino-train eval --model "$work" --per-group 48 --json "$work/eval.json" | tee "$work/eval.md"
rm -rf models/kino-tiny
mkdir -p models/kino-tiny
cp "$work"/{kino.json,tokenizer.model,text_encoder.safetensors,transformer.safetensors,vae.safetensors} models/kino-tiny/
cp "$work"/{training_report.json,training_loss.csv,training_loss.png,eval.json,eval.md} models/kino-tiny/
bash scripts/make-strip.sh
