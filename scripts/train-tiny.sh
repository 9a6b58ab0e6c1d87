#!/usr/bin/env bash
# Reproduces models/kino-tiny from scratch: builds kino, trains tokenizer,
# VAE, text encoder (6000 steps) and DiT (2400 steps, batch 16) with
# kino-train (fixed seeds, see src/train/train_tiny.cpp) in build/kino-tiny,
# continues the DiT twice (3000 steps at lr 2e-3, then 2000 at 1e-3),
# trains the VAE decoder on whole frames four times for 400 more steps
# (`kino-train decoder`: the encoder, and so the DiT's latent space,
# unchanged; the last run with the frame's edge weighted), evaluates prompt following from pixels, then replaces
# models/kino-tiny with the result.
#
# On a CUDA machine (nvidia-smi answers) it builds with scripts/gpu-build.sh
# (needs .device/deps.tar.xz from scripts/gpu-deps.sh) and runs the two
# continuations as the shipped weights had them: batch 64 over 4000 clips
# (H100: 64-77 ms a step, ~4 and ~2.5 min). There the frame strip is left to
# scripts/make-strip.sh on a CPU machine (kino's CPU build).
#
# On 2 CPU cores the VAE takes ~2.6 hours (7.4 s a step), encoding the 1200
# training clips 37 min, the text encoder 2.5 min and the DiT 42 min
# (measured); the continuations run there at batch 16 over those 1200 clips
# (~1 s a step, ~1.5 hours), the decoder 91 min: ~6.5 hours in all, over the
# issue's 2-hour aim, and a smaller version of the GPU recipe whose result
# was not evaluated.
# See models/kino-tiny/TRAINING.md.
#   scripts/train-tiny.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if nvidia-smi -L >/dev/null 2>&1; then
  cuda=1
  bash scripts/gpu-build.sh >/dev/null
  source scripts/gpu-env.sh
  train=build-cuda/kino-train
else
  cuda=
  bash scripts/build.sh >/dev/null
  train=build/kino-train
fi
work=build/kino-tiny
rm -rf "$work"
t0=$(date +%s)
"$train" train --out "$work"
if [ -n "$cuda" ]; then
  # A larger batch over more clips: their own latent cache (--work).
  more=(--work "$work/.train-4000" --clips 4000 --dit-batch 64)
else
  more=()
fi
"$train" train --out "$work" --resume "${more[@]}" --dit-steps 3000 --lr 2e-3
"$train" train --out "$work" --resume "${more[@]}" --dit-steps 2000 --lr 1e-3
"$train" decoder --model "$work"
"$train" decoder --model "$work"
"$train" decoder --model "$work"
"$train" decoder --model "$work" --edge-weight 8
t1=$(date +%s)
echo "training took $((t1 - t0)) s"
"$train" eval --model "$work" --per-group 48 --json "$work/eval.json" | tee "$work/eval.md"
# The weights and records are replaced; TRAINING.md (how they were made) stays.
mkdir -p models/kino-tiny
find models/kino-tiny -maxdepth 1 -type f ! -name TRAINING.md -delete
cp "$work"/{kino.json,tokenizer.model,text_encoder.safetensors,transformer.safetensors,vae.safetensors} models/kino-tiny/
cp "$work"/*_{loss.csv,loss.png,report.json} "$work"/eval.{json,md} models/kino-tiny/
if [ -z "$cuda" ]; then bash scripts/make-strip.sh; fi
