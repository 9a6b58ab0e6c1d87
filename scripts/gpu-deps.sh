#!/usr/bin/env bash
# Packs what a bare CUDA machine lacks to build and run kino into
# .device/deps.tar.xz: Debian's development packages (FFmpeg, sentencepiece,
# spdlog/fmt, CLI11, nlohmann/json, GoogleTest, pkgconf) and the shared
# libraries they need at run time, except glibc, libstdc++ and libgcc.
# Run it here; scripts/gpu-build.sh unpacks the archive there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=.device
mkdir -p "$out/debs"

dev=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
     libsentencepiece-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
     libgtest-dev pkgconf pkgconf-bin libpkgconf3)
# The run-time closure: the FFmpeg, sentencepiece and spdlog libraries and
# every library they load, mapped back to the Debian packages that ship them.
arch=/lib/x86_64-linux-gnu
libs=("$arch"/libav{codec,format,util}.so.?? "$arch"/libsw{scale,resample}.so.?
      "$arch"/libsentencepiece.so.0 "$arch"/libspdlog.so.1.?? "$arch"/libfmt.so.9)
mapfile -t runtime < <(
  { printf '%s\n' "${libs[@]}"; ldd "${libs[@]}" 2>/dev/null | awk '/=>/ {print $3}'; } |
    sort -u | xargs -n1 readlink -f | xargs dpkg -S 2>/dev/null |
    cut -d: -f1 | sort -u | grep -v -E '^(libc6|libstdc\+\+6|libgcc-s1)$')
(cd "$out/debs" && apt-get download "${dev[@]}" "${runtime[@]}" >/dev/null 2>&1)

rm -rf "$out/root" && mkdir -p "$out/root"
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out/root"; done
# Only headers, shared libraries, CMake/pkg-config files and GoogleTest's
# static libraries are needed: drop documentation, plugins and other archives.
(cd "$out/root" &&
  rm -rf usr/share/doc usr/share/man usr/share/lintian usr/share/locale usr/share/bug usr/src \
         usr/lib/x86_64-linux-gnu/mfx usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0 &&
  find . -name '*.a' ! -name 'libgtest*' ! -name 'libgmock*' -delete)
# A device call carries at most 64 MiB. Two libraries that FFmpeg links but
# kino never calls are a third of the archive: the codec2 speech codec and ICU's
# data (via libxml2, for DASH manifests). Each is replaced by a stub with the
# same soname and symbols (BIND_NOW resolves them all at load); a stub
# function traps if ever called.
stub_library() {
  local lib=$1 src
  src=$(mktemp --suffix=.c)
  # nm -S prints "address [size] type name".
  nm -D --defined-only -S "$lib" | awk '
    { type = $(NF - 1); size = (NF == 4) ? $2 : "1" }
    type ~ /^[TWi]$/ { printf "void %s(void) { __builtin_trap(); }\n", $NF; next }
    { printf "char %s[0x%s];\n", $NF, size }' >"$src"
  gcc -shared -fPIC -w -o "$lib" -Wl,-soname,"$(objdump -p "$lib" | awk '/SONAME/ {print $2}')" "$src"
  rm -f "$src"
}
lib_dir=$out/root/usr/lib/x86_64-linux-gnu
stub_library "$(readlink -f "$lib_dir/libcodec2.so.1.0")"
stub_library "$(readlink -f "$lib_dir/libicudata.so.72")"
tar cf - -C "$out/root" . | xz -9 -T0 > "$out/deps.tar.xz"
echo "$out/deps.tar.xz: $(du -h "$out/deps.tar.xz" | cut -f1)"
