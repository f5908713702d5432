#!/usr/bin/env bash
# Install libdsm into a scratch prefix, then build a consumer against it with
# find_package(dsm) and with pkg-config, and run both.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name libdsm.so | head -1)")
test -f "$tmp/prefix/include/dsm.h"
cmake -S "$src/tests/consumer" -B "$tmp/cm" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cm" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cm/consumer"
export PKG_CONFIG_PATH=$libdir/pkgconfig
# shellcheck disable=SC2046
cc -o "$tmp/pc" "$src/tests/consumer/main.c" $(pkg-config --cflags --libs dsm)
LD_LIBRARY_PATH=$libdir "$tmp/pc"
echo "find_package(dsm) and pkg-config both work"
