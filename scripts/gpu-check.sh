#!/usr/bin/env bash
# Everything a GPU session checks, in one command sized for the device
# tool's 10-minute limit (prepare here first: `bash scripts/gpu-deps.sh`
# and the fixtures copied to .device/fixtures; carry .device):
#   1. the build against the machine's libtorch 2.x (scripts/gpu-build.sh);
#   2. the parity tests on the GPU (KINO_TEST_DEVICE=cuda): device parity,
#      Wan2.2, the model families, the pipeline;
#   3. the benchmarks of the open GPU rows, each writing bench/results/gpu-*.json.
# Issue 24's 14B rows (quantised weights, --offload blocks) are a second
# call: scripts/gpu-quant.sh. Carry in .device/fixtures at least wan21-tiny,
# wan22-tiny, wan-i2v-tiny, wan21-vace-tiny (DeviceParity.Vace, 9.8 MB) and a
# few wan-gguf-tiny/*.gguf files (for DeviceParity.GgufDecoders).
# The log goes to bench/results/gpu-check.log; a failing step is reported
# and the next one still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
log=bench/results/gpu-check.log
exec > >(tee "$log") 2>&1
export KINO_COMMIT=${KINO_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
status=0
step() {
  echo "== $* ($(date -u +%H:%M:%S))"
  "$@" || { echo "== FAILED: $*"; status=1; }
}
step bash scripts/gpu-build.sh
source scripts/gpu-env.sh
step env KINO_TEST_DEVICE=cuda build-cuda/tests/kino_tests \
  --gtest_filter='DeviceParity*:Wan22*:Families*:Pipeline*:FusedOps*' --gtest_brief=1
step scripts/bench-gpu.sh wan2.1-t2v-1.3b --steps 10
# Issue 25: 50 steps with CFG, uncached and under each cache (random
# weights: speed only; MagCache's decisions follow its table alone).
for cache in none teacache magcache easycache; do
  step env KINO_BENCH_TAG=cache-$cache scripts/bench-gpu.sh wan2.1-t2v-1.3b --steps 50 --warmup-steps 0 --cache $cache
done
step scripts/bench-gpu.sh wan2.2-ti2v-5b --steps 10
step env KINO_BENCH_TAG=i2v scripts/bench-gpu.sh wan2.2-ti2v-5b --steps 10 --i2v
step env KINO_BENCH_TAG=i2v scripts/bench-gpu.sh wan2.1-i2v-14b --width 832 --height 480 --frames 81 --steps 3 --i2v
step scripts/bench-gpu.sh wan2.2-t2v-a14b --frames 81 --steps 4
step env KINO_BENCH_TAG=keep-experts scripts/bench-gpu.sh wan2.2-t2v-a14b --frames 81 --steps 4 --keep-experts
echo "== done, status $status"
exit $status
