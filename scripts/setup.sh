#!/usr/bin/env bash
# Installs every Debian package kino needs to build, test and run. Idempotent:
# packages already present are skipped, so a second run costs one dpkg query.
# `setup.sh fuzz` adds clang (libFuzzer) for scripts/fuzz.sh.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  libtorch-dev
  libopenblas0-openmp            # fast float32 BLAS; its alternative outranks netlib
  libsentencepiece-dev sentencepiece
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libgtest-dev
  ffmpeg                         # ffprobe, used by the end-to-end tests
)
[ "${1:-}" = fuzz ] && PACKAGES+=(clang)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
