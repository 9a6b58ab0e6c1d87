# Environment for building and running kino on a CUDA machine with the
# dependencies of scripts/gpu-deps.sh unpacked into .device/root (source it).
KINO_DEPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.device/root"
export KINO_DEPS_ROOT
export LD_LIBRARY_PATH="$KINO_DEPS_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$KINO_DEPS_ROOT/usr/lib/x86_64-linux-gnu/pkgconfig:$KINO_DEPS_ROOT/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$KINO_DEPS_ROOT"
