#!/bin/sh
# The one release build behind every fedge image: the offline images (build-images.sh) and
# the registry Dockerfiles (deploy/*/Dockerfile) both run this, so they ship the same
# binary: the workspace's plain `release` profile, the static x86_64-unknown-linux-musl
# target (no libc in the image, name resolution by musl reading /etc/resolv.conf), the
# locked dependency versions, no extra RUSTFLAGS.
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
exec cargo build --release --locked --target "$FEDGE_TARGET" "$@"
