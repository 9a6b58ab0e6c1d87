#!/usr/bin/env bash
# Builds kino on a CUDA machine (the device tool's H100/H200) against the
# libtorch 2.x inside its PyTorch wheel, with the Debian dependencies packed by
# scripts/gpu-deps.sh (carried as .device/deps.tar.xz). Build tree: build-cuda/.
# Source scripts/gpu-env.sh before running what it built.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
if [ ! -d "$KINO_DEPS_ROOT/usr" ]; then
  mkdir -p "$KINO_DEPS_ROOT"
  tar xJf .device/deps.tar.xz -C "$KINO_DEPS_ROOT"
fi
# nvcc builds the fused DiT kernels (src/kernels/fused_cuda.cu) when found.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
torch_cmake=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$KINO_DEPS_ROOT/usr;$torch_cmake" \
  -DPKG_CONFIG_EXECUTABLE="$KINO_DEPS_ROOT/usr/bin/pkgconf" \
  -DKINO_FIXTURES_DIR="$PWD/.device/fixtures" \
  -DCMAKE_CUDA_ARCHITECTURES=90 "$@"
# -k 0: one target that fails to build does not stop the others.
cmake --build build-cuda -j"$(nproc)" -- -k 0
