#!/usr/bin/env bash
# Runs the test suite with every block libtorch allocates on the CPU filled with NaN (nanfill.c), so that a kernel
# reading memory it never wrote fails deterministically. Needs gcc; not part of CI (a fresh machine has only the
# .NET SDK). Run it after changing TorchSharp's version or adding a network shape. Extra arguments go to dotnet test
# (e.g. --filter "FullyQualifiedName~ConvolutionTests").
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/tests/unwritten-memory/bin"
mkdir -p "$out"
gcc -O2 -shared -fPIC -o "$out/nanfill.so" "$root/tests/unwritten-memory/nanfill.c" -ldl
cd "$root"
dotnet build DPT.sln -c Release
# DPT_DEFAULT_MALLOC=1: the package leaves glibc's settings alone, so nothing but the shim decides what a block holds.
DPT_DEFAULT_MALLOC=1 LD_PRELOAD="$out/nanfill.so" dotnet test DPT.sln -c Release --no-build "$@"
