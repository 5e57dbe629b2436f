#!/usr/bin/env bash
# Installs what the build needs on Debian 12 (idempotent, quiet when all is
# there) and configures and builds the project into $BUILD_DIR (default:
# build/). Safe to run again: only what changed is rebuilt.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
llvm_prefix=/usr/lib/llvm-22

packages=(
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  cmake ninja-build g++ lld ccache libgtest-dev libomp-dev python3 zlib1g-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake_args=(
  -G Ninja
  -DCMAKE_BUILD_TYPE=Release
  -DMLIR_DIR="$llvm_prefix/lib/cmake/mlir"
  -DLLVM_USE_LINKER=lld
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
)
# The CUDA toolkit is optional; point CMake at the usual place when nvcc is
# not on PATH.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  cmake_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
fi

if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S "$root" -B "$build_dir" "${cmake_args[@]}" >"$build_dir.configure.log" 2>&1 || {
    cat "$build_dir.configure.log"
    echo "setup: cmake configure failed" >&2
    exit 1
  }
  grep -E "CUDA toolkit" "$build_dir.configure.log" || true
  rm -f "$build_dir.configure.log"
fi
cmake --build "$build_dir"
