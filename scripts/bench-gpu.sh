#!/usr/bin/env bash
# The GPU benchmark, on the CUDA machine after scripts/gpu-build.sh:
#   scripts/bench-gpu.sh [MODEL] [kino-bench options...]
# MODEL is a manifest in bench/models (default wan2.1-t2v-1.3b); the weights
# are random, made on the GPU. GPU memory is sampled every 100 ms with
# nvidia-smi; the peak above the idle level goes into the record
# bench/results/gpu-MODEL[-TAG].json (KINO_BENCH_OUT overrides the folder,
# KINO_BENCH_TAG adds the tag).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
model=${1:-wan2.1-t2v-1.3b}
shift || true
out=${KINO_BENCH_OUT:-bench/results}
mkdir -p "$out"
json=$out/gpu-$model${KINO_BENCH_TAG:+-$KINO_BENCH_TAG}.json
mem=$(mktemp)

idle=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$mem" &
sampler=$!
build-cuda/kino-bench --model "bench/models/$model.kino.json" --json "$json" \
  --commit "${KINO_COMMIT:-unknown}" \
  --device-name "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" "$@"
kill "$sampler"
peak=$(sort -n "$mem" | tail -1)
rm -f "$mem"
# Append the peak (MiB above idle, in GB) as the record's last field.
gb=$(awk -v p="$peak" -v i="$idle" 'BEGIN { printf "%.2f", (p - i) * 1048576 / 1e9 }')
sed -i '$ d' "$json" && printf '  ,"peak_gpu_mem_gb": %s\n}\n' "$gb" >>"$json"
printf '%-22s %s\n' peak_gpu_mem_gb "$gb"
echo "wrote $json"
