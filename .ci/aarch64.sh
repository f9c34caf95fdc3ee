#!/usr/bin/env bash
# The aarch64 (NEON) build of conv-kernels and engine, tested under qemu-user: the NEON tier
# (`simd/aarch64.rs`, core::arch intrinsics with FMA) is the best tier there and what an ARM
# edge board (Raspberry Pi 4/5, Graviton) runs; the portable tier (`wide::f32x4`) is tested
# beside it; the x86 tiers are compiled out.
#
# Idempotent: installs the cross linker, qemu-user and the Rust target only if missing.
# Proptest cases are cut (PROPTEST_CASES, default 16) because qemu runs the tests ~10-30x
# slower than the host; MNIST-based tests still run if MNIST_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu

QEMU="$(command -v qemu-aarch64 || command -v qemu-aarch64-static)"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$QEMU -L /usr/aarch64-linux-gnu"
export PROPTEST_CASES="${PROPTEST_CASES:-16}"
# No AVX2 or AVX-512 on this target: the x86 requirements do not apply to the aarch64 run.
unset FEDGE_REQUIRE_AVX2 FEDGE_REQUIRE_AVX512
# The NEON tier must be there (and tested): it is what ARM boards run.
export FEDGE_REQUIRE_NEON=1

# CI runs the kernels (where the NEON tier lives) by default; AARCH64_CRATES="conv-kernels
# engine" adds the engine's tests (several times slower under emulation).
read -r -a crates <<<"${AARCH64_CRATES:-conv-kernels}"
pkgs=()
for c in "${crates[@]}"; do pkgs+=(-p "$c"); done
echo "== cargo test --target aarch64-unknown-linux-gnu ${pkgs[*]} (under $QEMU)"
cargo test --target aarch64-unknown-linux-gnu "${pkgs[@]}"
