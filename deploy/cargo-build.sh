#!/bin/sh
# The one release build behind every fedge image: the offline images (build-images.sh) and
# the registry Dockerfiles (deploy/*/Dockerfile) both run this, so they ship the same
# binary: the workspace's plain `release` profile, the static x86_64-unknown-linux-musl
# target (no libc in the image, name resolution by musl reading /etc/resolv.conf), the
# locked dependency versions, no extra RUSTFLAGS, and one C flag for mimalloc (below).
#
#   deploy/cargo-build.sh -p fn-serve -p fn-train -p aggregator
#   -> target/x86_64-unknown-linux-musl/release/{fn-serve,fn-train,aggregator}
#
# Arguments are passed to `cargo build` (packages, `--example`, ...).
set -eu
FEDGE_TARGET=x86_64-unknown-linux-musl
if [ "${1:-}" = "--print-target" ]; then
  echo "$FEDGE_TARGET"
  exit 0
fi
cd "$(dirname "$0")/.."
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# The services run on mimalloc on this target (musl's malloc cost 36-47 % of the CPU per
# image). mimalloc's default commits whole arenas eagerly where the OS overcommits: fn-serve
# then peaked at 71 MiB instead of 43 MiB on one 10,000-image request (its limit is
# 100 MiB). Committing on demand keeps glibc's peak at glibc's speed (deploy/README.md).
export CFLAGS_x86_64_unknown_linux_musl="-DMI_DEFAULT_ARENA_EAGER_COMMIT=0"
exec cargo build --release --locked --target "$FEDGE_TARGET" "$@"
